package io.strata.nbd;

import static io.strata.nbd.NbdProtocol.*;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.OutOfRangeException;
import io.strata.core.device.SegmentSink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase of one connection, served by a few threads of its own (leader/follower).
 * The leader reads every request already waiting (one read syscall for many at queue depth),
 * answers them, gathered into as few writes as fit, and reads again: while it works, the next
 * requests pile up in the socket, so at queue depth a batch costs one read, one write and a pread
 * per request, with no hand-off between threads. A batch that needs a chunk loaded (a cache miss,
 * decompression, a digest check: milliseconds) makes its thread give up leadership first, so a
 * follower reads and serves the next requests meanwhile. Requests are answered in any order (the
 * kernel and libnbd match replies by cookie). The in-flight limit per connection is threads x
 * {@link #MAX_BATCH}.
 */
final class Connection {
    private static final Logger LOG = LoggerFactory.getLogger(Connection.class);

    private final SocketChannel socket;
    private final String peer;
    private final Negotiated session;
    private final BlockDevice device;
    private final ServerMetrics metrics;
    private final int threads;
    private final ReentrantLock writeLock = new ReentrantLock();
    /** Held by the thread that reads the socket (the leader); guards {@link #in}, {@link #endReason}, {@link #requests}. */
    private final ReentrantLock leader = new ReentrantLock();
    /** Bytes read from the socket and not yet parsed (read mode: position = next request). */
    private final ByteBuffer in = ByteBuffer.allocateDirect(64 << 10);
    private final ByteBuffer scratch = ByteBuffer.allocateDirect(64 << 10);
    private volatile IOException failure;
    private String endReason;
    private long requests;

    /** Warms the cache and checks every chunk before a reply starts: errors must precede data. */
    private static final SegmentSink PREFLIGHT = new SegmentSink() {
        @Override
        public void file(FileChannel file, long position, long length) {
        }

        @Override
        public void memory(NativeBuffer buffer, int offset, int length) {
        }

        @Override
        public void zeros(long length) {
        }
    };

    Connection(SocketChannel socket, String peer, Negotiated session, int threads, ServerMetrics metrics) {
        this.socket = socket;
        this.peer = peer;
        this.session = session;
        this.device = session.export().device();
        this.metrics = metrics;
        this.threads = threads;
    }

    /** Requests one thread takes from the socket at a time: they arrive together at queue depth. */
    static final int MAX_BATCH = 16;

    /** Serves requests until the client disconnects or breaks the protocol; returns why it ended. */
    String serve() {
        in.limit(0);
        Thread[] helpers = new Thread[threads - 1];
        for (int i = 0; i < helpers.length; i++) {
            helpers[i] = new Thread(this::work, Thread.currentThread().getName() + "-" + (i + 1));
            helpers[i].setDaemon(true);
            helpers[i].start();
        }
        work();
        for (Thread t : helpers) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        leader.lock();
        try {
            return endReason + "; " + requests + " request(s)";
        } finally {
            leader.unlock();
        }
    }

    /**
     * One thread's loop: as leader, take every request already waiting on the socket and check them
     * (cache misses load here); answer them all under the write lock with as few writes as fit; stay
     * leader unless the batch had to load chunks (see the class comment).
     */
    private void work() {
        NbdRequest[] batch = new NbdRequest[MAX_BATCH];
        int[] errors = new int[MAX_BATCH];
        for (int i = 0; i < MAX_BATCH; i++) {
            batch[i] = new NbdRequest();
        }
        boolean leading = false;
        try {
            for (;;) {
                if (!leading) {
                    leader.lock();
                    leading = true;
                }
                if (endReason != null) {
                    return;
                }
                int n = readBatch(batch);
                requests += n;
                if (n == 0) {
                    return;
                }
                if (!allReady(batch, n)) {
                    leader.unlock(); // a follower serves the next requests while this batch loads chunks
                    leading = false;
                }
                for (int i = 0; i < n; i++) {
                    errors[i] = prepare(batch[i]);
                }
                if (!answerAll(batch, errors, n)) {
                    return;
                }
            }
        } finally {
            if (leading) {
                leader.unlock();
            }
        }
    }

    /** True when no request of the batch needs a chunk loaded (CACHE always may). */
    private boolean allReady(NbdRequest[] batch, int n) {
        for (int i = 0; i < n; i++) {
            NbdRequest r = batch[i];
            if (r.type == CMD_CACHE || r.type == CMD_READ && !device.isReady(r.offset, r.length)) {
                return false;
            }
        }
        return true;
    }

    /** Writes the batch's replies under the write lock; false when the connection failed. */
    private boolean answerAll(NbdRequest[] batch, int[] errors, int n) {
        ReplyWriter w = ReplyWriter.forThisThread();
        writeLock.lock();
        try {
            w.beginBatch(socket, session.structuredReplies());
            for (int i = 0; i < n; i++) {
                answer(batch[i], errors[i], w);
            }
            w.endBatch();
            return true;
        } catch (IOException e) {
            fail(e);
            return false;
        } catch (RuntimeException | Error e) {
            LOG.error("nbd {}: answering failed", peer, e);
            fail(new IOException(e.toString(), e));
            return false;
        } finally {
            writeLock.unlock();
        }
    }

    /**
     * Parses the requests waiting in the input buffer (reading the socket only when none is), up to
     * {@link #MAX_BATCH}. Sets {@link #endReason} when the connection ends; requests parsed before
     * that (say, before a DISC) are still returned and answered.
     */
    private int readBatch(NbdRequest[] batch) {
        try {
            while (in.remaining() < NbdRequest.SIZE) {
                in.compact();
                int r = socket.read(in);
                in.flip();
                if (r < 0) {
                    endReason = failure != null ? "reply failed: " + failure.getMessage() : "client closed the connection";
                    return 0;
                }
            }
            int n = 0;
            while (n < batch.length && in.remaining() >= NbdRequest.SIZE) {
                NbdRequest req = batch[n];
                int at = in.position();
                if (!req.decode(in, at)) {
                    endReason = "bad request magic 0x" + Integer.toHexString(NbdRequest.magicAt(in, at));
                    return n;
                }
                in.position(at + NbdRequest.SIZE);
                if (req.type == CMD_DISC) {
                    endReason = "client disconnected (NBD_CMD_DISC)";
                    return n;
                }
                if (req.type == CMD_WRITE) {
                    // The payload follows the header whatever the answer; consume it to stay in sync.
                    if (req.length > MAX_PAYLOAD) {
                        endReason = "write payload of " + req.length + " bytes exceeds " + MAX_PAYLOAD;
                        return n;
                    }
                    int buffered = (int) Math.min(in.remaining(), req.length);
                    in.position(in.position() + buffered);
                    Wire.skip(socket, req.length - buffered, scratch);
                }
                n++;
            }
            return n;
        } catch (IOException e) {
            endReason = failure != null ? "reply failed: " + failure.getMessage() : "connection lost: " + e.getMessage();
            return 0;
        }
    }

    /** Checks a request and, for reads and CACHE, loads every chunk it needs; returns an errno or 0. */
    private int prepare(NbdRequest req) {
        switch (req.type) {
            case CMD_READ:
            case CMD_CACHE:
                return preflight(req);
            case CMD_FLUSH:
            case CMD_BLOCK_STATUS:
                return 0;
            case CMD_WRITE:
            case CMD_TRIM:
            case CMD_WRITE_ZEROES:
                return EPERM; // a read-only export (advertised with NBD_FLAG_READ_ONLY)
            default:
                LOG.info("nbd {}: unknown command {}, answered EINVAL", peer, req.type);
                return EINVAL;
        }
    }

    private int preflight(NbdRequest req) {
        if (req.length > MAX_PAYLOAD) {
            return EINVAL;
        }
        try {
            device.resolve(req.offset, req.length, PREFLIGHT);
            return 0;
        } catch (OutOfRangeException e) {
            return EINVAL;
        } catch (IOException e) {
            return EIO; // the core logged the chunk; this request fails, the connection stays
        } catch (RuntimeException | LinkageError e) {
            // A bug or a missing native library (zstd-jni, lz4): still answer, and say why.
            LOG.error("nbd {}: read {}+{} failed", peer, req.offset, req.length, e);
            return EIO;
        }
    }

    /** Writes one reply into the batch. */
    private void answer(NbdRequest req, int error, ReplyWriter w) throws IOException {
        metrics.requests.increment();
        if (error != 0) {
            metrics.errors.increment();
            w.status(req.cookie, error);
            return;
        }
        switch (req.type) {
            case CMD_READ:
                if (req.length == 0) {
                    w.status(req.cookie, 0);
                    return;
                }
                w.beginRead(req.cookie, req.offset, req.length);
                device.resolve(req.offset, req.length, w);
                w.endRead();
                metrics.bytesRead.add(req.length);
                return;
            case CMD_BLOCK_STATUS:
                blockStatus(req, w);
                return;
            default:
                w.status(req.cookie, 0); // FLUSH, CACHE
        }
    }

    private void blockStatus(NbdRequest req, ReplyWriter w) throws IOException {
        if (!session.allocationContext() || req.length == 0) {
            metrics.errors.increment();
            w.status(req.cookie, EINVAL);
            return;
        }
        ByteBuffer descriptors = StatusDescriptors.forThisThread();
        try {
            StatusDescriptors.fill(device, req.offset, req.length, (req.flags & CMD_FLAG_REQ_ONE) != 0, descriptors);
        } catch (OutOfRangeException e) {
            metrics.errors.increment();
            w.status(req.cookie, EINVAL);
            return;
        }
        w.blockStatus(req.cookie, descriptors);
    }

    private void fail(IOException e) {
        if (failure == null) {
            failure = e;
            LOG.debug("nbd {}: reply failed", peer, e);
        }
        try {
            socket.close(); // wakes the reader; other workers' writes fail fast
        } catch (IOException ignored) {
            // closing a broken socket
        }
    }
}
