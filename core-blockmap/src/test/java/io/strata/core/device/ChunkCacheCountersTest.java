package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.chunk.CacheStats;
import io.strata.core.chunk.LoadStats;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The counters the metrics report for a device's chunk cache: reads inside one chunk each look it up
 * once, so the first is a miss (a load) and every later one a hit: hits + misses equal the reads;
 * loads are the misses, and their decompress and digest time is counted (zstd + BLAKE3, lz4 + SHA-256).
 */
class ChunkCacheCountersTest {
    @TempDir
    Path tmp;

    @Test
    void hitsAndMissesAddUpToTheReadsAndLoadsAreTimed() throws Exception {
        Random r = new Random(17);
        SyntheticImage.Written image = SyntheticImage.write(tmp, List.of(
                SyntheticImage.uniformBlob(r, 2, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3),
                SyntheticImage.uniformBlob(r, 2, 65536, Compression.LZ4_BLOCK, DigestAlgorithm.SHA256)));
        try (FlatDevice dev = FlatDevice.open(image.bootstrap(), new LocalBlobDirectory(image.blobDir()), FlatDeviceOptions.defaults())) {
            int reads = 0;
            for (int blob = 0; blob < 2; blob++) {
                long chunkStart = image.blobOffsets().get(blob); // each blob's first chunk
                for (int i = 0; i < 16; i++) {
                    long at = chunkStart + i * 4096L;
                    ByteBuffer b = ByteBuffer.allocate(4096);
                    dev.read(at, b);
                    assertArrayEquals(Arrays.copyOfRange(image.expectedDevice(), (int) at, (int) at + 4096), b.array());
                    reads++;
                }
            }
            CacheStats s = dev.cacheStats();
            assertEquals(2, s.misses(), s.toString());
            assertEquals(reads - 2, s.hits(), s.toString());
            assertEquals(reads, s.hits() + s.misses() + s.waits());
            assertEquals(2 * 65536L, s.bytesDecompressed());
            LoadStats l = dev.loadStats();
            assertEquals(2, l.loads());
            assertEquals(0, l.corrupt());
            assertTrue(l.decompressNanos() > 0 && l.digestNanos() > 0 && l.readNanos() > 0, l.toString());
        }
    }

    /**
     * A stored (uncompressed) chunk is loaded once to check its digest and then read straight from
     * its file: those reads are hits too, through either read path (resolve, as vhost-user and
     * export read; pin, as NBD does, with and without loading). They were counted as nothing, so
     * an image of incompressible data showed a hit ratio of 0 however often it was read.
     */
    @Test
    void readsOfAVerifiedStoredChunkAreHits() throws Exception {
        SyntheticImage.Written image = SyntheticImage.write(tmp, List.of(
                SyntheticImage.uniformBlob(new Random(18), 2, 65536, Compression.NONE, DigestAlgorithm.SHA256)));
        try (FlatDevice dev = FlatDevice.open(image.bootstrap(), new LocalBlobDirectory(image.blobDir()), FlatDeviceOptions.defaults())) {
            long chunkStart = image.blobOffsets().get(0);
            for (int i = 0; i < 8; i++) {
                long at = chunkStart + i * 4096L;
                ByteBuffer b = ByteBuffer.allocate(4096);
                dev.read(at, b);
                assertArrayEquals(Arrays.copyOfRange(image.expectedDevice(), (int) at, (int) at + 4096), b.array());
            }
            PinnedRange range = new PinnedRange();
            try {
                for (boolean mayLoad : new boolean[] {false, true}) {
                    for (int i = 8; i < 12; i++) {
                        assertEquals(PinOutcome.PINNED, dev.pin(chunkStart + i * 4096L, 4096, range, mayLoad));
                        range.release();
                    }
                }
            } finally {
                range.release();
            }
            CacheStats s = dev.cacheStats();
            assertEquals(1, s.misses(), s.toString());
            assertEquals(8 + 8 - 1, s.hits(), "one hit per later read: " + s);
        }
    }
}
