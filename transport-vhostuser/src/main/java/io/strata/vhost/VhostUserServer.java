package io.strata.vhost;

import io.strata.core.device.BlockDevice;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.os.Native;
import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A vhost-user-blk back-end on a unix socket. One front-end (QEMU) at a time; when it goes, the next
 * connection gets a fresh session, which is how QEMU reconnects ({@code reconnect-ms}).
 */
public final class VhostUserServer implements Closeable {
    private static final Logger LOG = LoggerFactory.getLogger(VhostUserServer.class);

    /** Pending connections the kernel queues: QEMU connects once per device (and again after a restart). */
    private static final int BACKLOG = 16;
    private final Path socketPath;
    private final BlockDevice device;
    private final int maxQueues;
    private final byte[] serial;
    private final VirtioBlk blk;
    /** What the front-ends did with this socket's device: requests, bytes, errors, latency, sessions. */
    private final ExportCounters counters = new ExportCounters();
    private final ServerSocketChannel listener;
    private final AtomicInteger sessions = new AtomicInteger();
    private final java.util.concurrent.atomic.AtomicLongArray requestsPerQueue;
    private volatile SocketChannel current;
    /**
     * Loader threads for reads that must wait for a chunk load, shared by every queue: a queue worker
     * hands such a read over and goes on with the reads behind it. As many threads as queues (each
     * queue's misses can proceed), at least two; idle threads end after a minute.
     */
    private final java.util.concurrent.ThreadPoolExecutor loaders;
    private volatile boolean closed;
    private Thread acceptor;

    public VhostUserServer(Path socketPath, BlockDevice device, int maxQueues) throws IOException {
        this(socketPath, device, maxQueues, io.strata.core.os.UnixSocketFiles.DEFAULT_MODE);
    }

    /** As above, with the socket file's permission bits ({@code --socket-mode}; 0600 by default). */
    public VhostUserServer(Path socketPath, BlockDevice device, int maxQueues, int socketMode) throws IOException {
        if (maxQueues < 1 || maxQueues > 255) {
            throw new IllegalArgumentException("queues must be 1..255");
        }
        this.socketPath = socketPath;
        this.device = device;
        this.maxQueues = maxQueues;
        this.serial = VirtioBlk.serialOf(device);
        this.blk = new VirtioBlk(device, serial, maxQueues, counters);
        this.requestsPerQueue = new java.util.concurrent.atomic.AtomicLongArray(maxQueues);
        this.listener = io.strata.core.os.UnixSocketFiles.bind(socketPath, socketMode, BACKLOG);
        int threads = Math.max(2, maxQueues);
        java.util.concurrent.atomic.AtomicInteger made = new java.util.concurrent.atomic.AtomicInteger();
        this.loaders = new java.util.concurrent.ThreadPoolExecutor(threads, threads, 60, java.util.concurrent.TimeUnit.SECONDS,
                new java.util.concurrent.LinkedBlockingQueue<>(), r -> {
                    Thread t = new Thread(r, "vhost-user-loader-" + made.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        loaders.allowCoreThreadTimeOut(true);
    }

    /** Serves sessions on a background thread until {@link #close}. */
    public void start() {
        acceptor = new Thread(this::acceptLoop, "vhost-user-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        LOG.info("vhost-user: listening on {} ({} queue(s) max, {} bytes, serial {})", socketPath, maxQueues, device.size(),
                new String(serial, java.nio.charset.StandardCharsets.US_ASCII));
    }

    private void acceptLoop() {
        while (!closed) {
            try (SocketChannel ch = listener.accept()) {
                current = ch;
                String name = "vhost-user session #" + sessions.incrementAndGet();
                LOG.info("{}: front-end connected", name);
                counters.connectionOpened();
                String why;
                try {
                    why = new Session(name, Native.fdOf(ch), blk, maxQueues, requestsPerQueue, loaders).run();
                } finally {
                    counters.connectionClosed();
                }
                LOG.info("{}: closed: {}", name, why);
            } catch (IOException e) {
                if (!closed) {
                    LOG.error("vhost-user: accept on {} failed: {}", socketPath, e.getMessage());
                }
            } catch (RuntimeException | Error e) {
                // A bug must not take the listener down: log it and accept the next front-end.
                LOG.error("vhost-user: session failed", e);
            } finally {
                current = null;
            }
        }
    }

    /** Requests completed on queue {@code q}, over all sessions. */
    public long requestsServed(int q) {
        return requestsPerQueue.get(q);
    }

    /** The device's request counters (one device per socket), for the metrics. */
    public ExportCounters counters() {
        return counters;
    }

    /** Whether a front-end (QEMU) is connected now. */
    public boolean connected() {
        return current != null;
    }

    public int sessionCount() {
        return sessions.get();
    }

    /** How long {@link #close} waits for the session and its loads to end (see {@link #stop}). */
    public static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(10);

    @Override
    public void close() throws IOException {
        stop(DRAIN_TIMEOUT);
    }

    /**
     * Stops accepting, ends the session and waits up to {@code timeout} for it and the loads it handed
     * to loaders to end. True when they did: only then may the device be closed, since a load still
     * running writes into chunk-cache memory that closing the device frees (a daemon's forced removal
     * crashed the JVM so). Otherwise {@link #awaitStopped} tells when.
     */
    public boolean stop(Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        closed = true;
        listener.close();
        SocketChannel c = current;
        if (c != null) {
            try {
                // Both ways: the session's recvmsg returns 0 and a write blocked on a front-end that
                // stopped reading replies fails, so it releases everything and ends either way.
                c.shutdownInput();
                c.shutdownOutput();
            } catch (java.nio.channels.ClosedChannelException e) {
                // the session ended on its own between our read of current and now: nothing to wake
            }
        }
        boolean drained = true;
        try {
            if (acceptor != null) {
                acceptor.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
                drained = !acceptor.isAlive();
            }
            loaders.shutdown(); // the session's workers wait for the reads they handed over
            drained &= loaders.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            drained = false;
        }
        Files.deleteIfExists(socketPath);
        if (drained) {
            LOG.info("vhost-user: stopped after {} session(s)", sessions.get());
        } else {
            LOG.warn("vhost-user: stopped accepting; the session or its reads had not ended within {} s", timeout.toSeconds());
        }
        return drained;
    }

    /** Waits, without a limit, until the session and every load it started have ended (after {@link #stop}). */
    public void awaitStopped() throws InterruptedException {
        if (acceptor != null) {
            acceptor.join();
        }
        loaders.shutdown();
        while (!loaders.awaitTermination(1, TimeUnit.MINUTES)) {
            LOG.warn("vhost-user: still waiting for reads to end before the device can close");
        }
    }
}
