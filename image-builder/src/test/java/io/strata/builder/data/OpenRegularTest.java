package io.strata.builder.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a directory build opens, once its walk saw a regular file there: the same file, or a clear
 * error when something else has taken its place since. A FIFO put there between the walk's lstat and
 * the open made the open, and the build, wait for ever for a writer.
 */
class OpenRegularTest {
    @TempDir
    Path tmp;

    @Test
    void aRegularFileIsOpenedAndAnythingElseIsRefusedAtOnce() throws Exception {
        Path file = Files.writeString(tmp.resolve("f"), "content");
        try (FileChannel ch = ChunkPipeline.openRegular(file)) {
            ByteBuffer b = ByteBuffer.allocate(7);
            ch.read(b, 0);
            assertEquals("content", new String(b.array(), java.nio.charset.StandardCharsets.US_ASCII));
        }
        Path fifo = tmp.resolve("fifo");
        HostTools.run(List.of("mkfifo", fifo.toString()));
        IOException notRegular = assertThrows(IOException.class, () -> ChunkPipeline.openRegular(fifo)); // it blocked, for ever
        assertTrue(notRegular.getMessage().contains("no longer a regular file"), notRegular.getMessage());
        Path link = Files.createSymbolicLink(tmp.resolve("link"), file);
        IOException symlink = assertThrows(IOException.class, () -> ChunkPipeline.openRegular(link));
        assertTrue(symlink.getMessage().contains("it became a symlink during the build"), symlink.getMessage());
    }
}
