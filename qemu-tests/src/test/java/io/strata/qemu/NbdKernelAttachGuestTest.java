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
        Files.write(data.resolve("mbr.img"), mbrDisk());
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
                "  " + strata + " attach /dev/$dev \"$@\" --connections $n > /tmp/$dev.log 2>&1 &",
                "  pid=$!; i=0",
                // "attached" is printed once the device is live: it has its size then, not later.
                "  while ! grep -q '^attached ' /tmp/$dev.log; do",
                "    sleep 1; i=$((i+1))",
                "    if [ $i -gt 240 ] || ! kill -0 $pid 2>/dev/null; then echo \"$dev never came up\"; cat /tmp/$dev.log; return 11; fi",
                "  done",
                "  size=$(cat /sys/block/$dev/size)",
                "  [ \"$size\" != 0 ] || { echo \"$dev: 'attached' printed while its size was 0\"; return 16; }",
                "  echo \"$dev: $size sectors when attached, after ${i}s\"",
                "  echo \"$dev: io_timeout $(cat /sys/block/$dev/queue/io_timeout) ms\"",
                "  mount -t erofs -o ro /dev/$dev /mnt || { cat /tmp/$dev.log; return 12; }",
                "  (cd /mnt && md5sum -c $sums > /tmp/$dev.check 2>&1) || { grep -v ': OK' /tmp/$dev.check | head; cat /tmp/$dev.log; return 13; }",
                "  echo \"$dev: $(grep -c ': OK' /tmp/$dev.check) files OK\"",
                // A second attach of the busy device is refused and leaves the first one serving (it
                // used to clear the device's sockets first: every read of the mount then failed).
                "  " + strata + " attach /dev/$dev --raw /disk/data/tree.erofs > /tmp/$dev.busy 2>&1; rc=$?",
                "  if [ $rc != 1 ] || ! grep -q 'is in use: process' /tmp/$dev.busy; then",
                "    echo \"$dev: a second attach exited $rc\"; cat /tmp/$dev.busy; return 17",
                "  fi",
                "  echo 3 > /proc/sys/vm/drop_caches",
                "  (cd /mnt && md5sum -c $sums > /tmp/$dev.check2 2>&1) || { echo \"$dev: broken by a second attach\"; grep -v ': OK' /tmp/$dev.check2 | head; return 18; }",
                "  echo \"$dev: $(grep -c ': OK' /tmp/$dev.check2) files still OK after a second attach was refused\"",
                "  umount /mnt",
                "  kill -TERM $pid; wait $pid; echo \"$dev: strata exited $?\"",
                "  [ \"$(cat /sys/block/$dev/size)\" = 0 ] || { echo \"$dev still sized\"; return 14; }",
                "  [ -e /sys/block/$dev/pid ] && { echo \"$dev still owned\"; return 15; }",
                "  echo \"$dev: released\"",
                "  grep -E 'attached|closed|detached' /tmp/$dev.log | sed 's/^/  log: /'",
                "}",
                "attach_check nbd0 2 /disk/data/fixture.md5 /disk/data/rafs-v6-2.2.boot -D /disk/data || exit $?",
                "attach_check nbd1 4 /disk/data/tree.md5 --raw /disk/data/tree.erofs || exit $?",
                // A disk image with a partition table: its partition's node is refused (the ioctls
                // act on the whole disk, which another process serves).
                strata + " attach /dev/nbd2 --raw /disk/data/mbr.img > /tmp/nbd2.log 2>&1 &",
                "pid=$!; i=0",
                "while ! grep -q '^attached ' /tmp/nbd2.log; do",
                "  sleep 1; i=$((i+1))",
                "  if [ $i -gt 240 ] || ! kill -0 $pid 2>/dev/null; then echo 'nbd2 never came up'; cat /tmp/nbd2.log; exit 19; fi",
                "done",
                "dd if=/dev/nbd2 of=/dev/null bs=4096 count=1 2>/dev/null", // the first open scans the partitions
                "i=0; while [ ! -b /dev/nbd2p1 ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done",
                "[ -b /dev/nbd2p1 ] || { echo 'no /dev/nbd2p1'; ls /sys/block/nbd2; exit 20; }",
                strata + " attach /dev/nbd2p1 --raw /disk/data/tree.erofs > /tmp/nbd2p1.log 2>&1; rc=$?",
                "if [ $rc != 2 ] || ! grep -q 'is a partition of an nbd device' /tmp/nbd2p1.log; then echo \"nbd2p1: exited $rc\"; cat /tmp/nbd2p1.log; exit 21; fi",
                "echo 'nbd2p1: refused as a partition'",
                "kill -TERM $pid; wait $pid; echo \"nbd2: strata exited $?\"",
                "exit 0");
        Guest.Result r = new Guest(kit, tmp, script).memory(1536).timeout(900).disk(diskImage).boot();
        System.out.println("guest output:" + r.output());
        assertEquals(0, r.exitCode(), "guest script failed:\n" + r.output() + "\nconsole:\n" + Guest.tail(r.console()));
        assertTrue(r.output().contains("nbd0: 2 files OK"), r.output());
        // Several sockets and no --timeout: the kernel's own 30 s would kill a socket per slow read.
        assertTrue(r.output().contains("nbd0: io_timeout 2000000000 ms") && r.output().contains("nbd1: io_timeout 2000000000 ms"),
                r.output());
        assertTrue(r.output().contains("nbd1: 600 files OK"), r.output());
        assertTrue(r.output().contains("nbd0: released") && r.output().contains("nbd1: released"), r.output());
        assertTrue(r.output().contains("nbd0: 2 files still OK after a second attach was refused"), r.output());
        assertTrue(r.output().contains("nbd1: 600 files still OK after a second attach was refused"), r.output());
        assertTrue(r.output().contains("nbd2p1: refused as a partition"), r.output());
    }

    /** A 2 MiB disk image with an MBR partition table: one Linux partition, sectors 2048-4095. */
    static byte[] mbrDisk() {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(2 << 20).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int entry = 446; // the first of four 16-byte partition entries
        b.put(entry + 4, (byte) 0x83); // type: Linux
        b.putInt(entry + 8, 2048); // first sector (LBA)
        b.putInt(entry + 12, 2048); // sectors
        b.put(510, (byte) 0x55).put(511, (byte) 0xaa);
        return b.array();
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
