package io.strata.core.os;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/** The file of a listening unix socket, shared by the transports' servers. */
public final class UnixSocketFiles {
    private UnixSocketFiles() {
    }

    /**
     * Makes {@code path} free to bind: a file left by a server that died is removed, but a socket a
     * running server still answers on is an error (two servers must not share one path).
     */
    public static void removeStale(Path path) throws IOException {
        if (!Files.exists(path)) {
            return;
        }
        boolean live;
        try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
            live = true;
        } catch (IOException refused) {
            live = false;
        }
        if (live) {
            throw new IOException("socket " + path + " is in use by a running server");
        }
        Files.delete(path);
    }
}
