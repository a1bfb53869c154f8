package io.strata.core.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ChunkCacheTest {
    @Test
    void concurrentReadersOfOneChunkTriggerOneLoad() throws Exception {
        AtomicInteger loads = new AtomicInteger();
        CountDownLatch loading = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        try (ChunkCache cache = new ChunkCache(1 << 20, 4096, new int[] {8})) {
            ChunkCache.Loader slow = (b, c, slot) -> {
                loads.incrementAndGet();
                loading.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    throw new IOException(e);
                }
                slot.view().put(0, (byte) 42);
                return 4096;
            };
            ExecutorService pool = Executors.newFixedThreadPool(8);
            List<Future<ChunkCache.Entry>> fs = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                fs.add(pool.submit(() -> cache.acquire(0, 3, slow)));
            }
            loading.await();
            Thread.sleep(100); // let the other readers pile up on the loading entry
            release.countDown();
            ChunkCache.Entry first = fs.get(0).get();
            for (Future<ChunkCache.Entry> f : fs) {
                ChunkCache.Entry e = f.get();
                assertSame(first, e);
                assertEquals(42, e.buffer().view().get(0));
                cache.release(e);
            }
            pool.shutdown();
            assertEquals(1, loads.get());
            assertEquals(1, cache.stats().misses());
            assertEquals(7, cache.stats().hits() + cache.stats().waits(), "the others shared the one load");
        }
    }

    @Test
    void evictsUnpinnedChunksAndNeverExceedsItsBound() throws Exception {
        AtomicInteger loads = new AtomicInteger();
        ChunkCache.Loader loader = (b, c, slot) -> {
            loads.incrementAndGet();
            slot.view().putInt(0, c);
            return 4096;
        };
        try (ChunkCache cache = new ChunkCache(4 * 4096, 4096, new int[] {100})) {
            for (int round = 0; round < 3; round++) {
                for (int c = 0; c < 100; c++) {
                    ChunkCache.Entry e = cache.acquire(0, c, loader);
                    assertEquals(c, e.buffer().view().getInt(0));
                    cache.release(e);
                }
            }
            CacheStats s = cache.stats();
            assertEquals(4 * 4096, s.capacityBytes());
            assertTrue(s.residentBytes() <= s.capacityBytes());
            assertTrue(s.evictions() >= 290, s.toString());
            // A pinned chunk is never evicted: hold one, cycle through the others, it stays.
            ChunkCache.Entry held = cache.acquire(0, 0, loader);
            for (int c = 1; c < 50; c++) {
                cache.release(cache.acquire(0, c, loader));
            }
            assertEquals(0, held.buffer().view().getInt(0));
            cache.release(held);
        }
    }

    @Test
    void aFailedLoadFailsItsWaitersAndIsRetriedLater() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        try (ChunkCache cache = new ChunkCache(1 << 20, 4096, new int[] {2})) {
            ChunkCache.Loader failing = (b, c, slot) -> {
                calls.incrementAndGet();
                throw new ChunkCorruptedException("bad chunk");
            };
            assertThrows(ChunkCorruptedException.class, () -> cache.acquire(0, 1, failing));
            assertThrows(ChunkCorruptedException.class, () -> cache.acquire(0, 1, failing));
            assertEquals(2, calls.get());
            ChunkCache.Entry ok = cache.acquire(0, 1, (b, c, slot) -> 100);
            assertEquals(100, ok.length());
            cache.release(ok);
        }
    }
}
