package io.strata.core.chunk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.SyntheticImage;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A server starts threads per connection and they end with it. Each thread's loads must not leave a
 * workspace (staging buffer, digest array, decompressor) behind: one thread after another loading
 * chunks must end with one workspace, not one per thread (bench/soak.sh found a server's memory
 * growing by tens of MB with every whole-device copy).
 */
class ChunkStoreWorkspaceTest {
    @TempDir
    Path tmp;

    @Test
    void threadsThatLoadOneAfterAnotherShareOneWorkspace() throws Exception {
        int chunkSize = 65536;
        int threads = 12;
        SyntheticImage.Written w = SyntheticImage.write(tmp, List.of(
                SyntheticImage.uniformBlob(new Random(3), threads, chunkSize, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        try (ChunkStore store = ChunkStore.open(RafsImage.open(w.bootstrap()), new LocalBlobDirectory(w.blobDir()),
                4L * chunkSize)) {
            for (int i = 0; i < threads; i++) {
                int chunk = i;
                AtomicReference<Throwable> failure = new AtomicReference<>();
                byte[] got = new byte[chunkSize];
                Thread t = new Thread(() -> {
                    try {
                        ChunkCache.Entry e = store.acquire(0, chunk);
                        try {
                            e.buffer().view().get(0, got);
                        } finally {
                            store.release(e);
                        }
                    } catch (Throwable ex) {
                        failure.set(ex);
                    }
                }, "loader-" + i);
                t.start();
                t.join(30_000);
                assertTrue(!t.isAlive() && failure.get() == null, "load of chunk " + chunk + " failed: " + failure.get());
                long at = w.blobOffsets().get(0) + (long) chunk * chunkSize;
                assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + chunkSize), got,
                        "chunk " + chunk);
            }
            assertEquals(threads, store.stats().misses(), "every thread loaded its own chunk");
            assertEquals(1, store.workspaceCount(), "workspaces left by threads that ended");
        }
    }
}
