package io.strata.qemu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code --legacy-kernel} layout against the kernel it exists for: Debian bookworm's own 6.1
 * (EROFS learned to read a multi-blob image as one flat device in 6.4). One boot of 6.1 with the
 * same two-blob image served twice by {@code strata serve vhost-user}, flat and {@code --legacy-kernel}:
 * the flat device must fail to mount (so this guest is an oracle that can say no, while the host's
 * newer kernel mounts that same flat export with every file right), the legacy device must mount
 * with every md5 equal to what umoci unpacks, and so must {@code strata attach --legacy-kernel}
 * run inside the guest.
 */
// The guest's own limit is 15 min (a JVM in a TCG guest is slow); this only catches what it cannot.
@Timeout(value = 17, unit = TimeUnit.MINUTES)
class LegacyKernelGuestTest {
    @TempDir
    Path tmp;

    @Test
    void flatFailsAndLegacyMountsOnBookwormsKernelOverVhostUserAndAttach() throws Exception {
        GuestKit kit = GuestKit.require().legacy();
        HostTools.requireTool("umoci", "umoci");
        HostTools.requireTool("mkfs.erofs", "erofs-utils");
        HostTools.requireRootWithErofsAndLoop();

        // A two-layer OCI image (real files; layer 2 changes one and copies a multi-chunk file, whose
        // chunks then point into layer 1's blob), built by strata into two blobs.
        Path layout = twoLayerLayout();
        Path kitDir = Files.createDirectories(tmp.resolve("kit"));
        Path img = kitDir.resolve("img");
        strata("build", layout.toString(), "-o", img.toString(), "--chunk-size", "256K", "--legacy-kernel",
                "--source-date-epoch", "1700000000");
        try (Stream<Path> s = Files.list(img.resolve("blobs"))) {
            assertEquals(2, s.count(), "one blob per layer");
        }
        Path unpacked = tmp.resolve("unpacked");
        HostTools.run(List.of("umoci", "unpack", "--image", layout + ":img", unpacked.toString()));
        String expected = NbdKernelAttachGuestTest.md5List(unpacked.resolve("rootfs"));

        // The host's kernel (6.4+) mounts the flat export with every file right: if 6.1 refuses it,
        // that is the kernel's age, not a broken image.
        Path flat = tmp.resolve("flat.raw");
        Path legacy = tmp.resolve("legacy.raw");
        strata("export", img.resolve("bootstrap").toString(), "-o", flat.toString());
        strata("export", img.resolve("bootstrap").toString(), "-o", legacy.toString(), "--legacy-kernel");
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(flat, tmp.resolve("mnt-flat"))) {
            assertEquals(expected, NbdKernelAttachGuestTest.md5List(m.path()), "the host mounts the flat layout");
        }
        // The guest tells its disks apart by their first block (the layouts' bootstraps differ).
        String flatBlock0 = md5OfFirstBlock(flat);
        String legacyBlock0 = md5OfFirstBlock(legacy);
        assertNotEquals(flatBlock0, legacyBlock0);

        // The kit disk: a JRE and Strata's jars, and the image for attach.
        GuestJre.populate(kitDir);
        Path kitImage = tmp.resolve("kit.erofs");
        HostTools.run(List.of("mkfs.erofs", kitImage.toString(), kitDir.toString()));

