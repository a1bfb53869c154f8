package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Many threads, random ranges, a cache far smaller than the data: every byte must still be right. */
class ConcurrentReadTest {
    @TempDir
    Path tmp;

    @Test
    void manyThreadsReadExactlyTheComposedBytes() throws Exception {
        Random r = new Random(7);
        List<SyntheticImage.Blob> blobs = List.of(
                SyntheticImage.uniformBlob(r, 24, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3),
                SyntheticImage.uniformBlob(r, 24, 65536, Compression.LZ4_BLOCK, DigestAlgorithm.SHA256),
                SyntheticImage.uniformBlob(r, 24, 65536, Compression.NONE, DigestAlgorithm.SHA256));
        SyntheticImage.Written w = SyntheticImage.write(tmp, blobs);
        byte[] expected = w.expectedDevice();
        int threads = 16;
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), new LocalBlobDirectory(w.blobDir()),
                FlatDeviceOptions.defaults().withCacheBytes(6 * 65536))) {
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                long seed = t;
                results.add(pool.submit(() -> {
                    Random rr = new Random(seed);
                    int reads = 0;
                    for (int i = 0; i < 400; i++) {
                        int len = 1 + rr.nextInt(rr.nextBoolean() ? 4096 : 200_000);
                        long off = (long) (rr.nextDouble() * (dev.size() - len));
                        ByteBuffer buf = ByteBuffer.allocate(len);
                        dev.read(off, buf);
                        assertArrayEquals(Arrays.copyOfRange(expected, (int) off, (int) off + len), buf.array(),
                                "read " + off + "+" + len);
                        reads++;
                    }
                    return reads;
                }));
            }
            int total = 0;
            for (Future<Integer> f : results) {
                total += f.get();
            }
            pool.shutdown();
            var stats = dev.cacheStats();
            assertTrue(total == threads * 400 && stats.evictions() > 0, "the small cache must have evicted: " + stats);
            assertTrue(stats.residentBytes() <= stats.capacityBytes(), stats.toString());
        }
    }
}
