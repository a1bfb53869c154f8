package io.strata.qemu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.device.RawImageDevice;
import io.strata.core.export.DeviceExporter;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import io.strata.vhost.VhostUserServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Strata as the vhost-user-blk back-end of a real guest (QEMU 10, Linux 6.12 under TCG): the guest
 * mounts /dev/vda with its EROFS driver and checks every file's md5, reads the whole device with dd
 * and compares its sha256 with {@code strata export}'s file, over 1, 2 and 4 queues; and a back-end
 * killed and restarted mid-read loses nothing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
// A boot may take 10 min under TCG on a loaded machine (Guest's own limit, which fails with the console).
@Timeout(value = 12, unit = TimeUnit.MINUTES)
class VhostUserGuestTest {
    Path tmp;
    GuestKit kit;
    Path treeImage;
    String treeMd5;
    String treeSha256;

    @BeforeAll
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void prepare(@TempDir Path dir) throws Exception {
        tmp = dir;
        kit = GuestKit.require();
        HostTools.requireTool("mkfs.erofs", "erofs-utils");
        // (a) a plain mkfs.erofs image of a few thousand real files.
        Path tree = Files.createDirectories(tmp.resolve("tree"));
        try (Stream<Path> s = Files.walk(Path.of("/usr/include"))) {
            for (Path f : (Iterable<Path>) s.filter(Files::isRegularFile).sorted().limit(2500)::iterator) {
                Path dst = tree.resolve(Path.of("/usr/include").relativize(f).toString());
                Files.createDirectories(dst.getParent());
                Files.copy(f, dst);
            }
        }
        treeImage = tmp.resolve("tree.erofs");
        HostTools.run(List.of("mkfs.erofs", treeImage.toString(), tree.toString()));
        treeMd5 = NbdKernelAttachGuestTest.md5List(tree);
        treeSha256 = sha256(treeImage);
    }

