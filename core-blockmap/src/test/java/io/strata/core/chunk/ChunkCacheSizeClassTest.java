package io.strata.core.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The cache holds each chunk in a buffer of its size class, not of the largest chunk's size: a tree
 * of small files used to take a 1 MiB slot per file, so a 4 MiB cache held four of them and thrashed
 * (bench/cold-read.sh: /usr/include, 7,912 chunks of 8 KiB on average, read at 2 % of the cores'
 * limit), and a cache big enough for all of them took a hundred times their bytes.
 */
class ChunkCacheSizeClassTest {
    @Test
    void sizeClassesGrowByAQuarterFromOnePageToTheLargestChunk() {
        int[] classes = ChunkCache.sizeClasses(1 << 20);
        assertEquals(4096, classes[0]);
        assertEquals(5120, classes[1]);
        assertEquals(1 << 20, classes[classes.length - 1]);
        for (int i = 1; i < classes.length; i++) {
            assertTrue(classes[i] > classes[i - 1] && classes[i] <= classes[i - 1] * 1.25 + 1, "step " + i);
        }
        int[] odd = ChunkCache.sizeClasses(3_000_000);
        assertTrue(odd[odd.length - 1] >= 3_000_000 && odd[odd.length - 2] < 3_000_000);
    }

    @Test
    void smallChunksTakeTheMemoryOfTheirSize() throws Exception {
        int chunks = 500;
        ChunkCache.Loader loader = (b, c, buffer) -> {
            buffer.view().putInt(0, c);
            return 5000;
        };
        // 4 MiB for chunks of up to 1 MiB: as slots, four chunks; by size class (5 KiB), all 500.
        try (ChunkCache cache = new ChunkCache(4 << 20, 1 << 20, new int[] {chunks})) {
            for (int round = 0; round < 2; round++) {
                for (int c = 0; c < chunks; c++) {
                    ChunkCache.Entry e = cache.acquire(0, c, 5000, loader);
                    assertEquals(c, e.buffer().view().getInt(0));
                    cache.release(e);
                }
            }
            CacheStats s = cache.stats();
            assertEquals(chunks, s.misses(), s.toString());
            assertEquals(chunks, s.hits(), s.toString());
            assertEquals(0, s.evictions(), s.toString());
            assertEquals(chunks * 5120L, s.residentBytes(), s.toString());
        }
    }

    @Test
    void mixedSizesStayWithinTheBoundAndKeepTheirBytes() throws Exception {
        Random random = new Random(4);
        int chunks = 300;
        int[] size = new int[chunks];
        for (int c = 0; c < chunks; c++) {
            size[c] = random.nextInt(4) == 0 ? 1 + random.nextInt(1 << 20) : 1 + random.nextInt(64 << 10);
        }
        ChunkCache.Loader loader = (b, c, buffer) -> {
            assertTrue(buffer.capacity() >= size[c], "a buffer holds its chunk");
            buffer.view().putInt(0, c);
            buffer.view().put(size[c] - 1, (byte) c);
            return size[c];
        };
        long capacity = 6 << 20;
        try (ChunkCache cache = new ChunkCache(capacity, 1 << 20, new int[] {chunks})) {
            ArrayDeque<ChunkCache.Entry> held = new ArrayDeque<>();
            for (int i = 0; i < 5000; i++) {
                int c = random.nextInt(chunks);
                ChunkCache.Entry e = cache.acquire(0, c, size[c], loader);
                if (size[c] >= 4) {
                    assertEquals(c, e.buffer().view().getInt(0));
                }
                assertEquals((byte) c, e.buffer().view().get(size[c] - 1));
                held.add(e);
                if (held.size() > 2) {
                    cache.release(held.poll());
                }
                assertTrue(cache.allocatedBytes() <= capacity, "allocated " + cache.allocatedBytes() + " of " + capacity);
            }
            held.forEach(cache::release);
            CacheStats s = cache.stats();
            assertTrue(s.evictions() > 0 && s.hits() > 0, s.toString());
            assertTrue(s.residentBytes() <= capacity, s.toString());
        }
    }
}
