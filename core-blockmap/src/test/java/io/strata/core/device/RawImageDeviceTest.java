package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.strata.core.testing.HostTools;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A plain image file is a device of its own: a mkfs.erofs image reads back byte for byte. */
class RawImageDeviceTest {
    @TempDir
    Path tmp;

    @Test
    void mkfsErofsImageReadsBackExactly() throws Exception {
        HostTools.requireTool("mkfs.erofs", "erofs-utils");
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(5);
        for (int i = 0; i < 50; i++) {
            byte[] data = new byte[r.nextInt(20000)];
            r.nextBytes(data);
            Files.write(src.resolve("f" + i), data);
        }
        Path img = tmp.resolve("plain.erofs");
        HostTools.run(List.of("mkfs.erofs", img.toString(), src.toString()));
        byte[] expected = Files.readAllBytes(img);
        try (RawImageDevice dev = RawImageDevice.open(img)) {
            assertEquals(expected.length, dev.size());
            for (int i = 0; i < 200; i++) {
                int len = 1 + r.nextInt(9000);
                long off = (long) (r.nextDouble() * (expected.length - len));
                ByteBuffer buf = ByteBuffer.allocate(len);
                dev.read(off, buf);
                assertArrayEquals(Arrays.copyOfRange(expected, (int) off, (int) off + len), buf.array());
            }
            assertThrows(OutOfRangeException.class, () -> dev.read(expected.length - 1, ByteBuffer.allocate(2)));
        }
    }

    /**
     * A sparse file maps as its data and its holes (lseek SEEK_DATA/SEEK_HOLE), which NBD's
     * base:allocation reports; it was one data run however sparse the file.
     */
    @Test
    void aSparseFileMapsItsHolesAsHoles() throws Exception {
        Path img = tmp.resolve("sparse.raw");
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(img,
                java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 0);
            ch.write(ByteBuffer.wrap(new byte[] {4}), 2 << 20);
        }
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(4 << 20); // extends without writing: a hole at the end
        }
        try (RawImageDevice dev = RawImageDevice.open(img)) {
            List<String> runs = new java.util.ArrayList<>();
            dev.mapAllocation(0, dev.size(), (len, hole) -> runs.add((hole ? "hole " : "data ") + len));
            // The file system allocates data in blocks (4 KiB here, or larger): each byte written is in a data run.
            assertEquals(4, runs.size(), runs.toString());
            assertEquals(List.of("data", "hole", "data", "hole"), runs.stream().map(r -> r.split(" ")[0]).toList(), runs.toString());
            assertEquals(4L << 20, runs.stream().mapToLong(r -> Long.parseLong(r.split(" ")[1])).sum());
            // A range inside a hole, and one that starts in data and stops early.
            List<String> inside = new java.util.ArrayList<>();
            dev.mapAllocation(1 << 20, 4096, (len, hole) -> inside.add((hole ? "hole " : "data ") + len));
            assertEquals(List.of("hole 4096"), inside);
            List<String> first = new java.util.ArrayList<>();
            dev.mapAllocation(0, dev.size(), (len, hole) -> first.add((hole ? "hole " : "data ") + len) && false);
            assertEquals(1, first.size(), first.toString());
        }
    }
}
