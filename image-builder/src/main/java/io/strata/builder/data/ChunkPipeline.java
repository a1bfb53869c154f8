package io.strata.builder.data;

import io.strata.builder.BuildOptions;
import io.strata.builder.tree.FileContent;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongConsumer;

/**
 * Turns file data into stored chunks. Each chunk goes to a pool of workers, which read it (from a
 * host file by position; a tar stream is read by the calling thread, which must take it in order),
 * check for zeros, digest and compress it; the calling thread then commits results strictly in
 * submission order, so the blobs come out the same whatever the thread count or timing.
 * At most {@link #maxBytes} bytes (and {@link #maxTasks} chunks) are in flight, so memory stays
 * bounded for any input.
 *
 * <p>Committing a chunk: all zeros becomes a hole (stored nowhere); a digest stored before, in any
 * layer, is referenced; otherwise the chunk is appended to the current layer's blob. A worker skips
 * compressing a chunk whose digest is already committed, and a chunk compressed in vain (its twin
 * committed meanwhile) is dropped at commit: neither changes the output.
 */
public final class ChunkPipeline implements AutoCloseable {
    private final BuildOptions options;
    private final ChunkRegistry registry;
    private final BlobSet blobs;
    private final ExecutorService workers;
    private final ThreadLocal<ChunkHasher> hashers;
    private final ThreadLocal<ChunkCompressor> compressors;
    private final byte[] zeros;
    private final int maxTasks;
    private final long maxBytes;
    private final ArrayDeque<Pending> window = new ArrayDeque<>();
    /** Files whose chunks are still being read; closed here if the build fails before they are. */
    private final Set<FileChannel> openFiles = ConcurrentHashMap.newKeySet();
    private long windowBytes;
    private final Stats stats = new Stats();
    private LongConsumer committed = n -> { };

    /** Counts of what the pipeline did with the chunks it was given. */
    public static final class Stats {
        public long chunks;
        public long holes;
        public long deduplicated;
        public long stored;
        public long bytesIn;
        public long bytesStored;
    }

    private record Pending(FileContent file, int index, int length, Future<Result> result) {
    }

    /**
     * A worker's verdict on a chunk's bytes: a hole, or a digest with the bytes to store (compressed
     * or raw, as {@code compressed} says; none when skipped as already stored). Only the bytes to
     * store are kept: the window's memory is what its results hold.
     */
    private record Result(boolean hole, DigestKey key, byte[] digest, byte[] stored, boolean compressed, boolean skipped) {
    }

    /** Gets a chunk's bytes, on the worker that processes it. */
    @FunctionalInterface
    private interface ChunkBytes {
        byte[] read() throws IOException;
    }

