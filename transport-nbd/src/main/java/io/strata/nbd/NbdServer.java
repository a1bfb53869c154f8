package io.strata.nbd;

import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The NBD server: listeners on unix sockets and TCP, and per connection a few threads that read,
 * answer and reply (see {@link Connection}). Unix sockets use the JDK's own support (Java 16+), whose
 * channels {@code FileChannel.transferTo} feeds with sendfile.
 */
public final class NbdServer implements Closeable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdServer.class);

    /**
     * Tuning: threads per connection. The leader answers cached reads in batches of up to
     * {@link Connection#MAX_BATCH}; each batch that loads chunks keeps a thread, so at most this many
     * batches (and this x MAX_BATCH requests) are in flight on one connection.
     */
    public record Options(int maxInflightPerConnection) {
        public static final int DEFAULT_INFLIGHT = 16;

        public static Options defaults() {
            return new Options(DEFAULT_INFLIGHT);
        }
    }

    private final ExportRegistry exports;
    private final Options options;
    private final ServerMetrics metrics = new ServerMetrics();
    private final List<ServerSocketChannel> listeners = new CopyOnWriteArrayList<>();
    private final List<Path> socketFiles = new CopyOnWriteArrayList<>();
    private final Set<SocketChannel> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger connectionIds = new AtomicInteger();
    private volatile boolean closed;

    public NbdServer(ExportRegistry exports, Options options) {
        this.exports = exports;
        this.options = options;
        if (options.maxInflightPerConnection() < 1) {
            throw new IllegalArgumentException("in-flight limit must be at least 1");
        }
    }

    public ServerMetrics metrics() {
        return metrics;
    }

    /** Listens on a unix socket; a stale socket file from a dead server is replaced. */
    public void listenUnix(Path path) throws IOException {
        io.strata.core.os.UnixSocketFiles.removeStale(path);
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        socketFiles.add(path);
        start(server, "unix:" + path);
    }

    /** Listens on TCP; returns the bound address (port 0 picks a free one). */
    public InetSocketAddress listenTcp(String host, int port) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress(host, port), 256);
        InetSocketAddress bound = (InetSocketAddress) server.getLocalAddress();
        start(server, "tcp:" + bound.getHostString() + ":" + bound.getPort());
        return bound;
    }

    private void start(ServerSocketChannel server, String name) {
        listeners.add(server);
        Thread t = new Thread(() -> acceptLoop(server, name), "nbd-accept-" + name);
        t.setDaemon(true);
        t.start();
        LOG.info("nbd: listening on {}", name);
    }

    private void acceptLoop(ServerSocketChannel server, String name) {
        while (!closed) {
            SocketChannel ch;
            try {
                ch = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.error("nbd: accept on {} failed: {}", name, e.getMessage());
                }
                return;
            }
            String peer = "#" + connectionIds.incrementAndGet() + " " + describePeer(ch, name);
            Thread t = new Thread(() -> handshakeAndServe(ch, peer), "nbd-conn-" + connectionIds.get());
            t.setDaemon(true);
            t.start();
        }
    }

    private static String describePeer(SocketChannel ch, String listener) {
        try {
            Object remote = ch.getRemoteAddress();
            if (remote instanceof InetSocketAddress) {
                InetSocketAddress a = (InetSocketAddress) remote;
                return a.getHostString() + ":" + a.getPort();
            }
        } catch (IOException ignored) {
            // fall through
        }
        return listener;
    }

    private void handshakeAndServe(SocketChannel ch, String peer) {
        open.add(ch);
        metrics.connectionsOpen.incrementAndGet();
        metrics.connectionsTotal.increment();
        try {
            if (ch.getLocalAddress() instanceof InetSocketAddress) {
                ch.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
            }
            // A larger send buffer lets one sendfile/write move a whole 1 MiB reply at once.
            ch.setOption(java.net.StandardSocketOptions.SO_SNDBUF, 4 << 20);
            Negotiated n = new Handshake(ch, exports).run();
            if (n == null) {
                LOG.info("nbd {}: aborted the handshake", peer);
                return;
            }
            serveNegotiated(ch, peer, n);
        } catch (IOException e) {
            LOG.info("nbd {}: handshake failed: {}", peer, e.getMessage());
        } finally {
            closeQuietly(ch);
            open.remove(ch);
            metrics.connectionsOpen.decrementAndGet();
        }
    }

    private void serveNegotiated(SocketChannel ch, String peer, Negotiated n) {
        LOG.info("nbd {}: export '{}' ({} bytes), {} replies{}", peer, n.export().name(), n.export().device().size(),
                n.structuredReplies() ? "structured" : "simple", n.allocationContext() ? ", base:allocation" : "");
        String why = new Connection(ch, peer, n, options.maxInflightPerConnection(), metrics).serve();
        LOG.info("nbd {}: closed: {}", peer, why);
    }

    /**
     * Serves an already-connected socket in the transmission phase, with no handshake: the kernel's
     * nbd driver speaks only transmission, with simple replies. Blocks until the socket closes.
     */
    public void serveTransmission(SocketChannel ch, String peer, Export export) {
        open.add(ch);
        metrics.connectionsOpen.incrementAndGet();
        metrics.connectionsTotal.increment();
        try {
            serveNegotiated(ch, peer, new Negotiated(export, false, false));
        } finally {
            closeQuietly(ch);
            open.remove(ch);
            metrics.connectionsOpen.decrementAndGet();
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // already closed
        }
    }

    @Override
    public void close() {
        closed = true;
        for (ServerSocketChannel s : listeners) {
            closeQuietly(s);
        }
        for (SocketChannel c : open) {
            closeQuietly(c);
        }
        for (Path p : socketFiles) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // best effort
            }
        }
        LOG.info("nbd: stopped; {}", metrics.snapshot());
    }
}
