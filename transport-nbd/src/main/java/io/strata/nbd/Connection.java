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
 * The transmission phase of one connection, served by a few threads of its own (leader/follower, as
 * nbdkit does): a thread takes the read lock, reads one request, lets go, answers it and writes the
 * reply under the write lock. Requests of one connection therefore run concurrently and are answered
 * in any order (the kernel and libnbd match replies by cookie), without handing requests from a
 * reader thread to a pool. The thread count is the connection's in-flight limit.
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
    private final Object readLock = new Object();
    private final ByteBuffer head = ByteBuffer.allocateDirect(NbdRequest.SIZE);
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

    /** Serves requests until the client disconnects or breaks the protocol; returns why it ended. */
    String serve() {
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
        synchronized (readLock) {
            return endReason + "; " + requests + " request(s)";
        }
    }

    /** One thread's loop: read a request (alone), answer it (alongside the others). */
    private void work() {
        Slot slot = new Slot();
        for (;;) {
            synchronized (readLock) {
                if (endReason != null) {
                    return;
                }
                String why = readRequest(slot.req);
                if (why != null) {
                    // The others finish the requests they hold and then see endReason; NbdServer
                    // closes the socket once serve() returns, so DISC never cuts a reply short.
                    endReason = why;
                    return;
                }
                requests++;
            }
            slot.run();
        }
    }

    /** Reads the next request into {@code req}; returns why the connection ends, or null. */
    private String readRequest(NbdRequest req) {
        try {
            head.clear();
            Wire.readFully(socket, head);
            if (!req.decode(head)) {
                return "bad request magic 0x" + Integer.toHexString(head.getInt(0));
            }
            if (req.type == CMD_DISC) {
                return "client disconnected (NBD_CMD_DISC)";
            }
            if (req.type == CMD_WRITE) {
                // The payload follows the header whatever the answer; consume it to stay in sync.
                if (req.length > MAX_PAYLOAD) {
                    return "write payload of " + req.length + " bytes exceeds " + MAX_PAYLOAD;
                }
                Wire.skip(socket, req.length, scratch);
            }
            return null;
        } catch (IOException e) {
            return failure != null ? "reply failed: " + failure.getMessage() : "connection lost: " + e.getMessage();
        }
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

    /** One thread's reusable request: decoded fields plus the code that answers it. */
    private final class Slot {
        private final NbdRequest req = new NbdRequest();

        void run() {
            try {
                answer();
            } catch (IOException e) {
                fail(e);
            } catch (RuntimeException | Error e) {
                LOG.error("nbd {}: request type {} failed", peer, req.type, e);
                fail(new IOException(e.toString(), e));
            }
        }

        private void answer() throws IOException {
            metrics.requests.increment();
            switch (req.type) {
                case CMD_READ:
                    read();
                    return;
                case CMD_FLUSH:
                    status(0);
                    return;
                case CMD_CACHE:
                    cache();
                    return;
                case CMD_BLOCK_STATUS:
                    blockStatus();
                    return;
                case CMD_WRITE:
                case CMD_TRIM:
                case CMD_WRITE_ZEROES:
                    status(EPERM); // a read-only export (advertised with NBD_FLAG_READ_ONLY)
                    return;
                default:
                    LOG.info("nbd {}: unknown command {}, answered EINVAL", peer, req.type);
                    status(EINVAL);
            }
        }

        private void status(int error) throws IOException {
            if (error != 0) {
                metrics.errors.increment();
            }
            writeLock.lock();
            try {
                ReplyWriter.forThisThread().status(socket, session.structuredReplies(), req.cookie, error);
            } finally {
                writeLock.unlock();
            }
        }

        /** Checks the range and loads every chunk it touches; returns an errno, or 0. */
        private int preflight() {
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
                // A bug or a missing native library (zstd-jni, lz4): still answer, and say why once per request.
                LOG.error("nbd {}: read {}+{} failed", peer, req.offset, req.length, e);
                return EIO;
            }
        }

        private void read() throws IOException {
            int error = preflight();
            if (error != 0 || req.length == 0) {
                status(error);
                return;
            }
            ReplyWriter w = ReplyWriter.forThisThread();
            writeLock.lock();
            try {
                w.beginRead(socket, session.structuredReplies(), req.cookie, req.offset, req.length);
                device.resolve(req.offset, req.length, w);
                w.endRead();
            } finally {
                writeLock.unlock();
            }
            metrics.bytesRead.add(req.length);
        }

        private void cache() throws IOException {
            status(preflight());
        }

        private void blockStatus() throws IOException {
            if (!session.allocationContext() || req.length == 0) {
                status(EINVAL);
                return;
            }
            ByteBuffer descriptors = StatusDescriptors.forThisThread();
            try {
                StatusDescriptors.fill(device, req.offset, req.length, (req.flags & CMD_FLAG_REQ_ONE) != 0, descriptors);
            } catch (OutOfRangeException e) {
                status(EINVAL);
                return;
            }
            writeLock.lock();
            try {
                ReplyWriter.forThisThread().blockStatus(socket, req.cookie, descriptors);
            } finally {
                writeLock.unlock();
            }
        }
    }
}
