package io.strata.registry.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.testing.TestDevices;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --cache-max}: whole blobs that no process uses go, least recently used first; a blob in use
 * by another process (a real JVM holding it open) or by this one stays, even when it is the oldest.
 */
class CacheEvictionTest {
    private static final int CHUNK = 64 << 10;

    @TempDir
    Path tmp;

    private static List<Path> filesOf(Path cache, String blobId) throws IOException {
        try (Stream<Path> s = Files.list(cache)) {
            return s.filter(p -> p.getFileName().toString().startsWith(blobId + ".")).toList();
        }
    }

    /** Sets the last-used time a blob's maps record (this process does not have them open). */
    private static void lastUsed(Path cache, String blobId, long hoursAgo) throws IOException {
        long at = System.currentTimeMillis() - TimeUnit.HOURS.toMillis(hoursAgo);
        for (Path p : filesOf(cache, blobId)) {
            if (p.toString().endsWith(".map")) {
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                    ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, at), CachedBlobFile.LAST_USED_OFF);
                }
            }
        }
    }

    interface Work {
        void run() throws Exception;
    }

    /** What {@code work} logs (slf4j-simple writes to System.err, looked up at each line). */
    static String capturingStandardError(Work work) throws Exception {
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            work.run();
        } finally {
            System.setErr(original);
        }
        return captured.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    @Test
    void evictsTheLeastRecentlyUsedBlobThatNoProcessUses() throws Exception {
        List<SyntheticImage.Written> images = new ArrayList<>();
        for (int k = 0; k < 3; k++) {
            images.add(SyntheticImage.write(tmp.resolve("img" + k), List.of(
                    SyntheticImage.uniformBlob(new Random(30 + k), 8, CHUNK, Compression.NONE, DigestAlgorithm.BLAKE3))));
        }
        Path cache = tmp.resolve("cache");
        for (SyntheticImage.Written w : images) {
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), new RemoteBlobSource(new BlobCacheDirectory(cache,
                    BlobCacheDirectory.UNBOUNDED), new FileBlobStore(w.blobDir()), "store"), FlatDeviceOptions.defaults())) {
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev));
            }
        }
        long blobBytes = images.get(0).chunks().get(0).stream().mapToLong(ChunkInfo::compressedSize).sum();
        String a = images.get(0).blobIds().get(0);
        String b = images.get(1).blobIds().get(0);
        String c = images.get(2).blobIds().get(0);
        assertEquals(3 * blobBytes, new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED).usedBytes());

        SyntheticImage.Written wa = images.get(0);
        try (ChildJvm holder = new ChildJvm(tmp.resolve("holder.log"), "hold", cache.toString(),
                wa.bootstrap().toString(), wa.blobDir().toString())) {
            holder.awaitLine(l -> l.startsWith("holding"), 60);
            // a is the least recently used, then b, then c.
            lastUsed(cache, a, 3);
            lastUsed(cache, b, 2);
            lastUsed(cache, c, 1);

            BlobCacheDirectory bounded = new BlobCacheDirectory(cache, 2 * blobBytes + blobBytes / 2);
            assertEquals(List.of(b), bounded.evictIfOverBound(), "a is in use by another process: b goes");
            assertTrue(filesOf(cache, b).isEmpty());
            assertEquals(2, filesOf(cache, a).size());
            assertEquals(2, filesOf(cache, c).size());

            // c in use here, a there: nothing may go, however small the bound.
            BlobCacheDirectory tiny = new BlobCacheDirectory(cache, 1);
            RemoteBlobSource here = new RemoteBlobSource(tiny, new FileBlobStore(images.get(2).blobDir()), "store");
            FlatDevice[] opened = new FlatDevice[1];
            // It says so once, at the open, not at every check (a check comes about every MiB stored).
            String said = capturingStandardError(() -> {
                opened[0] = FlatDevice.open(images.get(2).bootstrap(), here, FlatDeviceOptions.defaults());
                for (int i = 0; i < 5; i++) {
                    assertEquals(List.of(), tiny.evictIfOverBound());
                }
            });
            assertEquals(1, said.lines().filter(l -> l.contains("over its bound of 1: the rest is in use")).count(), said);
            try (FlatDevice dev = opened[0]) {
                assertEquals(2, filesOf(cache, a).size());
                assertEquals(2, filesOf(cache, c).size());

                holder.closeInput();
                assertEquals(0, holder.await(60), holder.logText());
                assertEquals(List.of(a), tiny.evictIfOverBound(), "a is no longer in use");
                assertTrue(filesOf(cache, a).isEmpty());
                assertArrayEquals(images.get(2).expectedDevice(), TestDevices.readAll(dev), "c still reads");
            }
            assertFalse(filesOf(cache, c).isEmpty());
        }

        // An evicted blob is simply fetched again.
        SyntheticImage.Written wb = images.get(1);
        FileBlobStore store = new FileBlobStore(wb.blobDir());
        try (FlatDevice dev = FlatDevice.open(wb.bootstrap(), new RemoteBlobSource(new BlobCacheDirectory(cache,
                BlobCacheDirectory.UNBOUNDED), store, "store"), FlatDeviceOptions.defaults())) {
            assertArrayEquals(wb.expectedDevice(), TestDevices.readAll(dev));
        }
        assertEquals(blobBytes, store.bytesServed());
    }

    @Test
    void fillingPastTheBoundEvictsOlderBlobsOnTheWay() throws IOException {
        List<SyntheticImage.Written> images = new ArrayList<>();
        for (int k = 0; k < 4; k++) {
            images.add(SyntheticImage.write(tmp.resolve("img" + k), List.of(
                    SyntheticImage.uniformBlob(new Random(40 + k), 32, CHUNK, Compression.NONE, DigestAlgorithm.BLAKE3))));
        }
        Path cache = tmp.resolve("cache");
        long blobBytes = 32L * CHUNK;
        for (SyntheticImage.Written w : images) {
            BlobCacheDirectory bounded = new BlobCacheDirectory(cache, 2 * blobBytes + blobBytes / 2);
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), new RemoteBlobSource(bounded,
                    new FileBlobStore(w.blobDir()), "store"), FlatDeviceOptions.defaults())) {
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev));
            }
            assertTrue(bounded.usedBytes() <= 3 * blobBytes, "bounded while filling: " + bounded.usedBytes());
        }
        BlobCacheDirectory bounded = new BlobCacheDirectory(cache, 2 * blobBytes + blobBytes / 2);
        bounded.evictIfOverBound();
        assertTrue(bounded.usedBytes() <= 2 * blobBytes + blobBytes / 2, "under the bound: " + bounded.usedBytes());
        assertFalse(filesOf(cache, images.get(3).blobIds().get(0)).isEmpty(), "the newest blob stays");
        assertTrue(filesOf(cache, images.get(0).blobIds().get(0)).isEmpty(), "the oldest blob went");
    }
}