        String strataInGuest = GuestJre.command("/kit");
        String script = String.join("\n",
                "mount -t tmpfs tmpfs /tmp",
                "mkdir -p /kit /mnt",
                "echo \"kernel: $(uname -r)\"",
                "flat=; legacy=; kitdev=",
                "for d in /sys/block/vd*; do",
                "  n=${d##*/}",
                "  case $(dd if=/dev/$n bs=4096 count=1 2>/dev/null | md5sum | cut -d' ' -f1) in",
                "    " + flatBlock0 + ") flat=$n ;;",
                "    " + legacyBlock0 + ") legacy=$n ;;",
                "    *) kitdev=$n ;;",
                "  esac",
                "done",
                "echo \"disks: flat=$flat legacy=$legacy kit=$kitdev\"",
                "[ -n \"$flat\" ] && [ -n \"$legacy\" ] && [ -n \"$kitdev\" ] || exit 10",
                "files=$(wc -l < /expected.md5)",
                // 1. The flat layout: this kernel must refuse it.
                "if mount -t erofs -o ro /dev/$flat /mnt 2>/tmp/flat.err; then",
                "  (cd /mnt && md5sum -c /expected.md5 > /tmp/flat.check 2>&1)",
                "  echo \"flat: MOUNTED, $(grep -c ': OK' /tmp/flat.check) of $files files right\"",
                "  umount /mnt",
                "else",
                "  echo \"flat: mount refused: $(cat /tmp/flat.err)\"",
                "fi",
                "dmesg | grep -i erofs | tail -n 4 | sed 's/^/  dmesg: /'",
                // 2. The legacy layout served by strata serve vhost-user --legacy-kernel.
                "mount -t erofs -o ro /dev/$legacy /mnt || exit 20",
                "(cd /mnt && md5sum -c /expected.md5 > /tmp/vu.check 2>&1) || { grep -v ': OK' /tmp/vu.check | head; exit 21; }",
                "echo \"vhost-user legacy: $(grep -c ': OK' /tmp/vu.check) of $files files OK\"",
                "umount /mnt",
                // 3. The legacy layout through strata attach in this guest.
                "mount -t erofs -o ro /dev/$kitdev /kit || exit 30",
                strataInGuest + " attach /dev/nbd0 /kit/img/bootstrap -D /kit/img/blobs --legacy-kernel --connections 2"
                        + " --timeout 120 > /tmp/attach.log 2>&1 &",
                "pid=$!; i=0",
                "while [ \"$(cat /sys/block/nbd0/size)\" = 0 ]; do",
                "  sleep 1; i=$((i+1))",
                "  if [ $i -gt 300 ] || ! kill -0 $pid 2>/dev/null; then echo 'nbd0 never came up'; cat /tmp/attach.log; exit 31; fi",
                "done",
                "mount -t erofs -o ro /dev/nbd0 /mnt || { cat /tmp/attach.log; exit 32; }",
                "(cd /mnt && md5sum -c /expected.md5 > /tmp/nbd.check 2>&1) || { grep -v ': OK' /tmp/nbd.check | head; cat /tmp/attach.log; exit 33; }",
                "echo \"attach legacy: $(grep -c ': OK' /tmp/nbd.check) of $files files OK\"",
                "umount /mnt",
                "kill -TERM $pid; wait $pid; echo \"attach: strata exited $?\"",
                // Seen twice in CI: one request unanswered for the kernel's 120 s (cause not found):
                // the server's own account of its connections, for whoever looks next.
                "if dmesg | grep -q 'timed out'; then echo 'the kernel timed a request out; attach log:';"
                        + " tail -n 40 /tmp/attach.log | sed 's/^/  log: /'; fi",
                "exit 0");

