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
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase of one connection. This thread reads requests; each goes to a worker from
 * a shared pool, so requests of one connection run concurrently and are answered as they finish, in
 * any order (the kernel and libnbd match replies by cookie). A fixed set of reusable request slots
 * bounds the requests in flight per connection; replies are written whole under one lock.
 */
final class Connection {
    private static final Logger LOG = LoggerFactory.getLogger(Connection.class);

    private final SocketChannel socket;
    private final String peer;
    private final Negotiated session;
    private final BlockDevice device;
    private final Executor workers;
    private final ServerMetrics metrics;
    private final ReentrantLock writeLock = new ReentrantLock();
    private final ArrayBlockingQueue<Slot> freeSlots;
    private final int maxInflight;
    private volatile IOException failure;
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

    Connection(SocketChannel socket, String peer, Negotiated session, Executor workers, int maxInflight, ServerMetrics metrics) {
        this.socket = socket;
        this.peer = peer;
        this.session = session;
        this.device = session.export().device();
        this.workers = workers;
        this.metrics = metrics;
        this.maxInflight = maxInflight;
        this.freeSlots = new ArrayBlockingQueue<>(maxInflight);
        for (int i = 0; i < maxInflight; i++) {
            freeSlots.add(new Slot());
        }
    }

    /** Serves requests until the client disconnects or breaks the protocol; returns why it ended. */
    String serve() {
        ByteBuffer head = ByteBuffer.allocateDirect(NbdRequest.SIZE);
        ByteBuffer scratch = ByteBuffer.allocateDirect(64 << 10);
        NbdRequest probe = new NbdRequest();
        String reason;
        try {
            for (;;) {
                head.clear();
                Wire.readFully(socket, head);
                if (!probe.decode(head)) {
                    reason = "bad request magic 0x" + Integer.toHexString(head.getInt(0));
                    break;
                }
                requests++;
                if (probe.type == CMD_DISC) {
                    reason = "client disconnected (NBD_CMD_DISC)";
                    break;
                }
                if (probe.type == CMD_WRITE) {
                    // The payload follows the header whatever the answer; consume it to stay in sync.
                    if (probe.length > MAX_PAYLOAD) {
                        reason = "write payload of " + probe.length + " bytes exceeds " + MAX_PAYLOAD;
                        break;
                    }
                    Wire.skip(socket, probe.length, scratch);
                }
                Slot slot = freeSlots.take(); // blocks at the in-flight limit
                slot.copyFrom(probe);
                workers.execute(slot);
            }
        } catch (IOException e) {
            reason = failure != null ? "reply failed: " + failure.getMessage() : "connection lost: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            reason = "server shutting down";
        }
        drain();
        return reason + "; " + requests + " request(s)";
    }

    /** Waits for in-flight requests to finish (their replies go out before the socket closes). */
    private void drain() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (freeSlots.size() < maxInflight && System.nanoTime() < deadline && failure == null) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
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

    /** One reusable in-flight request: decoded fields plus the code that answers it. */
    private final class Slot implements Runnable {
        private final NbdRequest req = new NbdRequest();

        void copyFrom(NbdRequest r) {
            req.flags = r.flags;
            req.type = r.type;
            req.cookie = r.cookie;
            req.offset = r.offset;
            req.length = r.length;
        }

        @Override
        public void run() {
            try {
                answer();
            } catch (IOException e) {
                fail(e);
            } catch (RuntimeException | Error e) {
                LOG.error("nbd {}: request type {} failed", peer, req.type, e);
                fail(new IOException(e.toString(), e));
            } finally {
                freeSlots.add(this);
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
                w.beginRead(socket, session.structuredReplies(), req.cookie, req.offset);
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
