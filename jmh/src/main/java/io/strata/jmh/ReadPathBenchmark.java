package io.strata.jmh;

import io.strata.core.chunk.CacheStats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * {@code FlatDevice.read} into a direct buffer, inside the blob area of a 64 MiB (64 chunks of
 * 1 MiB) image whose blob file is in the page cache. One op reads 4 KiB ({@code *4k}) or 1 MiB
 * ({@code *1m}, chunk-aligned, so exactly one chunk).
 *
 * <p>Hits: a cache that holds every chunk, warmed in setup; 4 KiB reads at random 4 KiB-aligned
 * offsets, 1 MiB reads walking the chunks in order.
 *
 * <p>Misses: the minimum cache (4 slots) and reads that walk the 64 chunks round-robin, so CLOCK
 * has always evicted the next chunk and every op loads one chunk: read the compressed bytes,
 * decompress, digest. The 4 KiB variant reads a random 4 KiB block of that chunk. The checks after
 * each iteration fail the run if a compressed variant ever hits. Stored ({@code none}) chunks are
 * loaded once to check their digest and are then read straight from the blob file (a FileChannel
 * read, no cache): that is the intended stored path, and what {@code none-*} measures.
 */
public class ReadPathBenchmark extends JvmSettings {
    static final int CHUNKS = 64;
    static final int SMALL = 4096;
    private static final int RANDOM_OFFSETS = 1 << 14;

    /** Counts ops and cache lookups per iteration, so that each state can check what it measured. */
    abstract static class Counted {
        BenchImage image;
        String label;
        ByteBuffer small = ByteBuffer.allocateDirect(SMALL);
        ByteBuffer large = ByteBuffer.allocateDirect(BenchImage.CHUNK);
        /** Random 4 KiB-aligned offsets inside the blob's uncompressed space. */
        int[] randomBlock = new int[RANDOM_OFFSETS];
        int next;
        long ops;
        private CacheStats before;
        private long totalOps;
        private long totalMisses;

        void init(String label, String variant, long cacheBytes) throws IOException {
            this.label = label;
            image = BenchImage.create(variant, CHUNKS, cacheBytes);
            Random r = new Random(42);
            for (int i = 0; i < randomBlock.length; i++) {
                randomBlock[i] = r.nextInt(CHUNKS * (BenchImage.CHUNK / SMALL)) * SMALL;
            }
        }

        /** The chunks in order, round-robin. */
        long nextChunkOffset() {
            return image.chunkOffset(Math.floorMod(next++, CHUNKS)); // floorMod: next may wrap
        }

        /** A random 4 KiB block anywhere in the blob. */
        long nextRandomBlock() {
            return image.blobStart + randomBlock[next++ & (RANDOM_OFFSETS - 1)];
        }

        @Setup(Level.Iteration)
        public void mark() {
            ops = 0;
            before = image.stats();
        }

        @TearDown(Level.Iteration)
        public void check() {
            CacheStats now = image.stats();
            long misses = now.misses() - before.misses();
            long hits = now.hits() - before.hits();
            totalOps += ops;
            totalMisses += misses;
            String problem = expect(ops, misses, hits);
            if (problem != null) {
                throw new IllegalStateException(problem + ": ops=" + ops + " misses=" + misses + " hits=" + hits);
            }
        }

        /** A description of what is wrong with this iteration's cache counters, or null. */
        abstract String expect(long ops, long misses, long hits);

        @TearDown(Level.Trial)
        public void close() throws IOException {
            System.out.printf("%n[cache] %s ops=%d misses=%d (all iterations, warmup included); %s%n",
                    label, totalOps, totalMisses, image.stats());
            image.close();
        }
    }

    @State(Scope.Thread)
    public static class Warm extends Counted {
        @Setup(Level.Trial)
        public void setup() throws IOException {
            init("hit zstd-sha256", "zstd-sha256", (long) CHUNKS * BenchImage.CHUNK);
            image.readAll();
        }

        @Override
        String expect(long ops, long misses, long hits) {
            return misses != 0 ? "a cache-hit benchmark missed" : null;
        }
    }

    @State(Scope.Thread)
    public static class Cold extends Counted {
        @Param({"zstd-sha256", "lz4-sha256", "none-sha256", "zstd-blake3"})
        public String variant;

        @Setup(Level.Trial)
        public void setup() throws IOException {
            init("miss " + variant, variant, 0);
        }

        @Override
        String expect(long ops, long misses, long hits) {
            if (variant.startsWith("none-")) {
                // Each chunk misses once (digest check), then is served from the file.
                return misses > CHUNKS || hits != 0 ? "stored chunks went through the cache" : null;
            }
            return misses != ops || hits != 0 ? "a cache-miss benchmark did not miss on every op" : null;
        }
    }

    @Benchmark
    public ByteBuffer hit4k(Warm s) throws IOException {
        s.small.clear();
        s.image.device.read(s.nextRandomBlock(), s.small);
        s.ops++;
        return s.small;
    }

    @Benchmark
    public ByteBuffer hit1m(Warm s) throws IOException {
        s.large.clear();
        s.image.device.read(s.nextChunkOffset(), s.large);
        s.ops++;
        return s.large;
    }

    @Benchmark
    public ByteBuffer miss4k(Cold s) throws IOException {
        s.small.clear();
        // The next chunk in order, a random 4 KiB block of it.
        int block = s.randomBlock[s.next & (RANDOM_OFFSETS - 1)] & (BenchImage.CHUNK - 1);
        s.image.device.read(s.nextChunkOffset() + block, s.small);
        s.ops++;
        return s.small;
    }

    @Benchmark
    public ByteBuffer miss1m(Cold s) throws IOException {
        s.large.clear();
        s.image.device.read(s.nextChunkOffset(), s.large);
        s.ops++;
        return s.large;
    }
}
