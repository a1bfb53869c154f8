package io.strata.qemu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import io.strata.core.testing.SampleTrees;
import io.strata.registry.testing.RegistryFixture;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image served straight from a registry to a real guest, both ways, in one boot (a TCG boot
 * with a JVM in the guest costs minutes): {@code strata build} of a generated tree, {@code strata
 * push} to Debian's docker-registry on the host's 127.0.0.1, then
 * <ol>
 * <li>{@code strata serve vhost-user REF} on the host with an empty cache, as the guest's /dev/vdX:
 * the guest mounts it with its EROFS driver and checks every file's md5; the registry's access log
 * shows only range reads (206) of the data blob: a lazy read, no whole-blob download;</li>
 * <li>{@code strata attach REF} inside the guest, which reaches the registry through QEMU's user-mode
 * network (slirp: the guest's 10.0.2.2 is the host's loopback, so the registry stays bound to
 * 127.0.0.1): it mounts /dev/nbd0, checks every md5, and on SIGTERM the device is released.</li>
 * </ol>
 * Each path reads its own repository (the image is pushed twice), so the access log tells their
 * requests apart. Expected md5s come from the host kernel's mount of the local {@code strata export}.
 */
// The guest's own limit is 15 min (a JVM in a TCG guest is slow); this only catches what it cannot.
@Timeout(value = 17, unit = TimeUnit.MINUTES)
class RemoteImageGuestTest {
    /** Where the guest reaches the host's loopback through slirp (QEMU's user network, default 10.0.2.0/24). */
    private static final String HOST_FROM_GUEST = "10.0.2.2";

    @TempDir
    Path tmp;

    @Test
    void vhostUserAndAttachServeAReferenceLazilyWithEveryMd5() throws Exception {
        GuestKit kit = GuestKit.require();
        kit.requireModule("virtio_net");
        RegistryFixture.requireTools();
        HostTools.requireTool("mkfs.erofs", "erofs-utils");
        HostTools.requireRootWithErofsAndLoop();

        Path source = SampleTrees.mixed(tmp.resolve("src"), 200, 13, 4, 11);
        Path image = tmp.resolve("img");
        StrataCli.run(tmp.resolve("build.log"), 120, "build", source.toString(), "-o", image.toString(),
                "--source-date-epoch", "1700000000");
        Map<String, Long> dataBlobs = new HashMap<>(); // blob id -> size
        try (Stream<Path> s = Files.list(image.resolve("blobs"))) {
            for (Path p : (Iterable<Path>) s::iterator) {
                dataBlobs.put(p.getFileName().toString(), Files.size(p));
            }
        }
        assertTrue(!dataBlobs.isEmpty(), "strata build wrote no data blob");

        // Expected md5s: the host kernel's EROFS mount of the local export (and the source tree agrees).
        Path export = tmp.resolve("local.raw");
        StrataCli.run(tmp.resolve("export.log"), 120, "export", image.resolve("bootstrap").toString(), "-o", export.toString());
        String md5;
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(export, tmp.resolve("mnt"))) {
            md5 = NbdKernelAttachGuestTest.md5List(m.path());
        }
        assertEquals(NbdKernelAttachGuestTest.md5List(source), md5, "the local export holds the source tree");
        long files = md5.lines().count();

        // The guest's second disk: a JRE and Strata's jars, found in the guest by its serial.
        Path disk = Files.createDirectories(tmp.resolve("disk"));
        GuestJre.populate(disk);
        Path diskImage = tmp.resolve("disk.erofs");
        HostTools.run(List.of("mkfs.erofs", diskImage.toString(), disk.toString()));

