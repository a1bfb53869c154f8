package io.strata.core.os;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Binding a unix socket at a path: only a dead server's socket is ever replaced, never a file. */
class UnixSocketFilesTest {
    @TempDir
    Path tmp;

    @Test
    void aFileADirectoryOrASymlinkAtThePathIsNeverReplaced() throws IOException {
        Path file = tmp.resolve("notes.txt");
        Files.writeString(file, "precious data");
        Path dir = Files.createDirectory(tmp.resolve("empty-dir"));
        Path link = Files.createSymbolicLink(tmp.resolve("link"), file);
        for (Path p : new Path[] {file, dir, link}) {
            IOException e = assertThrows(IOException.class, () -> UnixSocketFiles.bind(p, 0600, 8));
            assertTrue(e.getMessage().contains("exists and is not a socket"), e.getMessage());
        }
        assertEquals("precious data", Files.readString(file));
        assertTrue(Files.isDirectory(dir) && Files.isSymbolicLink(link));
    }

    @Test
    void aMissingDirectoryIsNamed() {
        Path socket = tmp.resolve("no-such-dir").resolve("c.sock");
        IOException e = assertThrows(IOException.class, () -> UnixSocketFiles.bind(socket, 0600, 8));
        assertTrue(e.getMessage().contains(socket.toString()) && e.getMessage().contains("no directory " + socket.getParent()),
                e.getMessage());
    }

    @Test
    void aDeadServersSocketIsReplacedALiveOnesIsNot() throws IOException {
        Path socket = tmp.resolve("s.sock");
        ServerSocketChannel first = UnixSocketFiles.bind(socket, 0600, 8);
        IOException live = assertThrows(IOException.class, () -> UnixSocketFiles.bind(socket, 0600, 8));
        assertTrue(live.getMessage().contains("in use by a running server"), live.getMessage());
        first.close(); // the file stays, as a server that died leaves it
        assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
        try (ServerSocketChannel second = UnixSocketFiles.bind(socket, 0600, 8)) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
        }
    }
}
