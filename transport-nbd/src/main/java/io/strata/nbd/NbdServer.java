package io.strata.nbd;

import io.strata.core.os.UnixSocketFiles;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The NBD server: listeners on unix sockets and TCP, one thread per connection (handshake, then
 * {@link Connection}), and one pool of loader threads shared by all connections for reads that must
 * load chunks. What a flood of clients can cost is bounded: {@link Options#maxConnections}
 * connections (more are closed at once, with a log line), {@link Options#handshakeTimeout} for the
 * negotiation, {@link Options#loadThreads} loader threads whatever the number of connections. Unix
 * sockets use the JDK's own support (Java 16+), whose channels {@code FileChannel.transferTo} feeds
 * with sendfile; their files are created with {@link Options#socketMode} (0600 by default).
 */
public final class NbdServer implements Closeable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdServer.class);

    /**
     * Tuning and limits.
     *
     * @param maxInflightPerConnection batches of up to {@link Connection#MAX_BATCH} requests one
     *     connection may have waiting for chunk loads at once (cached reads are answered meanwhile)
     * @param loadThreads threads, shared by all connections, that load chunks for those batches
     * @param maxConnections connections served at once (the handshake included); more are closed
     * @param backlog the listen backlog (the kernel trims it to net.core.somaxconn)
     * @param handshakeTimeout how long a client may take from connecting to the end of negotiation
     * @param socketMode permission bits of unix socket files
     */
    public record Options(int maxInflightPerConnection, int loadThreads, int maxConnections, int backlog,
            Duration handshakeTimeout, int socketMode, Duration batchWait) {
        public static final int DEFAULT_INFLIGHT = 16;
        public static final int DEFAULT_MAX_CONNECTIONS = 256;
        public static final int DEFAULT_BACKLOG = 1024;
        public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);
        /** {@link BatchWait}: 20 us, 4 KiB QD32 server CPU per GiB about halved (docs/benchmarks.md, "NBD server"). */
        public static final Duration DEFAULT_BATCH_WAIT = Duration.ofNanos(20_000);
        public static final Duration MAX_BATCH_WAIT = Duration.ofMillis(1);

        public Options {
            if (maxInflightPerConnection < 1) {
                throw new IllegalArgumentException("in-flight limit must be at least 1");
            }
            if (loadThreads < 1 || maxConnections < 1 || backlog < 1) {
                throw new IllegalArgumentException("load threads, connections and backlog must be at least 1");
            }
            if (handshakeTimeout.isNegative() || handshakeTimeout.isZero()) {
                throw new IllegalArgumentException("the handshake timeout must be positive");
            }
            if ((socketMode & ~0777) != 0) {
                throw new IllegalArgumentException("socket mode 0" + Integer.toOctalString(socketMode) + " is not permission bits");
            }
            if (batchWait.isNegative() || batchWait.compareTo(MAX_BATCH_WAIT) > 0) {
                throw new IllegalArgumentException("the batch wait must be 0 to " + MAX_BATCH_WAIT.toNanos() / 1000 + " us");
            }
        }

        /** Loader threads by default: twice the processors (loads decompress, and wait on disk), at least 8. */
        public static int defaultLoadThreads() {
            return Math.max(8, 2 * Runtime.getRuntime().availableProcessors());
        }

        public static Options defaults() {
            return new Options(DEFAULT_INFLIGHT, defaultLoadThreads(), DEFAULT_MAX_CONNECTIONS, DEFAULT_BACKLOG,
                    DEFAULT_HANDSHAKE_TIMEOUT, UnixSocketFiles.DEFAULT_MODE, DEFAULT_BATCH_WAIT);
        }

        public Options withMaxInflight(int n) {
            return new Options(n, loadThreads, maxConnections, backlog, handshakeTimeout, socketMode, batchWait);
        }

        public Options withLoadThreads(int n) {
            return new Options(maxInflightPerConnection, n, maxConnections, backlog, handshakeTimeout, socketMode, batchWait);
        }

        public Options withMaxConnections(int n) {
            return new Options(maxInflightPerConnection, loadThreads, n, backlog, handshakeTimeout, socketMode, batchWait);
        }

        public Options withBacklog(int n) {
            return new Options(maxInflightPerConnection, loadThreads, maxConnections, n, handshakeTimeout, socketMode, batchWait);
        }

        public Options withHandshakeTimeout(Duration d) {
            return new Options(maxInflightPerConnection, loadThreads, maxConnections, backlog, d, socketMode, batchWait);
        }

        /** How long a connection waits for more requests after a deep batch of small ones ({@link BatchWait}); zero: never. */
        public Options withBatchWait(Duration d) {
            return new Options(maxInflightPerConnection, loadThreads, maxConnections, backlog, handshakeTimeout, socketMode, d);
        }

        public Options withSocketMode(int mode) {
            return new Options(maxInflightPerConnection, loadThreads, maxConnections, backlog, handshakeTimeout, mode, batchWait);
        }
    }

    private final ExportRegistry exports;
    private final Options options;
    private final TlsConfig tls;
    private final ServerMetrics metrics = new ServerMetrics();
    private final List<ServerSocketChannel> listeners = new CopyOnWriteArrayList<>();
    private final List<Path> socketFiles = new CopyOnWriteArrayList<>();
    /** What ends each open connection: closing its socket (handshake) or stopping its Connection. */
    private final Set<Runnable> open = ConcurrentHashMap.newKeySet();
    /** Notified when the last open connection ends (what {@link #stop} waits for). */
    private final Object connectionEnded = new Object();
    /**
     * How long {@link #close} waits for connections to end, that is for the chunk loads they started
     * (a local one takes milliseconds; a remote one stalled on its registry may take up to the read
     * deadline). Past it the caller leaves the memory to the process's exit rather than wait.
     */
    public static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(10);
    /** Connections in transmission, by export: what {@link #clients} counts and {@link #disconnect} ends. */
    private final ConcurrentHashMap<Export, Set<Connection>> byExport = new ConcurrentHashMap<>();
    private final AtomicInteger connectionIds = new AtomicInteger();
    /** Connections accepted from the listeners and not yet closed (the --max-connections count). */
    private final AtomicInteger accepted = new AtomicInteger();
    private final ThreadPoolExecutor loaders;
    private final ScheduledThreadPoolExecutor timer;
    private long lastRefusalLog;
    private long refusedSinceLog;
    private volatile boolean closed;
    /** Whether it ever listened or served a connection: stopping one that never did logs nothing (a start that failed). */
    private volatile boolean served;

    /**
     * Loads and initialises the classes a server's first client needs (handshake, request loop,
     * replies) and the JDK's unix-socket support (whose set-up seeds a SecureRandom: the security
     * providers, ~20 ms), for a warm-up thread to call while the main thread opens the image: the
     * first client is then answered without waiting for them. Best effort, no side effects.
     */
    public static void prepareForFirstClient() {
        java.lang.invoke.MethodHandles.Lookup lookup = java.lang.invoke.MethodHandles.lookup();
        for (Class<?> c : new Class<?>[] {Handshake.class, Negotiated.class, Connection.class, ConnectionIo.class, ReplyWriter.class,
                ReplyHeaders.class, NbdRequest.class, Wire.class}) {
            try {
                lookup.ensureInitialized(c);
            } catch (IllegalAccessException | RuntimeException | LinkageError e) {
                return; // it will be loaded when first used, with its real context
            }
        }
        try {
            SocketChannel.open(java.net.StandardProtocolFamily.UNIX).close();
        } catch (IOException | RuntimeException e) {
            // as above
        }
    }

    public NbdServer(ExportRegistry exports, Options options) {
        this(exports, options, TlsConfig.off());
    }

    /** A server offering (ON) or requiring (REQUIRE) TLS through NBD_OPT_STARTTLS. */
    public NbdServer(ExportRegistry exports, Options options, TlsConfig tls) {
        this.exports = exports;
        this.options = options;
        this.tls = tls;
        // Threads start on demand and end after a minute idle: an idle server holds none.
        this.loaders = new ThreadPoolExecutor(options.loadThreads(), options.loadThreads(), 60, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), daemonThreads("nbd-load-"));
        loaders.allowCoreThreadTimeOut(true);
        this.timer = new ScheduledThreadPoolExecutor(1, daemonThreads("nbd-handshake-timer-"));
        timer.setRemoveOnCancelPolicy(true);
        timer.setKeepAliveTime(60, TimeUnit.SECONDS);
        timer.allowCoreThreadTimeOut(true);
    }

    private static ThreadFactory daemonThreads(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    public ServerMetrics metrics() {
        return metrics;
    }

    /**
     * Listens on a unix socket, created with the options' mode (see {@link UnixSocketFiles#bind});
     * a stale socket file from a dead server is replaced.
     */
    public void listenUnix(Path path) throws IOException {
        listen(bindUnix(path));
    }

    /** Listens on TCP; returns the bound address (port 0 picks a free one). */
    public InetSocketAddress listenTcp(String host, int port) throws IOException {
        Bound b = bindTcp(host, port);
        listen(b);
        return (InetSocketAddress) b.channel.getLocalAddress();
    }

    /**
     * A listening socket this server has bound but does not serve yet: {@link #listen(Bound)} starts
     * serving it, {@link #close()} gives it up (and its socket file). Binding every listener first lets
     * a command fail on any of them before it has served or logged anything.
     */
    public static final class Bound implements Closeable {
        private final ServerSocketChannel channel;
        private final Path socketFile;

        private Bound(ServerSocketChannel channel, Path socketFile) {
            this.channel = channel;
            this.socketFile = socketFile;
        }

        /** The bound address: TCP's port (port 0 picked a free one), or the unix socket's. */
        public java.net.SocketAddress address() throws IOException {
            return channel.getLocalAddress();
        }

        @Override
        public void close() {
            closeQuietly(channel);
            if (socketFile != null) {
                try {
                    Files.deleteIfExists(socketFile);
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }

    /** Binds a unix socket as {@link #listenUnix} does, without serving it yet. */
    public Bound bindUnix(Path path) throws IOException {
        return new Bound(UnixSocketFiles.bind(path, options.socketMode(), options.backlog()), path);
    }

    /** Binds a TCP address as {@link #listenTcp} does, without serving it yet. */
    public Bound bindTcp(String host, int port) throws IOException {
        InetSocketAddress address = new InetSocketAddress(host, port);
        if (address.isUnresolved()) {
            throw new IOException(host + ": unknown host");
        }
        ServerSocketChannel server = ServerSocketChannel.open();
        try {
            server.bind(address, options.backlog());
        } catch (IOException e) {
            server.close();
            throw e;
        }
        return new Bound(server, null);
    }

    /** Starts serving a socket bound by {@link #bindUnix} or {@link #bindTcp}. */
    public void listen(Bound b) throws IOException {
        if (b.socketFile != null) {
            socketFiles.add(b.socketFile);
            start(b.channel, "unix:" + b.socketFile);
            return;
        }
        InetSocketAddress bound = (InetSocketAddress) b.channel.getLocalAddress();
        start(b.channel, "tcp:" + bound.getHostString() + ":" + bound.getPort());
        if (isExposedWithoutTls(bound)) {
            LOG.warn(tls.enabled()
                    ? "nbd: serving on {} with TLS optional (--tls on): clients that skip STARTTLS read the exports in plaintext"
                    : "nbd: serving on {} without TLS: anyone who can reach this address reads the exports",
                    bound.getHostString() + ":" + bound.getPort());
        }
    }

    /**
     * Serves on a socket already bound and listening, opened by someone else (systemd socket
     * activation): its address, backlog and file mode are theirs, and its socket file is not
     * removed on close.
     */
    public void listenOn(ServerSocketChannel server) throws IOException {
        java.net.SocketAddress local = server.getLocalAddress();
        String name;
        if (local instanceof InetSocketAddress bound) {
            name = "tcp:" + bound.getHostString() + ":" + bound.getPort();
            start(server, name, " (passed in)");
            if (isExposedWithoutTls(bound)) {
                LOG.warn("nbd: serving on {} without TLS required: anyone who can reach this address reads the exports", name);
            }
        } else {
            name = "unix:" + local;
            start(server, name, " (passed in)");
        }
    }

    /**
     * True when a listener is reachable from other machines (not a loopback address) and clients
     * are not required to use TLS: worth a warning, since NBD itself authenticates nobody.
     */
    boolean isExposedWithoutTls(InetSocketAddress bound) {
        return !bound.getAddress().isLoopbackAddress() && !tls.required();
    }

    private void start(ServerSocketChannel server, String name) {
        start(server, name, "");
    }

    private void start(ServerSocketChannel server, String name, String note) {
        served = true;
        listeners.add(server);
        Thread t = new Thread(() -> acceptLoop(server, name), "nbd-accept-" + name);
        t.setDaemon(true);
        t.start();
        LOG.info("nbd: listening on {}{}", name, note);
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
            if (accepted.incrementAndGet() > options.maxConnections()) {
                accepted.decrementAndGet();
                refuse(ch, name);
                continue;
            }
            int id = connectionIds.incrementAndGet();
            String peer = "#" + id + " " + describePeer(ch, name);
            Thread t = new Thread(() -> {
                try {
                    handshakeAndServe(ch, peer);
                } finally {
                    accepted.decrementAndGet();
                }
            }, "nbd-conn-" + id);
            t.setDaemon(true);
            try {
                t.start();
            } catch (OutOfMemoryError e) { // "unable to create native thread": refuse, keep accepting
                accepted.decrementAndGet();
                refuse(ch, name);
            }
        }
    }

    /**
     * Closes a connection beyond --max-connections at once, so its client sees an error (the
     * greeting never comes) instead of waiting. One log line, at most one a second under a flood.
     */
    private synchronized void refuse(SocketChannel ch, String listener) {
        // Counted before the close: the client sees the close at once, and whoever then reads the
        // counter (a test, the metrics line) must already see this refusal.
        metrics.refused.increment();
        closeQuietly(ch);
        long now = System.nanoTime();
        refusedSinceLog++;
        if (now - lastRefusalLog >= 1_000_000_000L || lastRefusalLog == 0) {
            LOG.warn("nbd: {} connection(s) open, the --max-connections limit: refused {} on {}", options.maxConnections(),
                    refusedSinceLog == 1 ? "a connection" : refusedSinceLog + " connections", listener);
            lastRefusalLog = now;
            refusedSinceLog = 0;
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
        Runnable closeSocket = () -> closeQuietly(ch);
        open.add(closeSocket);
        metrics.connectionsOpen.incrementAndGet();
        metrics.connectionsTotal.increment();
        HandshakeDeadline deadline = null;
        Handshake handshake = null;
        try {
            if (closed) {
                return; // close() ran before this connection was registered
            }
            if (ch.getLocalAddress() instanceof InetSocketAddress) {
                ch.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
            }
            // A larger send buffer lets one sendfile/write move a whole 1 MiB reply at once.
            ch.setOption(java.net.StandardSocketOptions.SO_SNDBUF, 4 << 20);
            deadline = new HandshakeDeadline(ch);
            handshake = new Handshake(ch, exports, tls);
            Negotiated n = handshake.run();
            if (!deadline.cancel()) {
                throw new IOException("handshake timed out");
            }
            if (n == null) {
                LOG.info("nbd {}: aborted the handshake", peer);
                return;
            }
            serveNegotiated(ch, handshake.tlsChannel(), peer, n, true);
        } catch (RuntimeException e) {
            LOG.error("nbd {}: connection failed", peer, e); // a bug: this connection ends, the server goes on
        } catch (IOException e) {
            boolean late = deadline != null && deadline.fired;
            LOG.info("nbd {}: handshake failed: {}", peer, late
                    ? "not done within " + options.handshakeTimeout().toSeconds() + " s (--handshake-timeout)" : e.getMessage());
        } finally {
            if (deadline != null) {
                deadline.cancel();
            }
            if (handshake != null && handshake.tlsChannel() != null) {
                if (ch.isOpen()) {
                    handshake.tlsChannel().shutdown(ch); // ABORT under TLS; transmission sent its own close_notify
                }
                handshake.tlsChannel().release();
            }
            closeQuietly(ch);
            open.remove(closeSocket);
            connectionEnded();
        }
    }

    /** Closes a socket whose handshake is not done by the deadline: its blocked read then fails. */
    private final class HandshakeDeadline implements Runnable {
        private final SocketChannel ch;
        private final ScheduledFuture<?> task;
        volatile boolean fired;

        HandshakeDeadline(SocketChannel ch) {
            this.ch = ch;
            this.task = timer.schedule(this, options.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
        }

        @Override
        public void run() {
            fired = true;
            closeQuietly(ch);
        }

        /** Stops the deadline; false if it already fired. */
        boolean cancel() {
            task.cancel(false);
            return !fired;
        }
    }

    /** Serves transmission on {@code ch}, through {@code tls} when STARTTLS set it up (else null). */
    private void serveNegotiated(SocketChannel ch, TlsChannel tls, String peer, Negotiated n, boolean fromRegistry) throws IOException {
        LOG.info("nbd {}: export '{}' ({} bytes), {} replies{}{}", peer, n.export().name(), n.export().device().size(),
                n.structuredReplies() ? "structured" : "simple", n.allocationContext() ? ", base:allocation" : "",
                tls != null ? ", " + tls.describe() : "");
        Connection c = new Connection(ch, tls, peer, n, loaders, options.maxInflightPerConnection(),
                options.batchWait(), metrics);
        Runnable stop = c::stop;
        open.add(stop);
        n.export().counters().connectionOpened();
        Export export = n.export();
        byExport.compute(export, (k, set) -> {
            Set<Connection> s = set != null ? set : ConcurrentHashMap.newKeySet();
            s.add(c);
            return s;
        });
        try {
            // An export removed while this client chose it: disconnect() ran before we were in byExport,
            // so end here (after the registry removal, find no longer returns it).
            if (closed || (fromRegistry && exports.find(export.name()) != export)) {
                c.stop();
            }
            String why = c.serve();
            LOG.info("nbd {}: closed: {}", peer, why);
        } finally {
            n.export().counters().connectionClosed();
            byExport.computeIfPresent(export, (k, set) -> {
                set.remove(c);
                return set.isEmpty() ? null : set;
            });
            open.remove(stop);
        }
    }

    /** Clients in transmission on {@code export} now. */
    public int clients(Export export) {
        Set<Connection> set = byExport.get(export);
        return set == null ? 0 : set.size();
    }

    /**
     * Ends every connection serving {@code export}, which the caller has already taken out of the
     * registry (so no new client reaches it), and waits up to {@code wait} until each has finished:
     * its socket is closed and its loads are done, so the device may be closed. True when all ended.
     * As {@link #stop} does, the requests already read get their replies first (for up to half of
     * {@code wait}); then the connections are closed outright.
     */
    public boolean disconnect(Export export, Duration wait) throws InterruptedException {
        long now = System.nanoTime();
        long deadline = now + wait.toNanos();
        long finishBy = now + wait.toNanos() / 2;
        Set<Connection> serving = byExport.get(export);
        if (serving != null) {
            for (Connection c : serving) {
                c.finishAndStop();
            }
        }
        for (;;) {
            Set<Connection> set = byExport.get(export);
            if (set == null || set.isEmpty()) {
                return true;
            }
            if (System.nanoTime() - finishBy > 0) {
                for (Connection c : set) {
                    c.stop();
                }
            }
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            Thread.sleep(10); // a connection ends within one wake-up of its thread; nothing to wait on but that
        }
    }

    /**
     * Serves an already-connected socket in the transmission phase, with no handshake: the kernel's
     * nbd driver speaks only transmission, with simple replies. Blocks until the socket closes.
     */
    public void serveTransmission(SocketChannel ch, String peer, Export export) {
        served = true;
        metrics.connectionsOpen.incrementAndGet();
        metrics.connectionsTotal.increment();
        try {
            serveNegotiated(ch, null, peer, new Negotiated(export, false, false), false);
        } catch (IOException e) {
            LOG.info("nbd {}: closed: {}", peer, e.getMessage());
        } finally {
            closeQuietly(ch);
            connectionEnded();
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // already closed
        }
    }

    /** Stops the server, waiting up to {@link #DRAIN_TIMEOUT} for its connections to end (see {@link #stop}). */
    @Override
    public void close() {
        stop(DRAIN_TIMEOUT);
    }

    /**
     * Stops accepting, disconnects every client, and waits up to {@code timeout} for the connections
     * and the chunk loads they started to end. True when they all did: only then may the devices they
     * read be closed, since a load still running writes into, and a reply still being sent reads from,
     * chunk-cache memory that closing a device frees (a SIGSEGV in zstd, or a "digest mismatch" of an
     * intact chunk, when a server was stopped under load). Loads are not interrupted: an interrupt
     * closes the blob's FileChannel under every other reader of it.
     */
    public boolean stop(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        closed = true;
        for (ServerSocketChannel s : listeners) {
            closeQuietly(s);
        }
        // First the requests already read get their replies (up to half the time), then the rest ends.
        for (Set<Connection> set : byExport.values()) {
            for (Connection c : set) {
                c.finishAndStop();
            }
        }
        awaitEnded(byExport::isEmpty, System.nanoTime() + (deadline - System.nanoTime()) / 2);
        for (Runnable stop : open) {
            stop.run();
        }
        loaders.shutdown();
        timer.shutdownNow();
        boolean drained = awaitEnded(() -> metrics.connectionsOpen.get() == 0, deadline);
        try {
            drained &= loaders.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            drained = false;
        }
        for (Path p : socketFiles) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // best effort
            }
        }
        if (drained && !served) {
            return true; // it never started: nothing to report
        }
        if (drained) {
            LOG.info("nbd: stopped; {}", metrics.snapshot());
        } else {
            LOG.warn("nbd: stopped, but {} connection(s) or chunk load(s) had not ended within {} s; {}",
                    metrics.connectionsOpen.get(), timeout.toSeconds(), metrics.snapshot());
        }
        return drained;
    }

    /** Waits until {@code done} holds (checked whenever a connection ends) or the deadline passes. */
    private boolean awaitEnded(java.util.function.BooleanSupplier done, long deadline) {
        synchronized (connectionEnded) {
            while (!done.getAsBoolean()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(connectionEnded, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            return true;
        }
    }

    /** Counts a connection's end, and wakes {@link #stop}, which may be waiting for it. */
    private void connectionEnded() {
        metrics.connectionsOpen.decrementAndGet();
        synchronized (connectionEnded) {
            connectionEnded.notifyAll();
        }
    }
}
