package io.strata.jmh;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.chunk.CacheStats;
import io.strata.core.chunk.ChunkCache;
import io.strata.core.chunk.ChunkStore;
import io.strata.core.chunk.ChunkTable;
import io.strata.core.image.RafsImage;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Loads every chunk of a real image, one after another on one thread, as a cold read of it does:
 * read the compressed bytes from the blob, decompress, check the digest, through
 * {@link ChunkStore#acquire} (the code a cache miss runs). One op loads one chunk, in blob order
 * (the order a whole-device read meets them), round-robin over the image.
 *
 * <p>Why it exists: {@code ReadPathBenchmark.miss1m} loads 1 MiB chunks, but an image of a tree of
 * small files has one chunk per file (most of a few KiB), where the costs per chunk (a zstd frame's
 * set-up, BLAKE3 below the 32 KiB at which its SIMD lanes start, the cache's bookkeeping) weigh far
 * more than per byte. {@code bench/cold-read.sh} runs this on the images it serves and judges the
 * server against 2 cores x this rate.
 *
 * <p>{@code image} is a directory holding {@code bootstrap} and {@code blobs/} (what {@code strata
 * build -o DIR} writes); the blob files should be in the page cache (the script reads them first).
 * The cache is the minimum (4 of the largest chunk), far smaller than the image, so each chunk has
 * been evicted before its next turn and every op misses (checked after each iteration). The score
 * is chunks/s. Secondary results, per iteration: {@code ops}, {@code bytes}, the chunks' uncompressed
 * bytes loaded, and {@code cpuMicros}, the benchmark thread's CPU time: bytes / (cpuMicros / 10^6) is the
 * rate per CPU-second, the single-core rate whatever share of a CPU a shared machine gave the
 * thread (on a quiet machine it equals bytes per second of wall clock). That is the figure to
 * compare with a server's chunk-data rate (MiB/s = bytes / 2^20).
 */
public class ImageChunksBenchmark extends JvmSettings {

    @State(Scope.Thread)
    public static class Image {
        /** A directory with {@code bootstrap} and {@code blobs/}. */
        @Param("")
        public String image;

        ChunkStore store;
        /** Every chunk of every blob, in blob order: its blob, its index, its uncompressed size. */
        int[] blobOf;
        int[] chunkOf;
        int[] sizeOf;
        int next;
        long ops;
        private CacheStats before;

        @Setup(Level.Trial)
        public void open() throws IOException {
            if (image.isEmpty()) {
                throw new IllegalArgumentException("give the image directory: -p image=DIR (DIR/bootstrap, DIR/blobs/)");
            }
            Path dir = Path.of(image);
            store = ChunkStore.open(RafsImage.open(dir.resolve("bootstrap")), new LocalBlobDirectory(dir.resolve("blobs")), 0);
            int n = 0;
            long bytes = 0;
            for (int b = 0; b < store.blobCount(); b++) {
                n += store.table(b).size();
            }
            blobOf = new int[n];
            chunkOf = new int[n];
            sizeOf = new int[n];
            int i = 0;
            for (int b = 0; b < store.blobCount(); b++) {
                ChunkTable t = store.table(b);
                for (int c = 0; c < t.size(); c++, i++) {
                    blobOf[i] = b;
                    chunkOf[i] = c;
                    sizeOf[i] = t.uncompressedSize(c);
                    bytes += sizeOf[i];
                }
            }
            if (bytes < 4 * store.cache().capacityBytes()) {
                throw new IllegalArgumentException(image + " holds " + bytes + " bytes of chunks, too few to miss on every"
                        + " load with a cache of " + store.cache().capacityBytes());
            }
            long blobBytes = 0;
            try (var files = Files.list(dir.resolve("blobs"))) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    blobBytes += Files.size(p);
                }
            }
            System.out.printf("%n[image] %s: %d chunks, %.1f MiB uncompressed (mean %d bytes), blobs %.1f MiB%n",
                    image, n, bytes / 1048576.0, bytes / n, blobBytes / 1048576.0);
        }

        @Setup(Level.Iteration)
        public void mark() {
            ops = 0;
            before = store.stats();
        }

        @TearDown(Level.Iteration)
        public void check() {
            CacheStats now = store.stats();
            long misses = now.misses() - before.misses();
            if (misses != ops || now.hits() != before.hits()) {
                throw new IllegalStateException("a load did not miss: ops=" + ops + " misses=" + misses);
            }
        }

        @TearDown(Level.Trial)
        public void close() throws IOException {
            System.out.printf("%n[loads] %s%n", store.loadStats());
            store.close();
        }
    }

    /** The chunks' uncompressed bytes and the thread's CPU time in one iteration (JMH secondary results). */
    @AuxCounters(AuxCounters.Type.EVENTS)
    @State(Scope.Thread)
    public static class Bytes {
        private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
        public long ops;
        public long bytes;
        public long cpuMicros;
        private long start;

        @Setup(Level.Iteration)
        public void start() {
            ops = 0;
            bytes = 0;
            cpuMicros = 0;
            start = THREADS.getCurrentThreadCpuTime();
        }

        @TearDown(Level.Iteration)
        public void stop() {
            cpuMicros = (THREADS.getCurrentThreadCpuTime() - start) / 1000;
        }
    }

    @Benchmark
    public int loadChunk(Image s, Bytes counted) throws IOException {
        int i = s.next;
        s.next = i + 1 == s.blobOf.length ? 0 : i + 1;
        ChunkCache.Entry e = s.store.acquire(s.blobOf[i], s.chunkOf[i]);
        int length = e.length();
        s.store.release(e);
        s.ops++;
        counted.ops++;
        counted.bytes += s.sizeOf[i];
        return length;
    }
}