    public ChunkPipeline(BuildOptions options, ChunkRegistry registry, BlobSet blobs) {
        this.options = options;
        this.registry = registry;
        this.blobs = blobs;
        int threads = options.threads();
        AtomicInteger n = new AtomicInteger();
        ThreadFactory tf = r -> {
            Thread t = new Thread(r, "strata-chunk-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
        this.workers = Executors.newFixedThreadPool(threads, tf);
        this.hashers = ThreadLocal.withInitial(() -> ChunkHasher.create(options.digest()));
        this.compressors = ThreadLocal.withInitial(() -> ChunkCompressor.create(options.compressor().compression(),
                options.compressor().level()));
        this.zeros = new byte[(int) options.chunkSize()];
        // Many small tasks may wait behind one big one (files of a few KiB behind a 1 MiB chunk):
        // the byte bound limits memory, the task bound only the queue's length.
        this.maxTasks = 1024;
        // At most 64 MiB, and at most a quarter of the heap, so a small -Xmx still leaves room for
        // the chunks being read and their compressed copies; but always enough to keep every worker busy.
        long heapShare = Runtime.getRuntime().maxMemory() / 4;
        this.maxBytes = Math.max(Math.min(64L << 20, heapShare), 2L * threads * options.chunkSize());
    }

    /** Called with each chunk's size once it is committed (progress for sources read by the workers). */
    public void onCommitted(LongConsumer listener) {
        this.committed = listener;
    }

    /**
     * Reads {@code content.size()} bytes of a file from {@code in} and stores its chunks; the chunk
     * ids land in {@code content} as results are committed. {@code what} names the file in errors.
     */
    public void addFile(FileContent content, InputStream in, String what) throws IOException {
        long size = content.size();
        long offset = 0;
        for (int i = 0; i < content.chunkCount(); i++) {
            int len = (int) Math.min(options.chunkSize(), size - offset);
            byte[] data = new byte[len];
            int n = in.readNBytes(data, 0, len);
            if (n < len) {
                throw new EOFException(what + ": data ends after " + (offset + n) + " of " + size + " bytes");
            }
            submit(content, i, len, () -> data);
            offset += len;
        }
    }

    /**
     * Stores the chunks of a file on the host. The workers read the chunks themselves, by position
     * from one shared channel, so the calling thread only opens files and commits.
     */
    public void addFile(FileContent content, Path file) throws IOException {
        if (content.chunkCount() == 0) {
            return;
        }
        FileChannel ch = openRegular(file);
        openFiles.add(ch);
        AtomicInteger readers = new AtomicInteger(content.chunkCount());
        long size = content.size();
        try {
            for (int i = 0; i < content.chunkCount(); i++) {
                long pos = i * options.chunkSize();
                int len = (int) Math.min(options.chunkSize(), size - pos);
                submit(content, i, len, () -> {
                    try {
                        return readFully(ch, pos, len, size, file);
                    } finally {
                        if (readers.decrementAndGet() == 0) {
                            openFiles.remove(ch);
                            ch.close();
                        }
                    }
                });
            }
        } catch (IOException | RuntimeException e) {
            openFiles.remove(ch);
            ch.close();
            throw e;
        }
    }

    /**
     * Opens a file the walk saw as regular, refusing what is there now if it is not: a FIFO put in its
     * place between the walk's lstat and this open made the open (and the build) wait for ever for a
     * writer. The non-blocking, no-follow open pins the inode whatever it is; a regular one is then
     * opened again through /proc/self/fd, which names that very inode.
     */
    static FileChannel openRegular(Path file) throws IOException {
        io.strata.core.os.LibC libc = io.strata.core.os.Native.libc();
        int fd = libc.open(file.toString(), io.strata.core.os.LibC.O_RDONLY | io.strata.core.os.LibC.O_NONBLOCK
                | io.strata.core.os.LibC.O_NOFOLLOW | io.strata.core.os.LibC.O_CLOEXEC);
        if (fd < 0) {
            int e = io.strata.core.os.Native.errno();
            throw new IOException(file + ": cannot open it: " + io.strata.core.os.Native.errnoText(e)
                    + (e == io.strata.core.os.LibC.ELOOP ? " (it became a symlink during the build)" : ""));
        }
        try {
            if (!Files.isRegularFile(Path.of("/proc/self/fd/" + fd))) {
                throw new IOException(file + ": no longer a regular file (it changed during the build)");
            }
            return io.strata.core.os.Native.reopenForReading(fd);
        } finally {
            libc.close(fd);
        }
    }

    private static byte[] readFully(FileChannel ch, long pos, int len, long size, Path file) throws IOException {
        byte[] data = new byte[len];
        ByteBuffer b = ByteBuffer.wrap(data);
        while (b.hasRemaining()) {
            if (ch.read(b, pos + b.position()) < 0) {
                throw new EOFException(file + ": data ends after " + (pos + b.position()) + " of " + size
                        + " bytes (the file shrank while it was read)");
            }
        }
        return data;
    }

    private void submit(FileContent file, int index, int length, ChunkBytes bytes) throws IOException {
        while (!window.isEmpty() && (window.size() >= maxTasks || windowBytes + length > maxBytes)) {
            commit(window.poll());
        }
        Future<Result> f = workers.submit(() -> process(bytes.read()));
        window.add(new Pending(file, index, length, f));
        windowBytes += length;
    }

    private Result process(byte[] data) {
        if (Arrays.mismatch(data, 0, data.length, zeros, 0, data.length) < 0) {
            return new Result(true, null, null, null, false, false);
        }
        byte[] digest = hashers.get().digest(data, data.length);
        DigestKey key = DigestKey.of(digest);
        if (registry.contains(key)) {
            return new Result(false, key, digest, null, false, true);
        }
        byte[] compressed = compressors.get().compress(data, data.length);
        return compressed != null ? new Result(false, key, digest, compressed, true, false)
                : new Result(false, key, digest, data, false, false);
    }

    private void commit(Pending p) throws IOException {
        windowBytes -= p.length();
        Result r;
        try {
            r = p.result().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while storing chunks");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IOException("chunk worker failed: " + e.getCause(), e.getCause());
        }
        stats.chunks++;
        stats.bytesIn += p.length();
        committed.accept(p.length());
        if (r.hole()) {
            stats.holes++;
            p.file().setChunk(p.index(), FileContent.HOLE);
            return;
        }
        registry.countReference();
        int id = registry.find(r.key());
        if (id >= 0) {
            stats.deduplicated++;
            p.file().setChunk(p.index(), id);
            return;
        }
        if (r.skipped()) {
            throw new IllegalStateException("a chunk skipped as stored was not in the registry");
        }
        byte[] stored = r.stored();
        StoredChunk c = blobs.writer().append(stored, stored.length, r.compressed(), p.length(), r.digest());
        stats.stored++;
        stats.bytesStored += stored.length;
        p.file().setChunk(p.index(), registry.add(r.key(), c));
    }

    /** Commits everything in flight. */
    public void flush() throws IOException {
        while (!window.isEmpty()) {
            commit(window.poll());
        }
    }

    /** Ends a layer: commits its chunks and finishes its blob, so the next layer's chunks go to a new one. */
    public void endLayer() throws IOException {
        flush();
        blobs.finishLayer();
    }

    public Stats stats() {
        return stats;
    }

    @Override
    public void close() {
        for (Pending p : window) {
            p.result().cancel(true);
        }
        window.clear();
        workers.shutdownNow();
        for (FileChannel ch : openFiles) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // the build already failed; nothing else to do with this file
            }
        }
        openFiles.clear();
        blobs.abandon();
    }
}
