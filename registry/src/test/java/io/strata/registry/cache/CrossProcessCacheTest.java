package io.strata.registry.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.testing.TestDevices;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cache shared with other processes, each a real JVM ({@link CacheChild}): one killed with
 * SIGKILL while it fills the cache, two reading the same blobs at once. Every byte read afterwards
 * is checked (and every chunk's digest, by the chunk store).
 */
class CrossProcessCacheTest {
    private static final int CHUNK = 64 << 10;

    @TempDir
    Path tmp;

    private SyntheticImage.Written image() throws IOException {
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(new Random(21), 40, CHUNK, Compression.ZSTD, DigestAlgorithm.BLAKE3),
                SyntheticImage.uniformBlob(new Random(22), 40, CHUNK, Compression.NONE, DigestAlgorithm.BLAKE3)));
        Files.write(tmp.resolve("expected"), w.expectedDevice());
        return w;
    }

    private ChildJvm reader(String name, Path cache, SyntheticImage.Written w, int delayMs, long seed) throws IOException {
        return new ChildJvm(tmp.resolve(name + ".log"), "read", cache.toString(), w.bootstrap().toString(),
                w.blobDir().toString(), tmp.resolve("expected").toString(), Integer.toString(delayMs), Long.toString(seed));
    }

    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    @Test
    void killedWhileFillingLeavesNoWrongByteAndTheTornChunksAreFetchedAgain() throws Exception {
        SyntheticImage.Written w = image();
        Path cache = tmp.resolve("cache");
        try (ChildJvm child = reader("filler", cache, w, 60, 0)) {
            child.awaitLine(l -> l.equals("progress 12"), 90);
            child.kill();
            assertTrue(child.output().stream().noneMatch(l -> l.startsWith("done")), "killed before it finished");
        }

        // What the kill left: some chunks present, some not. The ones not present may hold anything
        // (a write cut short): fill their bytes with garbage, as a torn write could.
        FileBlobStore store = new FileBlobStore(w.blobDir());
        RemoteBlobSource after = new RemoteBlobSource(new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED), store,
                "store");
        long missingBytes = 0;
        int present = 0;
        int total = 0;
        Random garbage = new Random(5);
        for (int b = 0; b < 2; b++) {
            try (RemoteBlob rb = after.open(w.blobIds().get(b), TestDevices.rangesOf(w.chunks().get(b)));
                 FileChannel data = FileChannel.open(rb.cacheFile().dataPath(), StandardOpenOption.WRITE)) {
                ChunkRanges r = rb.cacheFile().ranges();
                for (int i = 0; i < r.count(); i++) {
                    total++;
                    if (rb.cacheFile().isPresent(i)) {
                        present++;
                    } else {
                        missingBytes += r.length(i);
                        byte[] junk = new byte[r.length(i) / 2 + 1];
                        garbage.nextBytes(junk);
                        data.write(ByteBuffer.wrap(junk), r.offset(i));
                    }
                }
            }
        }
        assertTrue(present > 0 && present < total, "the kill came mid-fill: " + present + " of " + total + " chunks present");

        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), after, FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev));
        }
        assertEquals(missingBytes, store.bytesServed(), "exactly the chunks that were not present were fetched again");
        assertEquals(0, after.counters().discarded(), "no chunk marked present failed its digest");
        assertEquals(total - present, after.counters().misses(), "chunks fetched: the ones not present");
    }

    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    @Test
    void twoProcessesReadingOneCacheAtOnceBothReadEveryByteRight() throws Exception {
        SyntheticImage.Written w = image();
        Path cache = tmp.resolve("cache");
        try (ChildJvm a = reader("a", cache, w, 15, 0); ChildJvm b = reader("b", cache, w, 15, 77)) {
            assertEquals(0, a.await(120), "a: " + a.output() + "\n" + a.logText());
            assertEquals(0, b.await(120), "b: " + b.output() + "\n" + b.logText());
            assertTrue(a.output().stream().anyMatch(l -> l.startsWith("done")) && b.output().stream().anyMatch(l -> l.startsWith("done")));
        }
        // The map is consistent afterwards: every chunk present, its bytes right, its size counted.
        FileBlobStore store = new FileBlobStore(w.blobDir()).failing(true);
        RemoteBlobSource after = new RemoteBlobSource(new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED), store, "store");
        for (int b = 0; b < 2; b++) {
            try (RemoteBlob rb = after.open(w.blobIds().get(b), TestDevices.rangesOf(w.chunks().get(b)))) {
                assertEquals(w.chunks().get(b).size(), rb.cacheFile().presentCount());
                assertEquals(w.chunks().get(b).stream().mapToLong(ChunkInfo::compressedSize).sum(), rb.cacheFile().cachedBytes());
                assertTrue(rb.localFile().isPresent());
            }
        }
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), after, FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev));
        }
        assertEquals(0, after.counters().discarded());
    }
}
