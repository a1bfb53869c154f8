package io.strata.qemu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.export.DeviceExporter;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code strata attach} inside a real guest (the host kernel has no nbd): a jlink JRE and Strata's
 * jars on a plain virtio disk, the guest kernel's nbd.ko; attach the Nydus fixture (2 connections)
 * and a mkfs.erofs tree via --raw (4 connections), mount /dev/nbdN as EROFS, check every file's md5,
 * then SIGTERM and check the device is released.
 */
// The guest's own limit is 15 min (a JVM in a TCG guest is slow); this only catches what it cannot.
@Timeout(value = 17, unit = TimeUnit.MINUTES)
class NbdKernelAttachGuestTest {
    @TempDir
    Path tmp;

    @Test
    void attachMountVerifyAndRelease() throws Exception {
        GuestKit kit = GuestKit.require();
        HostTools.requireTool("mkfs.erofs", "erofs-utils");
        HostTools.requireRootWithErofsAndLoop();

        Path disk = Files.createDirectories(tmp.resolve("disk"));
        GuestJre.populate(disk);
        Path data = Files.createDirectories(disk.resolve("data"));
        Files.copy(Fixtures.nydusBootstrap(), data.resolve("rafs-v6-2.2.boot"));
        Files.copy(Fixtures.nydusDir().resolve(Fixtures.NYDUS_BLOB_ID), data.resolve(Fixtures.NYDUS_BLOB_ID));

        // Expected md5s of the fixture's files, from the host kernel's mount of Strata's export.
        Path export = tmp.resolve("fixture.raw");
        try (FlatDevice dev = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()),
                FlatDeviceOptions.defaults())) {
            DeviceExporter.export(dev, export, null, (d, t) -> { });
        }
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(export, tmp.resolve("mnt"))) {
            Files.writeString(data.resolve("fixture.md5"), md5List(m.path()));
        }
        // A tree of real files, as a plain mkfs.erofs image served with --raw.
        Path tree = Files.createDirectories(tmp.resolve("tree"));
        try (Stream<Path> s = Files.walk(Path.of("/usr/include"))) {
            List<Path> files = s.filter(Files::isRegularFile).sorted().limit(600).toList();
            for (Path f : files) {
                Path dst = tree.resolve(Path.of("/usr/include").relativize(f).toString());
                Files.createDirectories(dst.getParent());
                Files.copy(f, dst);
            }
        }
        HostTools.run(List.of("mkfs.erofs", data.resolve("tree.erofs").toString(), tree.toString()));
        Files.writeString(data.resolve("tree.md5"), md5List(tree));
        Path diskImage = tmp.resolve("disk.erofs");
        HostTools.run(List.of("mkfs.erofs", diskImage.toString(), disk.toString()));

        String strata = GuestJre.command("/disk");
        String script = String.join("\n",
                "mount -t tmpfs tmpfs /tmp",
                "mkdir -p /disk /mnt",
                "mount -t erofs -o ro /dev/vda /disk || exit 10",
                "attach_check() { # dev connections md5file args...",
                "  dev=$1; n=$2; sums=$3; shift 3",
                "  " + strata + " attach /dev/$dev \"$@\" --connections $n --timeout 120 > /tmp/$dev.log 2>&1 &",
                "  pid=$!; i=0",
                "  while [ \"$(cat /sys/block/$dev/size)\" = 0 ]; do",
                "    sleep 1; i=$((i+1))",
                "    if [ $i -gt 240 ] || ! kill -0 $pid 2>/dev/null; then echo \"$dev never came up\"; cat /tmp/$dev.log; return 11; fi",
                "  done",
                "  echo \"$dev: $(cat /sys/block/$dev/size) sectors after ${i}s\"",
                "  mount -t erofs -o ro /dev/$dev /mnt || { cat /tmp/$dev.log; return 12; }",
                "  (cd /mnt && md5sum -c $sums > /tmp/$dev.check 2>&1) || { grep -v ': OK' /tmp/$dev.check | head; cat /tmp/$dev.log; return 13; }",
                "  echo \"$dev: $(grep -c ': OK' /tmp/$dev.check) files OK\"",
                "  umount /mnt",
                "  kill -TERM $pid; wait $pid; echo \"$dev: strata exited $?\"",
                "  [ \"$(cat /sys/block/$dev/size)\" = 0 ] || { echo \"$dev still sized\"; return 14; }",
                "  [ -e /sys/block/$dev/pid ] && { echo \"$dev still owned\"; return 15; }",
                "  echo \"$dev: released\"",
                "  grep -E 'attached|closed|detached' /tmp/$dev.log | sed 's/^/  log: /'",
                "}",
                "attach_check nbd0 2 /disk/data/fixture.md5 /disk/data/rafs-v6-2.2.boot -D /disk/data || exit $?",
                "attach_check nbd1 4 /disk/data/tree.md5 --raw /disk/data/tree.erofs || exit $?",
                "exit 0");
        Guest.Result r = new Guest(kit, tmp, script).memory(1536).timeout(900).disk(diskImage).boot();
        System.out.println("guest output:" + r.output());
        assertEquals(0, r.exitCode(), "guest script failed:\n" + r.output() + "\nconsole:\n" + Guest.tail(r.console()));
        assertTrue(r.output().contains("nbd0: 2 files OK"), r.output());
        assertTrue(r.output().contains("nbd1: 600 files OK"), r.output());
        assertTrue(r.output().contains("nbd0: released") && r.output().contains("nbd1: released"), r.output());
    }

    /** "md5  ./relative/path" lines for every regular file under {@code root}, as md5sum -c reads them. */
    static String md5List(Path root) throws Exception {
        StringBuilder sb = new StringBuilder();
        MessageDigest md5 = MessageDigest.getInstance("MD5");
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s.filter(Files::isRegularFile).sorted()::iterator) {
                sb.append(HexFormat.of().formatHex(md5.digest(Files.readAllBytes(p)))).append("  ./")
                        .append(root.relativize(p)).append('\n');
            }
        }
        return sb.toString();
    }
}