        long files = expected.lines().count();
        try (BackEndProcess flatServer = BackEndProcess.start(tmp.resolve("flat.sock"), tmp.resolve("flat.log"),
                img.resolve("bootstrap").toString(), "--queues", "1");
             BackEndProcess legacyServer = BackEndProcess.start(tmp.resolve("legacy.sock"), tmp.resolve("legacy.log"),
                img.resolve("bootstrap").toString(), "--queues", "1", "--legacy-kernel")) {
            Path work = Files.createDirectories(tmp.resolve("boot"));
            Guest.Result r = new Guest(kit, work, script).sharedMemory().memory(1536).timeout(900)
                    .file("expected.md5", expected)
                    .args("-chardev", "socket,id=flat,path=" + tmp.resolve("flat.sock"),
                            "-device", "vhost-user-blk-pci,chardev=flat,num-queues=1",
                            "-chardev", "socket,id=legacy,path=" + tmp.resolve("legacy.sock"),
                            "-device", "vhost-user-blk-pci,chardev=legacy,num-queues=1")
                    .disk(kitImage)
                    .boot();
            System.out.println("guest output:" + r.output());
            assertEquals(0, r.exitCode(), "guest script failed:\n" + r.output() + "\nconsole:\n" + Guest.tail(r.console())
                    + "\nflat back-end:\n" + flatServer.log() + "\nlegacy back-end:\n" + legacyServer.log());
            assertTrue(r.output().contains("kernel: 6.1."), "bookworm's 6.1 kernel ran: " + r.output());
            assertTrue(r.output().contains("flat: mount refused"), "6.1 must not mount the flat layout: " + r.output());
            assertTrue(r.output().contains("vhost-user legacy: " + files + " of " + files + " files OK"), r.output());
            assertTrue(r.output().contains("attach legacy: " + files + " of " + files + " files OK"), r.output());
            assertTrue(r.output().contains("attach: strata exited"), r.output());
        }
    }

    /** Two layers made by umoci from real files: layer 2 changes a file and copies a multi-chunk one. */
    private Path twoLayerLayout() throws Exception {
        Path layout = tmp.resolve("oci");
        HostTools.run(List.of("umoci", "init", "--layout", layout.toString()));
        HostTools.run(List.of("umoci", "new", "--image", layout + ":img"));
        List<Path> headers;
        try (Stream<Path> s = Files.walk(Path.of("/usr/include"))) {
            headers = s.filter(Files::isRegularFile).sorted().limit(400).toList();
        }
        Path root = unpack(layout, "bundle1");
        for (Path f : headers.subList(0, 200)) {
            copyInto(root, f);
        }
        byte[] big = new byte[3 << 20];
        new Random(1).nextBytes(big);
        Files.write(root.resolve("big.bin"), big);
        HostTools.run(List.of("umoci", "repack", "--image", layout + ":img", root.getParent().toString()));

        root = unpack(layout, "bundle2");
        for (Path f : headers.subList(200, 400)) {
            copyInto(root, f);
        }
        Path changed = root.resolve(Path.of("/usr/include").relativize(headers.get(0)).toString());
        Files.writeString(changed, "changed in layer 2\n", StandardCharsets.UTF_8);
        Files.copy(root.resolve("big.bin"), root.resolve("copy-of-big.bin"));
        HostTools.run(List.of("umoci", "repack", "--image", layout + ":img", root.getParent().toString()));
        return layout;
    }

    private Path unpack(Path layout, String bundle) throws Exception {
        HostTools.run(List.of("umoci", "unpack", "--image", layout + ":img", tmp.resolve(bundle).toString()));
        return tmp.resolve(bundle).resolve("rootfs");
    }

    private static void copyInto(Path root, Path header) throws Exception {
        Path dst = root.resolve(Path.of("/usr/include").relativize(header).toString());
        Files.createDirectories(dst.getParent());
        Files.copy(header, dst);
    }

    private static String md5OfFirstBlock(Path image) throws Exception {
        byte[] block = new byte[4096];
        try (var in = Files.newInputStream(image)) {
            assertEquals(block.length, in.readNBytes(block, 0, block.length));
        }
        return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(block));
    }

    /** Runs bin/strata with the test's JDK; it must succeed within 5 minutes. */
    private void strata(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(GuestKit.strataHome().resolve("bin/strata").toString()));
        cmd.addAll(List.of(args));
        Path log = tmp.resolve("strata-" + args[0] + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            fail("strata " + String.join(" ", args) + " timed out: " + Files.readString(log));
        }
        assertEquals(0, p.exitValue(), "strata " + String.join(" ", args) + ": " + Files.readString(log));
    }
}
