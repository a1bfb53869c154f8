package io.strata.core.os;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
