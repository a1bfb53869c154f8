package io.strata.core.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** One cache shared by several devices' blobs (the daemon's exports): one bound, per-device shares, memory freed on removal. */
class SharedChunkCacheTest {
    private static final int SLOT = 4096;

    @Test
    void devicesShareOneBoundAndRemovingOneFreesOnlyItsSlots() throws Exception {
        try (ChunkCache cache = new ChunkCache(8L * SLOT, SLOT)) {
            int a = cache.addBlobs(new int[] {4, 4}).first();
            ChunkCache.Share bShare = cache.addBlobs(new int[] {16});
            int b = bShare.first();
            assertEquals(0, a);
            assertEquals(2, b, "the second device's blobs follow the first's");
            // Each chunk's first byte says whose it is: the loaders see the cache-wide blob index.
            ChunkCache.Loader loader = (blob, chunk, slot) -> {
                slot.view().put(0, (byte) (blob * 16 + chunk));
                return SLOT;
            };
            for (int c = 0; c < 3; c++) {
                cache.release(cache.acquire(a + 1, c, SLOT, loader));
            }
            for (int c = 0; c < 4; c++) {
                cache.release(cache.acquire(b, c, SLOT, loader));
            }
            assertEquals(3L * SLOT, cache.residentBytes(a, 2));
            assertEquals(4L * SLOT, cache.residentBytes(b, 1));
            assertEquals(7L * SLOT, cache.stats().residentBytes());

            // One bound for both: device b reading many chunks evicts a's cold ones rather than growing past 8 slots.
            for (int c = 4; c < 16; c++) {
                cache.release(cache.acquire(b, c, SLOT, loader));
            }
            assertEquals(8L * SLOT, cache.stats().residentBytes(), "never past the shared bound");

            // Each device's counters are its own; the cache's are their sum.
            assertEquals(16, cache.stats(bShare).misses());
            assertEquals(8L * SLOT - cache.residentBytes(a, 2), cache.stats(bShare).residentBytes());
            assertEquals(19, cache.stats().misses());
            assertEquals(cache.stats().evictions(), cache.stats(bShare).evictions() + 3 - cache.residentBytes(a, 2) / SLOT,
                    "evictions are counted against the device whose chunk left");
            long aShare = cache.residentBytes(a, 2);
            cache.removeBlobs(b, 1);
            assertEquals(0, cache.residentBytes(b, 1));
            assertEquals(aShare, cache.residentBytes(a, 2), "the other device keeps its chunks");
            assertEquals(aShare, cache.stats().residentBytes(), "the removed device's slots are freed");

            // A device added after a removal gets fresh indexes, and the freed slots serve it.
            int c2 = cache.addBlobs(new int[] {2}).first();
            assertEquals(3, c2);
            ChunkCache.Entry e = cache.acquire(c2, 1, SLOT, loader);
            assertEquals((byte) (3 * 16 + 1), e.buffer().view().get(0));
            cache.release(e);
            for (int c = 0; c < 3; c++) {
                ChunkCache.Entry again = cache.acquire(a + 1, c, SLOT, loader);
                assertEquals((byte) (16 + c), again.buffer().view().get(0), "device a still reads its own bytes");
                cache.release(again);
            }
        }
    }
}
