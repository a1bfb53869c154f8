package io.strata.core.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
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
                await(release);
                slot.view().put(0, (byte) 42);
                return 4096;
            };
            List<Reader> readers = new ArrayList<>();
            readers.add(Reader.start(cache, 3, slow));
            loading.await();
            for (int i = 1; i < 8; i++) {
                readers.add(Reader.start(cache, 3, slow));
            }
            // Every other reader must be parked on the loading entry before the load ends, or some
            // could arrive after it and count as plain hits: this test is about sharing a load.
            for (Reader r : readers.subList(1, 8)) {
                awaitWaitingForLoad(r.thread);
            }
            release.countDown();
            ChunkCache.Entry first = readers.get(0).entry();
            for (Reader r : readers) {
                ChunkCache.Entry e = r.entry();
                assertSame(first, e);
                assertEquals(42, e.buffer().view().get(0));
                cache.release(e);
            }
            assertEquals(1, loads.get());
            assertEquals(1, cache.stats().misses());
            assertEquals(7, cache.stats().waits(), "the others shared the one load");
        }
    }

    @Test
    void aPinDroppedJustBeforeALoadWaitsForRoomIsNotMissed() throws Exception {
        // Room for the smallest cache's buffers, every one pinned; a load of one more chunk finds
        // nothing to evict and, before it counts itself a waiter, one pin is dropped (the gate): no
        // other release follows, so a load that then waited for one would wait for ever.
        int slots = ChunkCache.MIN_SLOTS;
        try (ChunkCache cache = new ChunkCache(4096, 4096, new int[] {slots + 1})) {
            ChunkCache.Loader fill = (b, c, slot) -> 4096;
            List<ChunkCache.Entry> pinned = new ArrayList<>();
            for (int c = 0; c < slots; c++) {
                pinned.add(cache.acquire(0, c, 4096, fill));
            }
            ChunkCache.Entry held = pinned.get(0);
            ChunkCache.afterFailedEvictionForTest = () -> {
                ChunkCache.afterFailedEvictionForTest = null;
                cache.release(held);
            };
            try {
                CompletableFuture<ChunkCache.Entry> other = new CompletableFuture<>();
                Thread t = new Thread(() -> {
                    try {
                        other.complete(cache.acquire(0, slots, 4096, fill));
                    } catch (Throwable e) {
                        other.completeExceptionally(e);
                    }
                }, "load-chunk-1");
                t.setDaemon(true);
                t.start();
                ChunkCache.Entry e = other.get(20, TimeUnit.SECONDS);
                assertTrue(e != held, "the new chunk got the buffer chunk 0 gave up");
                assertTrue(ChunkCache.afterFailedEvictionForTest == null, "the gate ran: the load did find every buffer pinned");
                cache.release(e);
                pinned.subList(1, slots).forEach(cache::release);
            } finally {
                ChunkCache.afterFailedEvictionForTest = null;
            }
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
                    ChunkCache.Entry e = cache.acquire(0, c, 4096, loader);
                    assertEquals(c, e.buffer().view().getInt(0));
                    cache.release(e);
                }
            }
            CacheStats s = cache.stats();
            assertEquals(4 * 4096, s.capacityBytes());
            assertTrue(s.residentBytes() <= s.capacityBytes());
            assertTrue(s.evictions() >= 290, s.toString());
            // A pinned chunk is never evicted: hold one, cycle through the others, it stays.
            ChunkCache.Entry held = cache.acquire(0, 0, 4096, loader);
            for (int c = 1; c < 50; c++) {
                cache.release(cache.acquire(0, c, 4096, loader));
            }
            assertEquals(0, held.buffer().view().getInt(0));
            cache.release(held);
        }
    }

    /**
     * New buffers are allocated outside the cache's lock (the JDK zeroes them, page by page), with
     * their room reserved first: threads loading chunks of several size classes at once, in a cache
     * that must give memory back between classes, never hold more than its bound, and every reader
     * sees its own chunk's bytes.
     */
    @Test
    void concurrentLoadsOfMixedSizesStayWithinTheBound() throws Exception {
        int[] sizes = {4096, 20_000, 100_000, 300_000};
        long capacity = 4L * 300_000 + 64 * 1024;
        int threads = 6;
        int chunks = 400;
        // Its own threads: the common pool has one thread on a 2-core machine.
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(threads);
        try (ChunkCache cache = new ChunkCache(capacity, 300_000, new int[] {chunks})) {
            long bound = cache.capacityBytes();
            AtomicInteger overBound = new AtomicInteger();
            ChunkCache.Loader loader = (b, c, slot) -> {
                if (cache.allocatedBytes() > bound) {
                    overBound.incrementAndGet();
                }
                slot.view().putInt(0, c);
                return sizes[c % sizes.length];
            };
            List<CompletableFuture<Void>> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int seed = t;
                workers.add(CompletableFuture.runAsync(() -> {
                    try {
                        for (int i = 0; i < 2_000; i++) {
                            int c = (i * 7 + seed * 131) % chunks;
                            ChunkCache.Entry e = cache.acquire(0, c, sizes[c % sizes.length], loader);
                            try {
                                assertEquals(c, e.buffer().view().getInt(0));
                            } finally {
                                cache.release(e);
                            }
                        }
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }, pool));
            }
            for (CompletableFuture<Void> w : workers) {
                w.get(60, TimeUnit.SECONDS);
            }
            assertEquals(0, overBound.get(), "loads saw the cache hold more than its bound");
            assertTrue(cache.allocatedBytes() <= bound, cache.allocatedBytes() + " > " + bound);
            assertTrue(cache.stats().evictions() > 0, "the bound was reached: " + cache.stats());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aFailedLoadFailsItsWaitersAndIsRetriedLater() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        CountDownLatch loading = new CountDownLatch(1);
        CountDownLatch fail = new CountDownLatch(1);
        ChunkCorruptedException corrupt = new ChunkCorruptedException("bad chunk");
        try (ChunkCache cache = new ChunkCache(1 << 20, 4096, new int[] {2})) {
            ChunkCache.Loader failing = (b, c, slot) -> {
                calls.incrementAndGet();
                loading.countDown();
                await(fail);
                throw corrupt;
            };
            Reader loader = Reader.start(cache, 1, failing);
            loading.await();
            // A second reader of the same chunk while the first one's load is still running: it
            // must wait for that load (not start its own), so wait until it is parked on the entry.
            Reader waiter = Reader.start(cache, 1, (b, c, slot) -> {
                throw new AssertionError("the waiter must share the running load, not start its own");
            });
            awaitWaitingForLoad(waiter.thread);
            fail.countDown();
            assertSame(corrupt, loader.failure(), "the loading reader gets its loader's error");
            assertSame(corrupt, waiter.failure(), "the waiter gets the same error");
            assertEquals(1, calls.get(), "one load, shared");
            // The failed entry is gone: the next reader loads again, and this time it works.
            ChunkCache.Entry ok = cache.acquire(0, 1, 100, (b, c, slot) -> 100);
            assertEquals(100, ok.length());
            cache.release(ok);
            assertEquals(2, cache.stats().misses(), "the failed load and the retry; the waiter loaded nothing");
        }
    }

    /** A thread that acquires one chunk, keeping the entry or the error it got. */
    private static final class Reader {
        final Thread thread;
        final CompletableFuture<ChunkCache.Entry> result = new CompletableFuture<>();

        private Reader(ChunkCache cache, int chunk, ChunkCache.Loader loader) {
            thread = new Thread(() -> {
                try {
                    result.complete(cache.acquire(0, chunk, 4096, loader));
                } catch (Throwable t) {
                    result.completeExceptionally(t);
                }
            }, "reader-" + chunk);
            thread.setDaemon(true);
        }

        static Reader start(ChunkCache cache, int chunk, ChunkCache.Loader loader) {
            Reader r = new Reader(cache, chunk, loader);
            r.thread.start();
            return r;
        }

        ChunkCache.Entry entry() throws Exception {
            return result.get(10, TimeUnit.SECONDS);
        }

        Throwable failure() throws Exception {
            ExecutionException e = assertThrows(ExecutionException.class, () -> result.get(10, TimeUnit.SECONDS));
            return e.getCause();
        }
    }

    /**
     * Polls (with a deadline) until {@code t} is parked (WAITING) inside ChunkCache: a reader of a
     * chunk that is loading waits on its entry; it parks nowhere else unless it loads itself.
     */
    private static void awaitWaitingForLoad(Thread t) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!(t.getState() == Thread.State.WAITING && Arrays.stream(t.getStackTrace())
                .anyMatch(f -> f.getClassName().equals(ChunkCache.class.getName())))) {
            if (System.nanoTime() > deadline) {
                fail(t.getName() + " never waited for the running load: " + t.getState() + " "
                        + Arrays.toString(t.getStackTrace()));
            }
            Thread.sleep(1);
        }
    }

    private static void await(CountDownLatch latch) throws IOException {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) {
                throw new IOException("the test never released the load");
            }
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
    }
}
