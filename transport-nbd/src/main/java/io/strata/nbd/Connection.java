package io.strata.nbd;

import static io.strata.nbd.NbdProtocol.*;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.OutOfRangeException;
import io.strata.core.device.PinOutcome;
import io.strata.core.device.PinnedRange;
import io.strata.core.device.SegmentSink;
import io.strata.core.os.OpenFile;
import io.strata.core.metrics.ErrorKind;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.metrics.RequestType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase of one connection, served by one thread of its own plus the server's
 * shared pool of loader threads. The connection's thread reads every request already waiting (one
 * read syscall for many at queue depth) into a batch of up to {@link #MAX_BATCH}. A batch whose
 * data is ready (cached, or plain file regions) is answered at once, gathered into as few writes as
 * fit. A batch that needs a chunk loaded (a cache miss, decompression, a digest check: milliseconds)
 * goes to the loader pool, and this thread reads and answers the next requests meanwhile; when the
 * load is done the pool hands the batch back ({@link ConnectionIo#wakeup}) and this thread writes its
 * replies. Requests are answered in any order (the kernel and libnbd match replies by cookie).
 *
 * <p>Costs are bounded whatever the client does: one thread per connection (the server caps
 * connections), at most {@code maxLoading} batches per connection in the pool (the pool's threads
 * are shared by all connections), and no reply is buffered beyond one batch: when the client stops
 * reading replies, this thread waits to write and so stops reading requests (the client's own
 * writes then block, as TCP flow control intends).
 */
final class Connection {
    private static final Logger LOG = LoggerFactory.getLogger(Connection.class);

    /** Requests taken from the socket at a time: they arrive together at queue depth. */
    static final int MAX_BATCH = 16;
    /**
     * Socket input buffer: requests are 28 bytes, so one read takes in a deep queue's worth; also
     * the unit in which refused writes' payloads are read and dropped.
     */
    private static final int INPUT_BUFFER = 64 << 10;

    private final SocketChannel socket;
    private final String peer;
    private final Negotiated session;
    private final BlockDevice device;
    private final ServerMetrics metrics;
    /** The export's own counters (the server's {@link #metrics} add up every export). */
    private final ExportCounters counters;
    private final Executor loaders;
    private final int maxLoading;
    /** Whether to wait a moment for more requests before sleeping on the socket (this thread's). */
    private final BatchWait batchWait;
    private final ConnectionIo io;
    private final ReplyWriter writer = new ReplyWriter();
    /** Bytes read from the socket and not yet parsed (read mode: position = next request). */
    private final NativeBuffer inMemory = NativeBuffer.allocate(INPUT_BUFFER);
    private final ByteBuffer in = inMemory.view().duplicate().order(ByteOrder.BIG_ENDIAN);
    /** Discards the payload of requests that carry one (writes, which are refused). */
    private final NativeBuffer scratchMemory = NativeBuffer.allocate(INPUT_BUFFER);
    private final ByteBuffer scratch = scratchMemory.view().duplicate();
    /** Batches not in the pool, ready for reuse (this connection's thread only). */
    private final ArrayDeque<Batch> idle = new ArrayDeque<>();
    /** Batches the pool has loaded, waiting for this thread to write their replies. */
    private final ConcurrentLinkedQueue<Batch> loaded = new ConcurrentLinkedQueue<>();
    /** Batches created so far (at most maxLoading + 1: the one being read, and those loading). */
    private int batches;
    /** Batches in the pool or in {@link #loaded}. */
    private int loading;
    /** Set when the connection is over; loaders skip the work of batches still queued. */
    private volatile boolean over;
    private String endReason;
    /** Requests read on this connection. */
    private long requests;
    /** Requests counted (in {@link #counters} and the server's metrics) as answered: their replies were written. */
    private long counted;

    /** The metrics' name of each NBD command (NBD_CMD_DISC is never answered, so never counted). */
    private static final RequestType[] TYPE_OF_COMMAND = {
        RequestType.READ, RequestType.WRITE, RequestType.OTHER, RequestType.FLUSH, RequestType.TRIM, RequestType.CACHE,
        RequestType.WRITE_ZEROES, RequestType.BLOCK_STATUS,
    };

    static RequestType typeOf(int command) {
        return command >= 0 && command < TYPE_OF_COMMAND.length ? TYPE_OF_COMMAND[command] : RequestType.OTHER;
    }

    /**
     * Loads and checks every chunk of a read too large to pin (see {@link PinOutcome#NO_ROOM})
     * before its reply starts, so that errors still precede data; the reply then resolves it again.
     */
    private static final SegmentSink PREFLIGHT = new SegmentSink() {
        @Override
        public void file(OpenFile file, long position, long length) throws IOException {
            file.checkHolds(position, length);
        }

        @Override
        public void memory(NativeBuffer buffer, int offset, int length) {
        }

        @Override
        public void zeros(long length) {
        }
    };

    /** Up to {@link #MAX_BATCH} requests read together, with the errno each will be answered with. */
    private final class Batch implements Runnable {
        final NbdRequest[] requests = new NbdRequest[MAX_BATCH];
        final int[] errors = new int[MAX_BATCH];
        /** Why each request with an error got it, for the metrics (null: no error). */
        final ErrorKind[] errorKinds = new ErrorKind[MAX_BATCH];
        /** Each read resolved once, its chunks pinned from the check until its reply is written. */
        final PinnedRange[] pinned = new PinnedRange[MAX_BATCH];
        /** The next request to prepare: a batch that met a chunk to load goes on from there in a loader. */
        int next;
        /** When the batch was read from the socket: each request's latency runs from here to its reply. */
        long receivedAt;
        int size;

        Batch() {
            for (int i = 0; i < MAX_BATCH; i++) {
                requests[i] = new NbdRequest();
                pinned[i] = new PinnedRange();
            }
        }

        /**
         * Prepares the requests from {@link #next} on; false when one needs a chunk loaded and
         * {@code mayLoad} is false (those before it stay prepared, their chunks pinned).
         */
        boolean prepareAll(boolean mayLoad) {
            for (; next < size; next++) {
                int r = prepare(requests[next], next, errorKinds, pinned[next], mayLoad);
                if (r == NEEDS_LOAD) {
                    return false;
                }
                errors[next] = r;
            }
            return true;
        }

        /** Unpins whatever the batch still holds (a connection that ended before answering it). */
        void releaseAll() {
            for (int i = 0; i < MAX_BATCH; i++) {
                pinned[i].release();
            }
        }

        /** In a loader thread: load the chunks, then hand the batch back to the connection's thread. */
        @Override
        public void run() {
            try {
                if (!over) {
                    prepareAll(true);
                }
            } finally {
                loaded.add(this);
                io.wakeup();
            }
        }
    }

    /** A connection whose bytes pass {@code tls} (the session STARTTLS set up), or plaintext when it is null. */
    Connection(SocketChannel socket, TlsChannel tls, String peer, Negotiated session, Executor loaders, int maxLoading,
            Duration batchWait, ServerMetrics metrics) throws IOException {
        this.socket = socket;
        this.peer = peer;
        this.session = session;
        this.device = session.export().device();
        this.counters = session.export().counters();
        this.metrics = metrics;
        this.loaders = loaders;
        this.maxLoading = maxLoading;
        this.batchWait = new BatchWait(batchWait);
        this.io = new ConnectionIo(socket, tls);
    }

    /**
     * Reads no more requests but answers those already read (the NBD spec: a server shutting down
     * "SHOULD wait for inflight requests to be serviced prior to initiating a hard disconnect"): to
     * the serve loop it is as if the client had closed its side. {@link #stop} ends it outright.
     */
    void finishAndStop() {
        try {
            socket.shutdownInput();
        } catch (IOException e) {
            stop();
            return;
        }
        io.wakeup();
    }

    /** Ends the connection from another thread (server shutdown): the socket closes, its thread wakes. */
    void stop() {
        over = true;
        try {
            socket.close();
        } catch (IOException ignored) {
            // already closed
        }
        io.wakeup();
    }

    /** Serves requests until the client disconnects or breaks the protocol; returns why it ended. */
    String serve() {
        in.limit(0);
        try {
            Batch current = null;
            while (endReason == null) {
                answerLoaded();
                if (current == null) {
                    current = takeBatch();
                    if (current == null) {
                        io.awaitWakeup(); // maxLoading batches in the pool: read nothing until one is back
                        continue;
                    }
                }
                int n = readBatch(current);
                if (n == 0) {
                    if (endReason == null) {
                        awaitRequests();
                    }
                    continue;
                }
                // Hits are answered here at once; the first request needing a load sends the
                // batch, from that request on, to the loader pool (this thread reads on).
                current.next = 0;
                if (current.prepareAll(false)) {
                    answer(current);
                    // answer() put the batch back among the idle ones: reading into it again from
                    // here as well would let a later takeBatch() hand the same batch to the loader
                    // pool while this loop overwrites its requests (a cold read then never finished).
                    current = null;
                } else {
                    loading++;
                    try {
                        loaders.execute(current);
                    } catch (RejectedExecutionException e) {
                        loading--;
                        endReason = "server stopping";
                        break;
                    }
                    current = null;
                }
            }
            // A DISC (or a bad request) after good ones: those still loading get their replies.
            while (loading > 0 && socket.isOpen()) {
                answerLoaded();
                if (loading > 0) {
                    io.awaitWakeup();
                }
            }
        } catch (IOException e) {
            if (endReason == null) {
                endReason = over ? "server stopped" : "connection lost: " + (e.getMessage() != null ? e.getMessage() : e.toString());
            }
        } catch (RuntimeException | Error e) {
            LOG.error("nbd {}: answering failed", peer, e);
            endReason = "internal error: " + e;
        } finally {
            over = true;
            io.close();
            awaitLoadsDropped();
            // Freed now, not when a GC gets to them (see ReplyWriter's buffers): no loader holds a batch any more.
            writer.close();
            inMemory.close();
            scratchMemory.close();
            metrics.dropped.add(requests - counted); // read but never answered: the client is gone
            counters.abandoned(requests - counted);
        }
        return endReason + "; " + requests + " request(s)";
    }

    /**
     * Waits for the client's next requests (or a finished load): after a deep batch of small requests,
     * first a moment for more of them to gather ({@link BatchWait}), then on the socket. Loads that
     * finish meanwhile are answered after the moment, on the next turn of {@link #serve}'s loop.
     */
    private void awaitRequests() throws IOException {
        if (batchWait.waitNow()) {
            LockSupport.parkNanos(batchWait.nanos());
            io.expectBytes();
        } else {
            io.awaitReadableOrWakeup();
        }
    }

    /** A batch to read into: a free one, a new one while under the limit, or null (wait for the pool). */
    private Batch takeBatch() {
        Batch b = idle.poll();
        if (b == null && batches <= maxLoading) {
            batches++;
            b = new Batch();
        }
        return b;
    }

    /** Writes the replies of every batch the pool has finished loading. */
    private void answerLoaded() throws IOException {
        Batch b;
        while ((b = loaded.poll()) != null) {
            loading--;
            answer(b);
        }
    }

    /**
     * After the end: batches still in the pool are waited for (they skip their loads) and discarded.
     * No time limit: a load already running writes into chunk-cache memory until it ends, and the
     * connection's end is what lets its device be closed (a daemon's forced removal, a server's stop);
     * a remote load ends within its registry deadline, a local one with its read.
     */
    private void awaitLoadsDropped() {
        while (loading > 0) {
            Batch b = loaded.poll();
            if (b == null) {
                LockSupport.parkNanos(1_000_000);
            } else {
                b.releaseAll();
                loading--;
            }
        }
    }

    /** Writes the batch's replies and puts the batch back for reuse. */
    private void answer(Batch b) throws IOException {
        try {
            writer.beginBatch(io, session.structuredReplies());
            for (int i = 0; i < b.size; i++) {
                ErrorKind late = answer(b.requests[i], b.errors[i], b.pinned[i], writer);
                if (late != null) {
                    b.errorKinds[i] = late;
                }
            }
            writer.endBatch();
        } finally {
            b.releaseAll(); // after the bytes are out (or the socket failed): nothing stays pinned
        }
        count(b);
        b.size = 0;
        idle.push(b);
    }

    /**
     * Counts a batch whose replies were written: type, bytes, error kind and latency of each request,
     * in the export's counters and the server's (both only once the bytes are out: a batch whose
     * write failed counts as dropped).
     */
    private void count(Batch b) {
        long latency = System.nanoTime() - b.receivedAt;
        metrics.requests.add(b.size);
        for (int i = 0; i < b.size; i++) {
            NbdRequest r = b.requests[i];
            RequestType type = typeOf(r.type);
            if (b.errorKinds[i] != null) {
                counters.failed(type, b.errorKinds[i], latency);
                metrics.errors.increment();
            } else {
                counters.answered(type, type == RequestType.READ || type == RequestType.CACHE ? r.length : 0, latency);
                if (r.type == CMD_READ) {
                    metrics.bytesRead.add(r.length);
                }
            }
        }
        counted += b.size;
    }

    /**
     * Parses the requests waiting in the input buffer, reading the socket (without waiting) when
     * fewer than one is there, up to {@link #MAX_BATCH}; 0 when none has arrived. Sets
     * {@link #endReason} when the connection ends; requests parsed before that (say, before a DISC)
     * are still returned and answered.
     */
    private int readBatch(Batch batch) throws IOException {
        if (in.remaining() < NbdRequest.SIZE) {
            if (!io.worthReading()) {
                return 0; // the caller waits for bytes first
            }
            in.compact();
            int r = io.readNow(in);
            in.flip();
            if (r < 0) {
                endReason = "client closed the connection";
                return 0;
            }
            if (in.remaining() < NbdRequest.SIZE) {
                return 0;
            }
        }
        int n = 0;
        long bytes = 0;
        while (n < MAX_BATCH && in.remaining() >= NbdRequest.SIZE) {
            NbdRequest req = batch.requests[n];
            int at = in.position();
            if (!req.decode(in, at)) {
                endReason = "bad request magic 0x" + Integer.toHexString(NbdRequest.magicAt(in, at));
                break;
            }
            in.position(at + NbdRequest.SIZE);
            if (req.type == CMD_DISC) {
                endReason = "client disconnected (NBD_CMD_DISC)";
                break;
            }
            if (req.type == CMD_WRITE) {
                // The payload follows the header whatever the answer; consume it to stay in sync.
                if (req.length > MAX_PAYLOAD) {
                    endReason = "write payload of " + req.length + " bytes exceeds " + MAX_PAYLOAD;
                    break;
                }
                int buffered = (int) Math.min(in.remaining(), req.length);
                in.position(in.position() + buffered);
                skip(req.length - buffered);
            }
            bytes += req.length;
            n++;
        }
        batch.size = n;
        batch.receivedAt = System.nanoTime();
        if (n > 0) {
            batchWait.batchRead(n, bytes, batch.receivedAt);
        }
        requests += n;
        metrics.received.add(n);
        counters.received(n);
        return n;
    }

    /** Reads and discards {@code n} bytes (a write's payload). */
    private void skip(long n) throws IOException {
        long left = n;
        while (left > 0) {
            scratch.clear().limit((int) Math.min(scratch.capacity(), left));
            io.readFully(scratch);
            left -= scratch.limit();
        }
    }

    /**
     * Command flags this server accepts per command (spec, "Request message"): a flag the server
     * did not advertise or that does not apply to the command is answered EINVAL. Writes are
     * refused with EPERM whatever their flags (the export is read-only).
     */
    private static boolean flagsKnown(NbdRequest req) {
        switch (req.type) {
            case CMD_BLOCK_STATUS:
                return (req.flags & ~CMD_FLAG_REQ_ONE) == 0;
            default:
                return req.flags == 0;
        }
    }

    /**
     * Checks a request and, for reads and CACHE, loads every chunk it needs (reads keep them pinned
     * in the batch's {@code pinned[i]}); returns an errno or 0, and puts why into {@code kinds[i]}
     * (null when 0). {@link #NEEDS_LOAD} when a chunk must be loaded and {@code mayLoad} is false.
     */
    private int prepare(NbdRequest req, int i, ErrorKind[] kinds, PinnedRange range, boolean mayLoad) {
        kinds[i] = null;
        switch (req.type) {
            case CMD_WRITE:
            case CMD_TRIM:
            case CMD_WRITE_ZEROES:
                kinds[i] = ErrorKind.READ_ONLY;
                return EPERM; // a read-only export (advertised with NBD_FLAG_READ_ONLY), whatever the flags
            default:
                break;
        }
        if (!flagsKnown(req)) {
            LOG.info("nbd {}: command {} with unknown flags 0x{}, answered EINVAL", peer, req.type, Integer.toHexString(req.flags));
            kinds[i] = ErrorKind.INVALID_REQUEST;
            return EINVAL;
        }
        switch (req.type) {
            case CMD_READ:
            case CMD_CACHE:
                return pin(req, i, kinds, range, mayLoad);
            case CMD_FLUSH:
            case CMD_BLOCK_STATUS:
                return 0;
            default:
                LOG.info("nbd {}: unknown command {}, answered EINVAL", peer, req.type);
                kinds[i] = ErrorKind.INVALID_REQUEST;
                return EINVAL;
        }
    }

    /** prepare's answer for a request that must wait for a load (never sent: it is not an errno). */
    private static final int NEEDS_LOAD = -1;

    private int pin(NbdRequest req, int i, ErrorKind[] kinds, PinnedRange range, boolean mayLoad) {
        if (req.length > MAX_PAYLOAD) {
            kinds[i] = ErrorKind.INVALID_REQUEST;
            return EINVAL;
        }
        if (req.type == CMD_CACHE && !mayLoad) {
            return NEEDS_LOAD; // a prefetch hint: always worth a loader's time, never this thread's
        }
        try {
            PinOutcome outcome = device.pin(req.offset, req.length, range, mayLoad);
            if (outcome == PinOutcome.NOT_CACHED) {
                return NEEDS_LOAD;
            }
            if (outcome == PinOutcome.NO_ROOM) {
                if (!mayLoad) {
                    return NEEDS_LOAD;
                }
                // Too much pinned already (or a read over half the cache): check it now, resolve it again as it is sent.
                device.resolve(req.offset, req.length, PREFLIGHT);
            }
            if (req.type == CMD_CACHE) {
                range.release(); // loaded: that is all CACHE asks
            }
            return 0;
        } catch (OutOfRangeException e) {
            kinds[i] = ErrorKind.OUT_OF_RANGE;
            return EINVAL;
        } catch (IOException e) {
            kinds[i] = ErrorKind.of(e);
            return EIO; // the core logged the chunk; this request fails, the connection stays
        } catch (RuntimeException | LinkageError e) {
            // A bug or a missing native library (zstd-jni, lz4): still answer, and say why.
            LOG.error("nbd {}: read {}+{} failed", peer, req.offset, req.length, e);
            kinds[i] = ErrorKind.IO;
            return EIO;
        }
    }

    /**
     * Writes one reply into the batch; returns why a request that passed {@link #prepare} still
     * fails here (a BLOCK_STATUS the session or range does not allow), else null.
     */
    private ErrorKind answer(NbdRequest req, int error, PinnedRange range, ReplyWriter w) throws IOException {
        if (error != 0) {
            w.status(req.cookie, error);
            return null;
        }
        switch (req.type) {
            case CMD_READ:
                if (req.length == 0) {
                    w.status(req.cookie, 0);
                    return null;
                }
                w.beginRead(req.cookie, req.offset, req.length);
                if (range.isEmpty()) {
                    device.resolve(req.offset, req.length, w); // not pinned: checked by PREFLIGHT, resolved again
                } else {
                    range.emit(w); // the bytes checked when it was pinned; released once the batch is out
                }
                w.endRead();
                return null;
            case CMD_BLOCK_STATUS:
                return blockStatus(req, w);
            default:
                w.status(req.cookie, 0); // FLUSH, CACHE
                return null;
        }
    }

    private ErrorKind blockStatus(NbdRequest req, ReplyWriter w) throws IOException {
        if (!session.allocationContext() || req.length == 0) {
            w.status(req.cookie, EINVAL);
            return ErrorKind.INVALID_REQUEST;
        }
        ByteBuffer descriptors = StatusDescriptors.forThisThread();
        try {
            StatusDescriptors.fill(device, req.offset, req.length, (req.flags & CMD_FLAG_REQ_ONE) != 0, descriptors);
        } catch (OutOfRangeException e) {
            w.status(req.cookie, EINVAL);
            return ErrorKind.OUT_OF_RANGE;
        }
        w.blockStatus(req.cookie, descriptors);
        return null;
    }
}