        try (RegistryFixture registry = RegistryFixture.anonymous(tmp.resolve("registry"))) {
            String vhostRef = registry.reference("strata/guest-vhost:v1");
            StrataCli.run(tmp.resolve("push-vhost.log"), 120, "push", image.toString(), vhostRef);
            StrataCli.run(tmp.resolve("push-attach.log"), 120, "push", image.toString(), registry.reference("strata/guest-attach:v1"));
            int pushed = registry.accessLog().size();
            String guestRegistry = HOST_FROM_GUEST + ":" + registry.port();
            String attachRef = guestRegistry + "/strata/guest-attach:v1";

            String script = String.join("\n",
                    "mount -t tmpfs tmpfs /tmp",
                    "mkdir -p /disk /mnt",
                    "for b in /sys/block/vd*; do",
                    "  if [ \"$(cat $b/serial)\" = guest-jre ]; then jre=${b##*/}; else remote=${b##*/}; fi",
                    "done",
                    // (1) the vhost-user device the host serves from the registry.
                    "vhost_check() {",
                    "  echo \"vhost-user device $remote, serial $(cat /sys/block/$remote/serial)\"",
                    "  mount -t erofs -o ro /dev/$remote /mnt || return 20",
                    "  (cd /mnt && md5sum -c /expected.md5 > /tmp/vhost.check 2>&1) || { grep -v ': OK' /tmp/vhost.check | head; return 21; }",
                    "  echo \"vhost-user REF: $(grep -c ': OK' /tmp/vhost.check) files OK\"",
                    "  umount /mnt",
                    "}",
                    // (2) strata attach REF in the guest, over slirp to the host's registry.
                    "attach_check() {",
                    "  mount -t erofs -o ro /dev/$jre /disk || return 30",
                    "  ip link set lo up && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || { ip link; return 31; }",
                    // busybox 1.35's wget -T segfaults (seen in this guest); timeout(1) bounds it instead.
                    "  timeout 30 wget -q -O /tmp/v2 http://" + guestRegistry + "/v2/ || { echo 'guest cannot reach the registry'; ip addr; return 32; }",
                    "  echo 'guest reaches the registry'",
                    "  " + GuestJre.command("/disk") + " attach /dev/nbd0 " + attachRef + " --insecure-registry " + guestRegistry
                            + " --cache-dir /tmp/cache --prefetch none --connections 2 --timeout 120 > /tmp/attach.log 2>&1 &",
                    "  pid=$!; i=0",
                    "  while [ \"$(cat /sys/block/nbd0/size)\" = 0 ]; do",
                    "    sleep 1; i=$((i+1))",
                    "    if [ $i -gt 300 ] || ! kill -0 $pid 2>/dev/null; then echo 'nbd0 never came up'; cat /tmp/attach.log; return 33; fi",
                    "  done",
                    "  echo \"nbd0: $(cat /sys/block/nbd0/size) sectors after ${i}s\"",
                    "  mount -t erofs -o ro /dev/nbd0 /mnt || { cat /tmp/attach.log; return 34; }",
                    "  (cd /mnt && md5sum -c /expected.md5 > /tmp/nbd0.check 2>&1) || { grep -v ': OK' /tmp/nbd0.check | head; cat /tmp/attach.log; return 35; }",
                    "  echo \"attach REF: $(grep -c ': OK' /tmp/nbd0.check) files OK\"",
                    "  umount /mnt",
                    "  kill -TERM $pid; wait $pid; echo \"nbd0: strata exited $?\"",
                    "  [ \"$(cat /sys/block/nbd0/size)\" = 0 ] || { echo 'nbd0 still sized'; return 36; }",
                    "  [ -e /sys/block/nbd0/pid ] && { echo 'nbd0 still owned'; return 37; }",
                    "  echo 'nbd0: released'",
                    "  grep -E 'attached|closed|detached' /tmp/attach.log | sed 's/^/  log: /'",
                    "}",
                    "vhost_check; v=$?",
                    "attach_check; a=$?",
                    "[ $v = 0 ] || exit $v",
                    "exit $a");

            Path socket = tmp.resolve("vhost.sock");
            long start = System.nanoTime();
            Guest.Result r;
            try (BackEndProcess backEnd = BackEndProcess.start(socket, tmp.resolve("backend.log"), vhostRef,
                    "--cache-dir", Files.createDirectories(tmp.resolve("host-cache")).toString(),
                    "--insecure-registry", registry.registry(), "--prefetch", "none", "--queues", "2")) {
                r = new Guest(kit, Files.createDirectories(tmp.resolve("boot")), script).sharedMemory().memory(1536).timeout(900)
                        .file("expected.md5", md5)
                        .args("-chardev", "socket,id=c0,path=" + socket,
                                "-device", "vhost-user-blk-pci,chardev=c0,num-queues=2",
                                "-drive", "file=" + diskImage + ",if=none,id=jre,format=raw,readonly=on",
                                "-device", "virtio-blk-pci,drive=jre,serial=guest-jre",
                                // slirp: outgoing guest connections become host sockets; 10.0.2.2 is the host's loopback.
                                "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0")
                        .boot();
                System.out.println("guest output (" + TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start) + " s):"
                        + r.output() + "\nback-end log:\n" + backEnd.log());
            }
            assertEquals(0, r.exitCode(), "guest script failed:\n" + r.output() + "\nconsole:\n" + Guest.tail(r.console()));
            assertTrue(r.output().contains("vhost-user REF: " + files + " files OK"), r.output());
            assertTrue(r.output().contains("attach REF: " + files + " files OK"), r.output());
            assertTrue(r.output().contains("nbd0: released"), r.output());

            List<RegistryFixture.AccessLogEntry> reads = registry.accessLog().subList(pushed, registry.accessLog().size());
            for (String repo : List.of("strata/guest-vhost", "strata/guest-attach")) {
                for (var blob : dataBlobs.entrySet()) {
                    String path = "/v2/" + repo + "/blobs/sha256:" + blob.getKey();
                    List<RegistryFixture.AccessLogEntry> blobReads = reads.stream()
                            .filter(e -> e.method().equals("GET") && e.path().equals(path)).toList();
                    System.out.println(repo + ": " + blobReads.size() + " reads of data blob " + blob.getKey() + " ("
                            + blob.getValue() + " bytes): " + blobReads.stream().map(e -> e.status() + ":" + e.bytes()).toList());
                    assertTrue(!blobReads.isEmpty(), repo + ": the guest's reads fetched blob " + blob.getKey());
                    // Lazy: only parts of the blob (whole chunks, merged up to 1 MiB), never the blob in one response.
                    assertTrue(blobReads.stream().allMatch(e -> e.isRangeRead() && e.bytes() < blob.getValue()),
                            repo + ": every read of blob " + blob.getKey() + " is a range read (206) of part of it: " + blobReads);
                }
            }
        }
    }
}
