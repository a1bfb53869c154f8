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
}
