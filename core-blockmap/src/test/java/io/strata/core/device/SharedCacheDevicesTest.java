package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.chunk.ChunkCache;
import io.strata.core.testing.Fixtures;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/**
 * Devices reading through one shared cache (the daemon's exports) read the same bytes as a device
 * with a cache of its own, on every read path (loads, and hits pinned without loading), each
 * counting its own hits and misses; closing one frees its chunks and leaves the other's.
 */
class SharedCacheDevicesTest {
    private static ByteBuffer readAll(BlockDevice d) throws Exception {
        ByteBuffer all = ByteBuffer.allocateDirect((int) d.size());
        for (long off = 0; off < d.size(); off += 4096) { // 4 KiB reads: each chunk is read several times, hits after its load
            ByteBuffer b = all.slice((int) off, 4096);
            d.read(off, b);
        }
        return all;
    }

    @Test
    void devicesSharingACacheReadTheirOwnBytes() throws Exception {
        ByteBuffer expected;
        try (FlatDevice alone = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()), FlatDeviceOptions.defaults())) {
            expected = readAll(alone);
        }
        try (ChunkCache shared = new ChunkCache(64L << 20, 1 << 20)) {
            FlatDevice a = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()), FlatDeviceOptions.defaults(), shared);
            try (FlatDevice b = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()), FlatDeviceOptions.defaults(), shared)) {
                assertEquals(expected, readAll(a));
                assertEquals(expected, readAll(b), "the second device's blobs are its own entries in the shared cache, not the first's");
                assertEquals(expected, readAll(b));
                assertEquals(2, a.cacheStats().misses(), "the fixture's two chunks, loaded once for a");
                assertEquals(2, b.cacheStats().misses(), "and once for b");
                assertTrue(b.cacheStats().hits() > a.cacheStats().hits(), "b read twice: " + b.cacheStats() + " vs " + a.cacheStats());
                assertEquals(4, shared.stats().misses());
                a.close();
                assertEquals(0, a.cacheResidentBytes());
                assertTrue(b.cacheResidentBytes() > 0);
                assertEquals(b.cacheResidentBytes(), shared.stats().residentBytes(), "a's slots are freed");
                assertEquals(expected, readAll(b));
            }
            assertEquals(0, shared.stats().residentBytes());
        }
    }
}
