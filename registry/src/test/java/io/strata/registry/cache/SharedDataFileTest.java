package io.strata.registry.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.testing.TestDevices;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One blob's data file is shared by every layout (image) and process using the blob, and a reader
 * that checked a stored chunk from it serves it zero-copy from then on: no other reader's fetch may
 * replace bytes there with other ones unless it found the file's own bytes bad.
 */
class SharedDataFileTest {
    @TempDir
    Path tmp;

    private SyntheticImage.Written storedImage() throws Exception {
        return SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(new Random(1), 16, 64 << 10, Compression.NONE, DigestAlgorithm.BLAKE3)));
    }

    @Test
    void anotherLayoutsWrongFetchDoesNotReplaceCheckedBytes() throws Exception {
        SyntheticImage.Written w = storedImage();
        String id = w.blobIds().get(0);
        ChunkInfo victim = w.chunks().get(0).get(5);
        Path cacheDir = tmp.resolve("cache");
        RemoteBlobSource a = new RemoteBlobSource(new BlobCacheDirectory(cacheDir, BlobCacheDirectory.UNBOUNDED),
                new FileBlobStore(w.blobDir()), "good");
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), a, FlatDeviceOptions.defaults())) {
            // Fetched, then (complete) checked from the data file, then served from it unchecked.
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
            }
            // Another image uses one chunk of the blob (another layout, its own map) and its registry
            // answers that chunk wrongly: the fetch serves only that read, the file keeps its bytes.
            FileBlobStore bad = new FileBlobStore(w.blobDir()).corrupt(id, victim.compressedOffset() + 10);
            RemoteBlobSource b = new RemoteBlobSource(new BlobCacheDirectory(cacheDir, BlobCacheDirectory.UNBOUNDED), bad, "bad");
            ChunkRanges subset = ChunkRanges.of(new long[] {victim.compressedOffset()}, new int[] {(int) victim.compressedSize()});
            try (RemoteBlob rb = b.open(id, subset)) {
                ByteBuffer fetched = ByteBuffer.allocate((int) victim.compressedSize());
                rb.readFully(fetched, victim.compressedOffset());
                assertFalse(rb.cacheFile().isPresent(0), "the wrong copy is not taken as the chunk");
            }
            long at = w.blobOffsets().get(0) + victim.uncompressedOffset();
            ByteBuffer got = ByteBuffer.allocate(64 << 10);
            dev.read(at, got);
            assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + (64 << 10)), got.array(),
                    "the first image still serves the bytes it checked");
        }
    }

    @Test
    void onlyBytesTheFileHoldsAreDropped() throws Exception {
        SyntheticImage.Written w = storedImage();
        String id = w.blobIds().get(0);
        List<ChunkInfo> chunks = w.chunks().get(0);
        long[] offsets = chunks.stream().mapToLong(ChunkInfo::compressedOffset).toArray();
        int[] lengths = chunks.stream().mapToInt(c -> (int) c.compressedSize()).toArray();
        ChunkInfo c3 = chunks.get(3);
        byte[] blob = Files.readAllBytes(w.blobDir().resolve(id));
        RemoteBlobSource source = new RemoteBlobSource(new BlobCacheDirectory(tmp.resolve("cache"), BlobCacheDirectory.UNBOUNDED),
                new FileBlobStore(w.blobDir()), "good");
        try (RemoteBlob rb = source.open(id, ChunkRanges.of(offsets, lengths))) {
            rb.readFully(ByteBuffer.allocate(blob.length), 0);
            assertTrue(rb.cacheFile().isPresent(3));
            int from = (int) c3.compressedOffset();
            int to = from + (int) c3.compressedSize();
            // Bytes that failed in a reader but are not the file's (a fetch of this process that was
            // not kept; another process's copy is in the file): the file's copy stays.
            byte[] other = Arrays.copyOfRange(blob, from, to);
            other[7] ^= 1;
            assertTrue(rb.discard(from, ByteBuffer.wrap(other)), "read again: other bytes may come");
            assertTrue(rb.cacheFile().isPresent(3), "the file's copy is not dropped for bytes it does not hold");
            // The file's own bytes failed: dropped, and the next fetch may overwrite them.
            assertTrue(rb.discard(from, ByteBuffer.wrap(Arrays.copyOfRange(blob, from, to))));
            assertFalse(rb.cacheFile().isPresent(3));
            ByteBuffer again = ByteBuffer.allocate(to - from);
            rb.readFully(again, from);
            assertArrayEquals(Arrays.copyOfRange(blob, from, to), again.array());
            assertTrue(rb.cacheFile().isPresent(3), "fetched and kept again");
        }
    }

    @Test
    void aWrongCopyTheFileHoldsIsReplacedOnceARightOneComes() throws Exception {
        SyntheticImage.Written w = storedImage();
        String id = w.blobIds().get(0);
        ChunkInfo victim = w.chunks().get(0).get(9);
        FileBlobStore registry = new FileBlobStore(w.blobDir()).corrupt(id, victim.compressedOffset() + 3);
        RemoteBlobSource source = new RemoteBlobSource(new BlobCacheDirectory(tmp.resolve("cache"), BlobCacheDirectory.UNBOUNDED),
                registry, "wrong, then right");
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source, FlatDeviceOptions.defaults())) {
            long at = w.blobOffsets().get(0) + victim.uncompressedOffset();
            // The wrong answer is kept (the file had nothing there), fails its check, is dropped and
            // fetched again, wrong again: that read fails.
            assertThrows(java.io.IOException.class, () -> dev.read(at, ByteBuffer.allocate(64 << 10)));
            // The registry answers right now: the file's bad copy, found bad here, is replaced.
            registry.corrupt(null, 0);
            ByteBuffer got = ByteBuffer.allocate(64 << 10);
            dev.read(at, got);
            assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + (64 << 10)), got.array());
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
        }
        byte[] cached = Files.readAllBytes(tmp.resolve("cache").resolve(CachedBlobFile.dataName(id)));
        byte[] blob = Files.readAllBytes(w.blobDir().resolve(id));
        int from = (int) victim.compressedOffset();
        assertArrayEquals(Arrays.copyOfRange(blob, from, from + (int) victim.compressedSize()),
                Arrays.copyOfRange(cached, from, from + (int) victim.compressedSize()), "the cache file holds the right bytes");
    }

    /**
     * The map cut short under a running reader (truncate -s 0): the kernel answers a touch of its
     * lost pages with SIGBUS, which the JVM raises as InternalError, in compiled code at the next
     * safepoint rather than at the access. Whatever it surfaces in, no read gets wrong bytes, reads go
     * on (the blob trusts no bit once it has seen the fault, and fetches), closing frees every blob
     * (ChunkStore.close stopped at the first blob that threw), and the blob opened again is whole.
     */
    @Test
    void aMapCutShortUnderAReaderNeverGivesWrongBytes() throws Exception {
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(new Random(2), 32, 64 << 10, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        Path cacheDir = tmp.resolve("cache");
        FileBlobStore registry = new FileBlobStore(w.blobDir());
        RemoteBlobSource source = new RemoteBlobSource(new BlobCacheDirectory(cacheDir, BlobCacheDirectory.UNBOUNDED), registry, "good");
        FlatDevice dev = FlatDevice.open(w.bootstrap(), source, FlatDeviceOptions.defaults());
        int right = 0;
        try {
            long base = w.blobOffsets().get(0);
            dev.read(base, ByteBuffer.allocate(4096));
            Path map;
            try (java.util.stream.Stream<Path> s = Files.walk(cacheDir)) {
                map = s.filter(p -> p.toString().endsWith(".map")).findFirst().orElseThrow();
            }
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(map, java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(0);
            }
            for (int k = 1; k < 8; k++) {
                long at = base + k * 4L * (64 << 10);
                ByteBuffer got = ByteBuffer.allocate(4096);
                try {
                    dev.read(at, got);
                } catch (java.io.IOException | InternalError failed) {
                    continue; // an error for that read is allowed; wrong bytes are not
                }
                assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + 4096), got.array());
                right++;
            }
        } finally {
            try {
                dev.close();
            } catch (java.io.IOException | InternalError e) {
                // the fault may surface here; every blob is closed all the same
            }
        }
        assertTrue(right >= 6, "reads go on once the fault is seen: " + right + " of 7 right");
        // Opened again (its in-use lock was released), the map is checked and made anew.
        RemoteBlobSource again = new RemoteBlobSource(new BlobCacheDirectory(cacheDir, BlobCacheDirectory.UNBOUNDED), registry, "good");
        try (FlatDevice d = FlatDevice.open(w.bootstrap(), again, FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(d, 128 << 10));
        }
    }
}
