package io.strata.core.os;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.buffer.NativeBuffer;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The descriptor an OpenFile hands to transports is the channel's own, found once. */
class OpenFileTest {
    @TempDir
    Path tmp;

    @Test
    void theDescriptorReadsTheChannelsFileAndIsLookedUpOnce() throws Exception {
        byte[] content = new byte[3 * 4096 + 17];
        new Random(7).nextBytes(content);
        Path path = Files.write(tmp.resolve("blob"), content);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
             NativeBuffer buffer = NativeBuffer.allocate(content.length)) {
            OpenFile file = new OpenFile(channel, path);
            int fd = file.descriptor();
            assertTrue(fd > 2, "a descriptor of its own, not stdio: " + fd);
            assertEquals(fd, file.descriptor());
            // A positional read through the descriptor (what vhost-user does into guest memory)
            // sees the file's bytes, from any offset.
            long n = Native.libc().pread(fd, buffer.address(), content.length - 100, 100);
            assertEquals(content.length - 100, n);
            ByteBuffer got = ByteBuffer.allocate(content.length - 100);
            buffer.copyTo(0, got, got.capacity());
            assertArrayEquals(java.util.Arrays.copyOfRange(content, 100, content.length), got.array());
        }
    }

    /**
     * A region is checked against the file's size: one past the end fails; after the file is cut
     * short, a region past its new end fails once the size last seen is older than RECHECK_NANOS.
     */
    @Test
    void aRegionPastTheFilesEndFailsAlsoAfterTheFileIsCutShort() throws Exception {
        Path path = Files.write(tmp.resolve("image"), new byte[64 << 10]);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
             FileChannel writer = FileChannel.open(path, StandardOpenOption.WRITE)) {
            OpenFile file = new OpenFile(channel, path);
            file.checkHolds(0, 64 << 10);
            java.io.EOFException past = assertThrows(java.io.EOFException.class, () -> file.checkHolds(60 << 10, 8 << 10));
            assertTrue(past.getMessage().contains(path + " ends at byte 65536, inside the region 61440+8192"), past.getMessage());
            writer.truncate(16 << 10);
            long cut = System.nanoTime();
            while (System.nanoTime() - cut <= OpenFile.RECHECK_NANOS) {
                Thread.onSpinWait(); // the awaited condition: the size seen before the cut has expired
            }
            assertThrows(java.io.EOFException.class, () -> file.checkHolds(32 << 10, 4096));
            file.checkHolds(0, 16 << 10);
        }
    }
}
