package io.strata.registry.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.chunk.ChunkCorruptedException;
import io.strata.core.buffer.NativeBuffer;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.device.SegmentSink;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.testing.TestDevices;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Remote blobs through the persistent cache, against real blob files served by {@link FileBlobStore}
 * and real cache files: reads equal the blob, misses are merged into whole-chunk requests, a warm
 * cache serves everything with the store down, bad bytes fail their read and are not kept.
 */
class RemoteBlobTest {
    private static final int CHUNK = 64 << 10;

    @TempDir
    Path tmp;

    private SyntheticImage.Written image(String name, Compression c, int chunks, long seed) throws IOException {
        return SyntheticImage.write(tmp.resolve(name), List.of(
                SyntheticImage.uniformBlob(new Random(seed), chunks, CHUNK, c, DigestAlgorithm.BLAKE3)));
    }

    private RemoteBlobSource source(Path cacheDir, FileBlobStore store, FetchPolicy policy) throws IOException {
        return new RemoteBlobSource(new BlobCacheDirectory(cacheDir, BlobCacheDirectory.UNBOUNDED), store, "test store", policy);
    }

    @Test
    void readsThroughTheCacheEqualTheBlobAndTheDevice() throws IOException {
        SyntheticImage.Written w = image("zstd", Compression.ZSTD, 24, 1);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        FileBlobStore store = new FileBlobStore(w.blobDir());
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        try (RemoteBlob rb = source.open(w.blobIds().get(0), TestDevices.rangesOf(w.chunks().get(0)))) {
            assertEquals(blob.length, rb.size());
            Random r = new Random(7);
            for (int k = 0; k < 200; k++) {
                int at = r.nextInt(blob.length);
                int n = 1 + r.nextInt(Math.min(200_000, blob.length - at));
                ByteBuffer dst = ByteBuffer.allocateDirect(n + 10);
                dst.position(5).limit(5 + n);
                rb.readFully(dst, at);
                assertEquals(5 + n, dst.position());
                byte[] got = new byte[n];
                dst.get(5, got);
                assertArrayEquals(Arrays.copyOfRange(blob, at, at + n), got, "read of " + n + " at " + at);
            }
            assertTrue(source.counters().hits() > 0, source.counters().toString());
        }
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source(tmp.resolve("cache2"), store, FetchPolicy.defaults()),
                FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
        }
    }

    @Test
    void adjacentMissingChunksAreFetchedInCeilTotalOverLimitRequestsOfWholeChunks() throws IOException {
        // Stored chunks: 64 of 64 KiB = 4 MiB, exactly whole multiples of each limit.
        SyntheticImage.Written w = image("none", Compression.NONE, 64, 2);
        List<ChunkInfo> chunks = w.chunks().get(0);
        long total = chunks.stream().mapToLong(ChunkInfo::compressedSize).sum();
        for (int limit : new int[] {128 << 10, 1 << 20, 3 << 20}) {
            FileBlobStore store = new FileBlobStore(w.blobDir());
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source(tmp.resolve("cache-" + limit), store,
                    new FetchPolicy(limit, FetchPolicy.DEFAULT_MAX_GAP)), FlatDeviceOptions.defaults())) {
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
            }
            List<FileBlobStore.Request> requests = store.requests();
            assertEquals((total + limit - 1) / limit, requests.size(), "limit " + limit + ": " + requests);
            long fetched = 0;
            for (FileBlobStore.Request q : requests) {
                assertTrue(q.length() <= limit, "request over the limit: " + q);
                assertTrue(startsAChunk(chunks, q.position()) && endsAChunk(chunks, q.position() + q.length()),
                        "a request that cuts a chunk: " + q);
                fetched += q.length();
            }
            assertEquals(total, fetched, "every byte fetched once");
        }
    }

    @Test
    void compressedChunksOfVaryingSizesAreFetchedWholeWithinTheLimit() throws IOException {
        SyntheticImage.Written w = image("zstd-merge", Compression.ZSTD, 96, 3);
        List<ChunkInfo> chunks = w.chunks().get(0);
        FileBlobStore store = new FileBlobStore(w.blobDir());
        int limit = 128 << 10;
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source(tmp.resolve("cache"), store,
                new FetchPolicy(limit, 0)), FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
        }
        long total = chunks.stream().mapToLong(ChunkInfo::compressedSize).sum();
        List<FileBlobStore.Request> requests = store.requests();
        assertTrue(requests.size() < chunks.size() / 2, "misses were not merged: " + requests.size() + " requests");
        assertTrue(requests.size() <= 2 * ((total + limit - 1) / limit), requests.size() + " requests for " + total + " bytes");
        for (FileBlobStore.Request q : requests) {
            assertTrue(q.length() <= limit && startsAChunk(chunks, q.position())
                    && endsAChunk(chunks, q.position() + q.length()), "bad request " + q);
        }
    }

    private static boolean startsAChunk(List<ChunkInfo> chunks, long at) {
        return chunks.stream().anyMatch(c -> c.compressedOffset() == at);
    }

    private static boolean endsAChunk(List<ChunkInfo> chunks, long at) {
        return chunks.stream().anyMatch(c -> c.compressedOffset() + c.compressedSize() == at);
    }

    @Test
    void aMissMergesForwardThenBackwardAndStopsAtPresentChunks() throws IOException {
        SyntheticImage.Written w = image("dirs", Compression.NONE, 40, 4);
        FileBlobStore store = new FileBlobStore(w.blobDir());
        int limit = 128 << 10; // two chunks per request
        RemoteBlobSource source = source(tmp.resolve("cache"), store, new FetchPolicy(limit, 0));
        try (RemoteBlob rb = source.open(w.blobIds().get(0), TestDevices.rangesOf(w.chunks().get(0)))) {
            rb.readFully(ByteBuffer.allocate(10), 10L * CHUNK + 5);
            assertEquals(List.of(new FileBlobStore.Request(w.blobIds().get(0), 10L * CHUNK, 2 * CHUNK)), store.requests(),
                    "forward first: chunks 10 and 11");
            store.clearRequests();
            rb.readFully(ByteBuffer.allocate(10), 39L * CHUNK);
            assertEquals(List.of(new FileBlobStore.Request(w.blobIds().get(0), 38L * CHUNK, 2 * CHUNK)), store.requests(),
                    "nothing after the last chunk: backward, chunks 38 and 39");
            store.clearRequests();
            rb.readFully(ByteBuffer.allocate(10), 9L * CHUNK);
            assertEquals(List.of(new FileBlobStore.Request(w.blobIds().get(0), 8L * CHUNK, 2 * CHUNK)), store.requests(),
                    "chunk 10 is present: backward, chunks 8 and 9");
            assertTrue(rb.cacheFile().isPresent(8) && rb.cacheFile().isPresent(11) && !rb.cacheFile().isPresent(12));
        }
    }

    @Test
    void smallGapsAreBridgedAndLargeOnesAreNot() throws IOException {
        // A raw 1 MiB blob whose chunks (16 KiB) leave gaps: 4 KiB after chunks 0-2, 64 KiB after chunk 3.
        byte[] blob = SyntheticImage.content(new Random(5), 1 << 20);
        Path dir = Files.createDirectories(tmp.resolve("raw"));
        String id = "ab".repeat(32);
        Files.write(dir.resolve(id), blob);
        long[] offsets = {0, 20 << 10, 40 << 10, 60 << 10, 140 << 10, 160 << 10};
        int[] lengths = new int[offsets.length];
        Arrays.fill(lengths, 16 << 10);
        FileBlobStore store = new FileBlobStore(dir);
        RemoteBlobSource source = source(tmp.resolve("cache"), store, new FetchPolicy(1 << 20, 8 << 10));
        try (RemoteBlob rb = source.open(id, ChunkRanges.of(offsets, lengths))) {
            ByteBuffer b = ByteBuffer.allocate(100);
            rb.readFully(b, 5);
            assertEquals(List.of(new FileBlobStore.Request(id, 0, (60 + 16) << 10)), store.requests(),
                    "chunks 0-3 over 4 KiB gaps in one request, not past the 64 KiB gap");
            assertArrayEquals(Arrays.copyOfRange(blob, 5, 105), b.array());
            store.clearRequests();
            // Bytes no chunk names are fetched as asked and not cached.
            b.clear();
            rb.readFully(b, (90 << 10) + 3);
            assertArrayEquals(Arrays.copyOfRange(blob, (90 << 10) + 3, (90 << 10) + 103), b.array());
            assertEquals(List.of(new FileBlobStore.Request(id, (90 << 10) + 3, 100)), store.requests());
        }
    }

    @Test
    void concurrentMissesOfOneChunkFetchItOnce() throws Exception {
        SyntheticImage.Written w = image("flight", Compression.NONE, 8, 6);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        FileBlobStore store = new FileBlobStore(w.blobDir()).delay(300);
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        int threads = 8;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try (RemoteBlob rb = source.open(w.blobIds().get(0), TestDevices.rangesOf(w.chunks().get(0)))) {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<byte[]>> reads = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int at = 3 * CHUNK + t * 100;
                reads.add(pool.submit(() -> {
                    go.await();
                    ByteBuffer b = ByteBuffer.allocate(1000);
                    rb.readFully(b, at);
                    return b.array();
                }));
            }
            go.countDown();
            for (int t = 0; t < threads; t++) {
                int at = 3 * CHUNK + t * 100;
                assertArrayEquals(Arrays.copyOfRange(blob, at, at + 1000), reads.get(t).get(30, TimeUnit.SECONDS));
            }
            assertEquals(1, store.requests().size(), "one fetch for one chunk: " + store.requests());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aWarmCacheServesEverythingWithTheStoreDownAndACompleteBlobIsALocalFile() throws IOException {
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(new Random(8), 12, CHUNK, Compression.ZSTD, DigestAlgorithm.BLAKE3),
                SyntheticImage.uniformBlob(new Random(9), 12, CHUNK, Compression.NONE, DigestAlgorithm.SHA256)));
        FileBlobStore store = new FileBlobStore(w.blobDir());
        Path cache = tmp.resolve("cache");
        RemoteBlobSource cold = source(cache, store, FetchPolicy.defaults());
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), cold, FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
        }
        assertTrue(cold.counters().fetchRequests() > 0);

        store.failing(true); // the registry is gone; a new process over the same directory
        RemoteBlobSource warm = source(cache, store, FetchPolicy.defaults());
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), warm, FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
        }
        assertEquals(0, warm.counters().fetchRequests());
        assertEquals(24, warm.counters().hits(), warm.counters().toString());
        for (int b = 0; b < 2; b++) {
            try (RemoteBlob rb = warm.open(w.blobIds().get(b), TestDevices.rangesOf(w.chunks().get(b)))) {
                assertTrue(rb.localFile().isPresent(), "a fully cached blob is served from its data file");
                assertEquals(rb.cacheFile().dataPath(), cache.toRealPath().resolve(w.blobIds().get(b) + ".data"));
                byte[] blob = Files.readAllBytes(w.blobPath(b));
                ByteBuffer all = ByteBuffer.allocate(blob.length);
                while (all.hasRemaining()) {
                    rb.localFile().get().channel().read(all, all.position());
                }
                assertArrayEquals(blob, all.array(), "the data file is the blob");
            }
        }
        // Partly cached (one merged request of 128 KiB: 2 of 12 chunks): no file to serve zero-copy.
        RemoteBlobSource other = source(tmp.resolve("cache-partial"), store.failing(false),
                new FetchPolicy(FetchPolicy.MIN_MERGE_LIMIT, FetchPolicy.DEFAULT_MAX_GAP));
        try (RemoteBlob rb = other.open(w.blobIds().get(0), TestDevices.rangesOf(w.chunks().get(0)))) {
            rb.readFully(ByteBuffer.allocate(10), 0);
            assertFalse(rb.localFile().isPresent());
        }
    }

    @Test
    void aBlobCompletedWhileOpenIsThenServedFromItsDataFile() throws IOException {
        SyntheticImage.Written w = image("stored", Compression.NONE, 8, 21);
        RemoteBlobSource cold = source(tmp.resolve("cache"), new FileBlobStore(w.blobDir()), FetchPolicy.defaults());
        // A memory cache of two chunks: a chunk read again is loaded again.
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), cold, FlatDeviceOptions.defaults().withCacheBytes(2 * CHUNK))) {
            FileSegments first = new FileSegments();
            dev.resolve(0, dev.size(), first);
            assertTrue(first.memoryBytes > 0, "the first read loads (and verifies) chunks through the cache");
            // The first read fetched the last chunk: the blob is complete. What it checked were the
            // fetched bytes, not the file's, so each stored chunk is checked once more from the file...
            FileSegments second = new FileSegments();
            dev.resolve(0, dev.size(), second);
            assertTrue(second.memoryBytes > 0, "the chunks are checked from the data file");
            // ...and, once checked there, goes from the cache's data file (sendfile for NBD). Chunks the
            // memory cache still held in that pass are checked from the file in the next.
            FileSegments later = new FileSegments();
            for (int pass = 0; pass < 3 && (pass == 0 || later.memoryBytes > 0); pass++) {
                later = new FileSegments();
                dev.resolve(0, dev.size(), later);
            }
            assertEquals(0, later.memoryBytes, "every chunk byte comes from the data file");
            assertTrue(later.fileBytes >= w.chunks().get(0).stream().mapToLong(ChunkInfo::uncompressedSize).sum());
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 96 << 10));
        }
    }

    /** Counts the bytes a resolve hands over as file regions (the zero-copy path) and as cached memory. */
    private static final class FileSegments implements SegmentSink {
        long fileBytes;
        long memoryBytes;

        @Override
        public void file(io.strata.core.os.OpenFile file, long position, long length) {
            fileBytes += length;
        }

        @Override
        public void memory(NativeBuffer buffer, int offset, int length) {
            memoryBytes += length;
        }

        @Override
        public void zeros(long length) {
        }
    }

    @Test
    void wrongBytesFailTheirReadWithEioAndAreNotKept() throws IOException {
        for (Compression c : List.of(Compression.ZSTD, Compression.NONE)) {
            SyntheticImage.Written w = image("bad-" + c, c, 16, 10);
            String id = w.blobIds().get(0);
            ChunkInfo victim = w.chunks().get(0).get(5);
            FileBlobStore store = new FileBlobStore(w.blobDir())
                    .corrupt(id, victim.compressedOffset() + victim.compressedSize() / 2);
            // Every miss fetches up to 1 MiB (the whole blob here), no readahead: so after the first
            // read every chunk but the dropped one is present, and its refetch is one chunk alone.
            RemoteBlobSource source = source(tmp.resolve("cache-" + c), store,
                    new FetchPolicy(FetchPolicy.DEFAULT_MERGE_LIMIT, FetchPolicy.DEFAULT_MAX_GAP));
            long at = w.blobOffsets().get(0) + victim.uncompressedOffset();
            byte[] expected = Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + CHUNK);
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source, FlatDeviceOptions.defaults())) {
                for (int attempt = 0; attempt < 2; attempt++) {
                    ChunkCorruptedException e = assertThrows(ChunkCorruptedException.class,
                            () -> dev.read(at, ByteBuffer.allocate(CHUNK)), c + " attempt " + attempt);
                    assertTrue(e.getMessage().contains(id) && e.getMessage().contains("test store"), e.getMessage());
                }
                // Each failed read dropped the bad copy and fetched once more (still bad): two drops a read.
                assertEquals(4, source.counters().discarded(), "the bad chunk was dropped after each failed try");
                // The neighbours fetched in the same request were fine and stay.
                long next = w.blobOffsets().get(0) + w.chunks().get(0).get(6).uncompressedOffset();
                ByteBuffer ok = ByteBuffer.allocate(CHUNK);
                dev.read(next, ok);
                assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) next, (int) next + CHUNK), ok.array());

                store.corrupt(null, -1); // the registry is fixed
                store.clearRequests();
                ByteBuffer good = ByteBuffer.allocate(CHUNK);
                dev.read(at, good);
                assertArrayEquals(expected, good.array(), c + ": the next read fetched the chunk again");
                assertEquals(List.of(new FileBlobStore.Request(id, victim.compressedOffset(), (int) victim.compressedSize())),
                        store.requests(), "only the dropped chunk was fetched again");
            }
            // And what the cache kept is right: a new process with the store down reads everything.
            store.failing(true);
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source(tmp.resolve("cache-" + c), store,
                    FetchPolicy.defaults()), FlatDeviceOptions.defaults())) {
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
            }
        }
    }

    @Test
    void aFailingStoreFailsTheReadAndEveryWaiterAndTheNextReadTriesAgain() throws IOException {
        SyntheticImage.Written w = image("down", Compression.ZSTD, 4, 11);
        FileBlobStore store = new FileBlobStore(w.blobDir());
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source, FlatDeviceOptions.defaults())) {
            store.failing(true);
            long at = w.blobOffsets().get(0);
            IOException e = assertThrows(IOException.class, () -> dev.read(at, ByteBuffer.allocate(4096)));
            assertTrue(e.getMessage().contains("down"), e.getMessage());
            store.failing(false);
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, 128 << 10));
        }
    }

    @Test
    void fetchIfMissingFillsABlobForPrefetchAndSkipsPresentChunks() throws IOException {
        SyntheticImage.Written w = image("prefetch", Compression.NONE, 32, 12);
        String id = w.blobIds().get(0);
        FileBlobStore store = new FileBlobStore(w.blobDir());
        Path cache = tmp.resolve("cache");
        RemoteBlobSource source = source(cache, store, new FetchPolicy(512 << 10, 0));
        try (RemoteBlob rb = source.open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
            rb.readFully(ByteBuffer.allocate(10), 3L * CHUNK); // chunks 3-10 by a read
            store.clearRequests();
            int fetched = 0;
            for (int i = 0; i < rb.chunkCount(); i++) {
                if (rb.fetchIfMissing(i)) {
                    fetched++;
                }
            }
            assertEquals(List.of(new FileBlobStore.Request(id, 0, 3 * CHUNK),
                    new FileBlobStore.Request(id, 11L * CHUNK, 8 * CHUNK),
                    new FileBlobStore.Request(id, 19L * CHUNK, 8 * CHUNK),
                    new FileBlobStore.Request(id, 27L * CHUNK, 5 * CHUNK)), store.requests());
            assertEquals(4, fetched);
            assertEquals(32, rb.cacheFile().presentCount());
        }
        store.failing(true);
        try (RemoteBlob rb = source(cache, store, FetchPolicy.defaults()).open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
            assertTrue(rb.localFile().isPresent(), "complete after prefetch");
        }
    }

    @Test
    void fetchSegmentFetchesExactlyTheMissingUnclaimedChunksBetweenItsFirstAndLast() throws IOException {
        SyntheticImage.Written w = image("segment", Compression.NONE, 32, 14);
        String id = w.blobIds().get(0);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        FileBlobStore store = new FileBlobStore(w.blobDir());
        // The default policy: a plain miss would merge up to 1 MiB (16 chunks) of neighbours.
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        try (RemoteBlob rb = source.open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
            assertTrue(rb.fetchSegment(new int[] {4, 5, 6}));
            assertEquals(List.of(new FileBlobStore.Request(id, 4L * CHUNK, 3 * CHUNK)), store.requests(), "chunks 4-6 only");
            assertFalse(rb.fetchSegment(new int[] {4, 5, 6}), "all present: no request");
            store.clearRequests();
            // 6 is present: the request starts at 7; 9 lies between wanted chunks and comes along.
            assertTrue(rb.fetchSegment(new int[] {6, 7, 8, 10}));
            assertEquals(List.of(new FileBlobStore.Request(id, 7L * CHUNK, 4 * CHUNK)), store.requests());
            for (int c = 4; c <= 10; c++) {
                assertTrue(rb.cacheFile().isPresent(c), "chunk " + c + " stored");
            }
            assertFalse(rb.cacheFile().isPresent(3));
            assertFalse(rb.cacheFile().isPresent(11));
            ByteBuffer b = ByteBuffer.allocate(3 * CHUNK);
            store.failing(true);
            rb.readFully(b, 5L * CHUNK);
            assertArrayEquals(Arrays.copyOfRange(blob, 5 * CHUNK, 8 * CHUNK), b.array(), "stored bytes are the blob's");
        }
    }

    @Test
    void aReadMissingAPlannedChunkTakesItsSegmentAndNoUnwantedNeighbour() throws IOException {
        SyntheticImage.Written w = image("plan", Compression.NONE, 32, 15);
        String id = w.blobIds().get(0);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        FileBlobStore store = new FileBlobStore(w.blobDir());
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        try (RemoteBlob rb = source.open(id, TestDevices.rangesOf(w.chunks().get(0)));
             RemoteBlob other = source.open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
            // Registered through one blob, the plan serves every reader of it in the process.
            other.usePlan(new FetchPlan(32, List.of(new int[] {2, 3}, new int[] {10, 11, 12})));
            ByteBuffer b = ByteBuffer.allocate(100);
            rb.readFully(b, 11L * CHUNK + 5);
            assertArrayEquals(Arrays.copyOfRange(blob, 11 * CHUNK + 5, 11 * CHUNK + 105), b.array());
            assertEquals(List.of(new FileBlobStore.Request(id, 10L * CHUNK, 3 * CHUNK)), store.requests(),
                    "the segment 10-12, not 1 MiB of neighbours");
            store.clearRequests();
            // A chunk in no segment: a plain miss, the first readahead window (128 KiB: two chunks).
            rb.readFully(ByteBuffer.allocate(100), 20L * CHUNK);
            assertEquals(List.of(new FileBlobStore.Request(id, 20L * CHUNK, 2 * CHUNK)), store.requests());
        }
    }

    @Test
    void aForwardStreamDoublesItsWindowAndIsReadAheadEachByteFetchedOnce() throws IOException {
        SyntheticImage.Written w = image("stream", Compression.NONE, 64, 16);
        String id = w.blobIds().get(0);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        FileBlobStore store = new FileBlobStore(w.blobDir());
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        try (RemoteBlob rb = source.open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
            ByteBuffer b = ByteBuffer.allocate(4096);
            for (int at = 0; at < blob.length; at += 4096) {
                b.clear().limit(Math.min(4096, blob.length - at));
                rb.readFully(b, at);
                assertArrayEquals(Arrays.copyOfRange(blob, at, at + b.limit()), Arrays.copyOf(b.array(), b.limit()), "at " + at);
            }
        }
        List<FileBlobStore.Request> requests = new ArrayList<>(store.requests());
        requests.sort((x, y) -> Long.compare(x.position(), y.position()));
        int k = 1024;
        // 128 KiB at the first miss; each miss after a run fetches twice the run (256 KiB after 128,
        // 768 KiB after 384, then the 1 MiB limit), and at the limit the next 1 MiB goes ahead;
        // the first read of a readahead sends the next (the blob's last 896 KiB).
        assertEquals(List.of(new FileBlobStore.Request(id, 0, 128 * k), new FileBlobStore.Request(id, 128 * k, 256 * k),
                new FileBlobStore.Request(id, 384 * k, 768 * k), new FileBlobStore.Request(id, 1152 * k, 1024 * k),
                new FileBlobStore.Request(id, 2176 * k, 1024 * k), new FileBlobStore.Request(id, 3200 * k, 896 * k)), requests);
        assertEquals(2, source.counters().readAheads(), source.counters().toString());
    }

    /**
     * A cache on a full disk (a tmpfs the test mounts and fills): every store fails. A forward stream
     * then claimed its readahead's first chunk again at each read of it, waited for a readahead that
     * could not store it either, and looped (11,643 range requests for one chunk in two minutes). Now
     * each chunk is fetched by the read that needs it, served from the fetched bytes, and readahead
     * pauses while stores fail.
     */
    @Test
    @org.junit.jupiter.api.Timeout(60)
    void aCacheOnAFullDiskServesEveryChunkWithoutLooping() throws Exception {
        SyntheticImage.Written w = image("full", Compression.NONE, 64, 17);
        String id = w.blobIds().get(0);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        try (io.strata.registry.testing.FullDisk small = io.strata.registry.testing.FullDisk.mount(tmp.resolve("small"), "2m")) {
            Path cache = Files.createDirectories(small.dir().resolve("cache"));
            FileBlobStore store = new FileBlobStore(w.blobDir());
            RemoteBlobSource source = source(cache, store, FetchPolicy.defaults());
            String said = CacheEvictionTest.capturingStandardError(() -> {
                try (RemoteBlob rb = source.open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
                    ByteBuffer b = ByteBuffer.allocate(4096);
                    for (int at = 0; at < blob.length; at += 4096) {
                        if (at == 1152 << 10) {
                            // The disk fills up once the stream's first windows (128 + 256 + 768 KiB) are
                            // kept: its readahead, and everything after, cannot be stored.
                            small.fill();
                        }
                        b.clear().limit(Math.min(4096, blob.length - at));
                        rb.readFully(b, at);
                        assertArrayEquals(Arrays.copyOfRange(blob, at, at + b.limit()), Arrays.copyOf(b.array(), b.limit()), "at " + at);
                    }
                }
            });
            // Every store after the fill failed; the log says so once (then once a minute), not per store.
            assertEquals(1, said.lines().filter(l -> l.contains("cannot store")).count(), said);
            // Nothing is kept, so each 4-KiB read fetches (at most) its chunk: bounded, not a loop.
            int reads = (blob.length + 4095) / 4096;
            assertTrue(store.requests().size() <= reads + 8, store.requests().size() + " requests for " + reads + " reads");
        }
    }

    /**
     * One bad answer for a readahead window poisons the neighbours it stored unchecked; the first read
     * of such a neighbour finds it bad in the cache, drops it and fetches it once more (the registry
     * is fine again), so the read succeeds. Before, it failed with EIO once per poisoned chunk, and
     * for good when the registry was gone.
     */
    @Test
    void aNeighbourStoredFromABadAnswerIsFetchedAgainByTheReadThatFindsIt() throws IOException {
        for (Compression c : List.of(Compression.ZSTD, Compression.NONE)) {
            SyntheticImage.Written w = image("poison-" + c, c, 16, 21);
            String id = w.blobIds().get(0);
            ChunkInfo neighbour = w.chunks().get(0).get(5);
            FileBlobStore store = new FileBlobStore(w.blobDir()).corrupt(id, neighbour.compressedOffset() + neighbour.compressedSize() / 2);
            RemoteBlobSource source = source(tmp.resolve("cache-poison-" + c), store,
                    new FetchPolicy(FetchPolicy.DEFAULT_MERGE_LIMIT, FetchPolicy.DEFAULT_MAX_GAP));
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source, FlatDeviceOptions.defaults())) {
                long first = w.blobOffsets().get(0) + w.chunks().get(0).get(0).uncompressedOffset();
                dev.read(first, ByteBuffer.allocate(4096)); // fetches the whole blob, chunk 5 bad, and keeps it
                store.corrupt(null, -1);
                store.clearRequests();
                long at = w.blobOffsets().get(0) + neighbour.uncompressedOffset();
                ByteBuffer got = ByteBuffer.allocate(CHUNK);
                dev.read(at, got);
                assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + CHUNK), got.array(), c.toString());
                assertEquals(List.of(new FileBlobStore.Request(id, neighbour.compressedOffset(), (int) neighbour.compressedSize())),
                        store.requests(), c + ": the poisoned chunk alone was fetched again");
                assertEquals(1, source.counters().discarded(), c.toString());
            }
        }
    }

    /**
     * A stored chunk checked from fetched bytes the cache file does not hold (the disk was full) must
     * not count as checked once the file is complete: the file's copy may differ (here a later bad
     * answer stored it). Before, the complete blob's chunk was sent straight from the file, unchecked:
     * wrong bytes on every read.
     */
    @Test
    @org.junit.jupiter.api.Timeout(60)
    void aStoredChunkCheckedFromBytesTheFileDoesNotHoldIsCheckedAgainFromTheFile() throws Exception {
        SyntheticImage.Written w = image("stale-verified", Compression.NONE, 16, 23);
        String id = w.blobIds().get(0);
        try (io.strata.registry.testing.FullDisk small = io.strata.registry.testing.FullDisk.mount(tmp.resolve("small2"), "4m")) {
            Path cache = Files.createDirectories(small.dir().resolve("cache"));
            FileBlobStore store = new FileBlobStore(w.blobDir());
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source(cache, store, FetchPolicy.defaults()),
                    FlatDeviceOptions.defaults().withCacheBytes(4 * CHUNK))) {
                small.fill();
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, CHUNK)); // checked, nothing stored
                small.free();
                ChunkInfo neighbour = w.chunks().get(0).get(5);
                store.corrupt(id, neighbour.compressedOffset() + 100);
                long before = w.blobOffsets().get(0) + w.chunks().get(0).get(4).uncompressedOffset();
                dev.read(before, ByteBuffer.allocate(4096)); // its window stores chunk 5 from the bad answer
                store.corrupt(null, -1);
                // Every other chunk read again (the memory cache holds 4): the blob's file fills up and
                // is complete; then chunk 5 is read from it and checked, not sent unchecked.
                byte[] expected = w.expectedDevice();
                for (int i = 0; i < 16; i++) {
                    if (i != 5) {
                        long at = w.blobOffsets().get(0) + w.chunks().get(0).get(i).uncompressedOffset();
                        dev.read(at, ByteBuffer.allocate(CHUNK));
                    }
                }
                long at = w.blobOffsets().get(0) + neighbour.uncompressedOffset();
                ByteBuffer got = ByteBuffer.allocate(CHUNK);
                dev.read(at, got);
                assertArrayEquals(Arrays.copyOfRange(expected, (int) at, (int) at + CHUNK), got.array(), "chunk 5 of the complete blob");
                assertArrayEquals(expected, TestDevices.readAll(dev, CHUNK), "the complete blob, served from its file");
            }
        }
    }

    /**
     * The files a cache makes are its user's alone (0600) whatever the umask and even in a directory
     * someone made 0755: a private image's chunks were world-readable, and anyone could hold a read
     * lock on .lock and stall eviction.
     */
    @Test
    void theFilesACacheMakesAreItsUsersAlone() throws Exception {
        SyntheticImage.Written w = image("private", Compression.NONE, 4, 25);
        Path cache = Files.createDirectories(tmp.resolve("shared-looking"));
        Files.setPosixFilePermissions(cache, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source(cache, new FileBlobStore(w.blobDir()), FetchPolicy.defaults()),
                FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev, CHUNK));
        }
        List<String> made = new ArrayList<>();
        try (var files = Files.list(cache)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                made.add(f.getFileName() + " " + java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
            }
        }
        assertTrue(made.size() >= 3, "data, map and lock files: " + made);
        assertTrue(made.stream().allMatch(m -> m.endsWith(" rw-------")), made.toString());
    }

    /**
     * Symlinks planted in the cache directory (someone who may write there; the names are predictable
     * from a public image) are not followed: a root server truncated and overwrote their targets. The
     * read fails instead, and a new cache directory is made 0700.
     */
    @Test
    void symlinksInTheCacheDirectoryAreNotFollowed() throws Exception {
        SyntheticImage.Written w = image("links", Compression.NONE, 8, 19);
        String id = w.blobIds().get(0);
        Path cache = tmp.resolve("fresh-cache");
        BlobCacheDirectory dir = new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED);
        assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(cache)));
        Path victim = Files.writeString(tmp.resolve("victim"), "precious");
        Files.createSymbolicLink(cache.resolve(CachedBlobFile.dataName(id)), victim);
        RemoteBlobSource source = new RemoteBlobSource(dir, new FileBlobStore(w.blobDir()), "test store", FetchPolicy.defaults());
        assertThrows(IOException.class, () -> {
            try (RemoteBlob rb = source.open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
                rb.readFully(ByteBuffer.allocate(4096), 0);
            }
        });
        assertEquals("precious", Files.readString(victim), "the symlink's target was not touched");
    }

    @Test
    void scatteredMissesFetchTheFirstWindowOnlyAndReadNothingAhead() throws IOException {
        SyntheticImage.Written w = image("scattered", Compression.NONE, 64, 17);
        String id = w.blobIds().get(0);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        FileBlobStore store = new FileBlobStore(w.blobDir());
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        try (RemoteBlob rb = source.open(id, TestDevices.rangesOf(w.chunks().get(0)))) {
            for (int c : new int[] {40, 10, 60, 25}) {
                ByteBuffer b = ByteBuffer.allocate(4096);
                rb.readFully(b, (long) c * CHUNK + 100);
                assertArrayEquals(Arrays.copyOfRange(blob, c * CHUNK + 100, c * CHUNK + 4196), b.array());
            }
        }
        assertEquals(List.of(new FileBlobStore.Request(id, 40L * CHUNK, 2 * CHUNK), new FileBlobStore.Request(id, 10L * CHUNK, 2 * CHUNK),
                new FileBlobStore.Request(id, 60L * CHUNK, 2 * CHUNK), new FileBlobStore.Request(id, 25L * CHUNK, 2 * CHUNK)),
                store.requests(), "a 128 KiB window (two chunks) each, in the order of the reads");
        assertEquals(0, source.counters().readAheads());
    }

    @Test
    void aBlobOpenedWithoutItsChunksIsReadAsItComesAndNeverPosesAsALocalFile() throws IOException {
        SyntheticImage.Written w = image("plain", Compression.NONE, 4, 13);
        byte[] blob = Files.readAllBytes(w.blobPath(0));
        FileBlobStore store = new FileBlobStore(w.blobDir());
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        try (var rb = source.open(w.blobIds().get(0))) {
            assertFalse(rb.localFile().isPresent());
            ByteBuffer b = ByteBuffer.allocate(5000);
            rb.readFully(b, 70_000);
            assertArrayEquals(Arrays.copyOfRange(blob, 70_000, 75_000), b.array());
            assertEquals(List.of(new FileBlobStore.Request(w.blobIds().get(0), 70_000, 5000)), store.requests());
        }
    }

    /**
     * Many sequential streams, each triggering readahead, against a registry that takes 500 ms per
     * request: more readaheads than readahead threads queue. A read reaching a chunk of a readahead
     * still queued fetches it itself; it waited for the queue and then the whole fetch (48 streams on
     * 8 threads: up to six fetches' time, and with a stalled registry as many deadlines).
     */
    @Test
    void aReadDoesNotWaitForAReadaheadStillQueued() throws Exception {
        int streams = 48;
        int fetchMillis = 500;
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(new Random(1), streams * 16, 64 << 10, Compression.NONE, DigestAlgorithm.BLAKE3)));
        String id = w.blobIds().get(0);
        List<ChunkInfo> chunks = w.chunks().get(0);
        FileBlobStore store = new FileBlobStore(w.blobDir()).delay(fetchMillis);
        RemoteBlobSource src = source(tmp.resolve("cache"), store, new FetchPolicy(256 << 10, 8 << 10, 128 << 10));
        ExecutorService pool = Executors.newFixedThreadPool(streams);
        try (RemoteBlob rb = src.open(id, TestDevices.rangesOf(chunks))) {
            List<Future<Long>> slowest = new ArrayList<>();
            for (int s = 0; s < streams; s++) {
                int base = s * 16;
                slowest.add(pool.submit(() -> {
                    long worst = 0;
                    for (int k : new int[] {base, base + 2, base + 6}) { // the first read, then two in its readahead's range
                        ChunkInfo c = chunks.get(k);
                        ByteBuffer got = ByteBuffer.allocate((int) c.compressedSize());
                        long t0 = System.nanoTime();
                        rb.readFully(got, c.compressedOffset());
                        worst = Math.max(worst, (System.nanoTime() - t0) / 1_000_000);
                    }
                    return worst;
                }));
            }
            long worst = 0;
            for (Future<Long> f : slowest) {
                worst = Math.max(worst, f.get(60, TimeUnit.SECONDS));
            }
            // At most a readahead under way and then its own fetch; generous for a loaded machine.
            assertTrue(worst < 4L * fetchMillis, "the slowest read took " + worst + " ms; one fetch takes " + fetchMillis);
        } finally {
            pool.shutdownNow();
        }
    }
}