    static String sha256(Path p) throws Exception {
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        try (var in = Files.newInputStream(p)) {
            byte[] buf = new byte[1 << 20];
            int n;
            while ((n = in.read(buf)) > 0) {
                d.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(d.digest());
    }

    /** The guest script: mount, md5 every file, dd the whole device, print the sha256. */
    static String mountAndRead(int parallelReaders) {
        StringBuilder s = new StringBuilder();
        s.append("mkdir -p /mnt\n");
        s.append("echo \"queues: $(ls /sys/block/vda/mq | wc -l)\"\n");
        s.append("echo \"serial: $(cat /sys/block/vda/serial)\"\n");
        s.append("mount -t erofs -o ro /dev/vda /mnt || exit 20\n");
        s.append("(cd /mnt && md5sum -c /expected.md5 > /tmp.check 2>&1) || { grep -v ': OK' /tmp.check | head; exit 21; }\n");
        s.append("echo \"files OK: $(grep -c ': OK' /tmp.check)\"\n");
        s.append("umount /mnt\n");
        s.append("echo 3 > /proc/sys/vm/drop_caches\n");
        // Several readers at once spread requests over the queues (blk-mq maps queues to CPUs).
        for (int i = 1; i < parallelReaders; i++) {
            s.append("dd if=/dev/vda of=/dev/null bs=64k iflag=direct 2>/dev/null &\n");
        }
        s.append("echo \"sha256: $(dd if=/dev/vda bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)\"\n");
        s.append("wait\n");
        return s.toString();
    }

    Guest.Result boot(Path socket, int queues, int cpus, String script, String expectedMd5) throws Exception {
        Path work = Files.createDirectories(tmp.resolve("boot-" + System.nanoTime()));
        return new Guest(kit, work, script).sharedMemory().cpus(cpus).memory(512).timeout(600)
                .file("expected.md5", expectedMd5)
                .args("-chardev", "socket,id=c0,path=" + socket,
                        "-device", "vhost-user-blk-pci,chardev=c0,num-queues=" + queues)
                .boot();
    }

    void check(Guest.Result r, String md5List, String sha) {
        System.out.println("guest output:" + r.output());
        assertEquals(0, r.exitCode(), "guest script failed:\n" + r.output() + "\nconsole:\n" + Guest.tail(r.console()));
        long files = md5List.lines().count();
        assertTrue(r.output().contains("files OK: " + files), r.output());
        assertTrue(r.output().contains("sha256: " + sha), "dd of /dev/vda must equal the export: " + r.output());
    }

    @Test
    void rawTreeOverOneQueue() throws Exception {
        try (RawImageDevice dev = RawImageDevice.open(treeImage);
             VhostUserServer server = new VhostUserServer(tmp.resolve("raw1.sock"), dev, 4)) {
            server.start();
            Guest.Result r = boot(tmp.resolve("raw1.sock"), 1, 2, mountAndRead(1), treeMd5);
            check(r, treeMd5, treeSha256);
            assertTrue(r.output().contains("queues: 1"), r.output());
            assertTrue(r.output().contains("serial: strata-"), r.output());
        }
    }

    @Test
    void nydusFixtureOverTwoQueues() throws Exception {
        Path export = tmp.resolve("fixture.raw");
        String md5;
        try (FlatDevice dev = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()),
                FlatDeviceOptions.defaults())) {
            DeviceExporter.export(dev, export, null, (d, t) -> { });
        }
        HostTools.requireRootWithErofsAndLoop();
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(export, tmp.resolve("mnt-fixture"))) {
            md5 = NbdKernelAttachGuestTest.md5List(m.path());
        }
        try (FlatDevice dev = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()),
                FlatDeviceOptions.defaults());
             VhostUserServer server = new VhostUserServer(tmp.resolve("nydus.sock"), dev, 4)) {
            server.start();
            Guest.Result r = boot(tmp.resolve("nydus.sock"), 2, 2, mountAndRead(2), md5);
            check(r, md5, sha256(export));
            assertTrue(r.output().contains("queues: 2"), r.output());
        }
    }

    @Test
    void rawTreeOverFourQueuesWithParallelReaders() throws Exception {
        try (RawImageDevice dev = RawImageDevice.open(treeImage);
             VhostUserServer server = new VhostUserServer(tmp.resolve("raw4.sock"), dev, 4)) {
            server.start();
            Guest.Result r = boot(tmp.resolve("raw4.sock"), 4, 4, mountAndRead(4), treeMd5);
            check(r, treeMd5, treeSha256);
            assertTrue(r.output().contains("queues: 4"), r.output());
            long busy = java.util.stream.IntStream.range(0, 4).filter(q -> server.requestsServed(q) > 0).count();
            assertTrue(busy >= 2, "requests spread over the queues: " + busy + " of 4 served any");
        }
    }

    /**
     * The back-end is SIGKILLed while it holds requests: the test watches its inflight region (the
     * memfd it shares with QEMU) from outside, freezes it (SIGSTOP) when descriptors are marked in
     * flight, and kills it only if they still are in the frozen state; else it lets it go on and
     * looks again. The restarted back-end must find those requests in the region QEMU hands it and
     * say so, and every read in the guest must still return the image's bytes.
     */
    @Test
    void backEndKilledAndRestartedMidReadLosesNothing() throws Exception {
        Path socket = tmp.resolve("restart.sock");
        String[] serve = {"--raw", treeImage.toString(), "--queues", "2"};
        // Two readers at a time, four rounds, each read checked: the back-end is busy from the first
        // read on, and whichever reads the kill interrupts must still end with the right bytes.
        String script = String.join("\n",
                "echo STRATA-READ-START",
                "ok=0",
                "for round in 1 2 3 4; do",
                "  for r in 1 2; do (dd if=/dev/vda bs=256k iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1 > /sum.$r) & done",
                "  wait",
                "  for r in 1 2; do",
                "    if [ \"$(cat /sum.$r)\" = \"$(cat /expected.sha)\" ]; then ok=$((ok+1)); else echo \"round $round reader $r: sha256 $(cat /sum.$r)\"; fi",
                "  done",
                "done",
                "echo \"reads with the right sha256: $ok of 8\"",
                "[ $ok = 8 ] || exit 30",
                "");
        Path work = Files.createDirectories(tmp.resolve("boot-restart"));
        AtomicReference<BackEndProcess> second = new AtomicReference<>();
        AtomicReference<String> seenAtKill = new AtomicReference<>();
        AtomicReference<Throwable> sideFailure = new AtomicReference<>();
        Guest.Result r = null;
        try (BackEndProcess first = BackEndProcess.start(socket, tmp.resolve("backend1.log"), serve)) {
            try {
                r = new Guest(kit, work, script).sharedMemory().memory(512).timeout(600)
                    .file("expected.sha", treeSha256).file("expected.md5", "")
                    .args("-chardev", "socket,id=c0,path=" + socket + ",reconnect-ms=1000",
                            "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2")
                    .whileRunning(console -> {
                        try {
                            waitForLine(console, "STRATA-READ-START", 300);
                            seenAtKill.set(killWithRequestsInFlight(first, 120));
                            second.set(BackEndProcess.start(socket, tmp.resolve("backend2.log"), serve));
                        } catch (Throwable e) {
                            sideFailure.set(e);
                        }
                    })
                    .boot();
            } catch (AssertionError guestFailed) {
                // A guest that hung or died: what both back-ends logged, and what the side thread met,
                // are what tell a lost request from a failed restart.
                AssertionError e = new AssertionError(guestFailed.getMessage() + "\nin flight at the kill: " + seenAtKill.get()
                        + "\nfirst back-end log (tail):\n" + Guest.tail(first.log())
                        + "\nrestarted back-end log (tail):\n" + (second.get() == null ? "(never started)" : Guest.tail(second.get().log())),
                        guestFailed);
                if (sideFailure.get() != null) {
                    e.addSuppressed(sideFailure.get());
                }
                throw e;
            }
        } finally {
            if (second.get() != null) {
                second.get().close();
            }
        }
        if (sideFailure.get() != null) {
            throw new AssertionError("killing and restarting the back-end failed; guest output:\n" + r.output(),
                    sideFailure.get());
        }
        if (second.get() == null) {
            throw new AssertionError("the back-end was never killed with requests in flight and restarted;"
                    + " guest output:\n" + r.output());
        }
        String log2 = second.get().log();
        System.out.println("guest output:" + r.output() + "\nin flight at the kill: " + seenAtKill.get()
                + "\nrestarted back-end log:\n" + log2);
        assertEquals(0, r.exitCode(), "guest reads after the restart failed:\n" + r.output() + "\n" + Guest.tail(r.console()));
        assertTrue(r.output().contains("reads with the right sha256: 8 of 8"), r.output());
        assertTrue(log2.contains("queue 0 started"), "QEMU reconnected to the new back-end:\n" + log2);
        Matcher resumed = Pattern.compile("queue (\\d+) resumes with (\\d+) request\\(s\\) a previous"
                + " back-end left in flight").matcher(log2);
        int resubmitted = 0;
        while (resumed.find()) {
            resubmitted += Integer.parseInt(resumed.group(2));
        }
        assertTrue(resubmitted > 0, "the new back-end found the requests left in flight (" + seenAtKill.get()
                + " at the kill) and served them again:\n" + log2);
    }

    /**
     * Polls the back-end's inflight region until descriptors are marked in flight, freezes the
     * process, and SIGKILLs it if they still are (a frozen snapshot, so they are in flight at the
     * kill); otherwise thaws it and polls on. Returns the per-queue counts at the kill.
     */
    static String killWithRequestsInFlight(BackEndProcess backEnd, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        int attempts = 0;
        try (InflightWatch watch = InflightWatch.await(backEnd.pid(), "strata-inflight", seconds)) {
            while (System.nanoTime() < deadline) {
                if (Arrays.stream(watch.inflightPerQueue()).sum() > 0) {
                    attempts++;
                    backEnd.freeze();
                    int[] frozen = watch.inflightPerQueue();
                    if (Arrays.stream(frozen).sum() > 0) {
                        backEnd.kill(); // SIGKILL: no cleanup, as in a crash
                        return Arrays.toString(frozen) + " per queue (caught on attempt " + attempts + ")";
                    }
                    backEnd.thaw();
                }
                LockSupport.parkNanos(100_000);
            }
        }
        throw new AssertionError("never saw the back-end with requests in flight in " + seconds + " s ("
                + attempts + " near misses)");
    }

    static void waitForLine(Path console, String marker, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            if (Files.exists(console) && new String(Files.readAllBytes(console), StandardCharsets.ISO_8859_1).contains(marker)) {
                return;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("no '" + marker + "' on the console within " + seconds + " s");
    }
}
