package io.strata.registry.prefetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.BuildListener;
import io.strata.builder.BuildOptions;
import io.strata.builder.ImageBuilder;
import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.chunk.ChunkTable;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.PrefetchPlan;
import io.strata.core.image.RafsImage;
import io.strata.registry.cache.BlobCacheDirectory;
import io.strata.registry.cache.CachedBlobFile;
import io.strata.registry.cache.FetchPolicy;
import io.strata.registry.cache.FileBlobStore;
import io.strata.registry.cache.RemoteBlob;
import io.strata.registry.cache.RemoteBlobSource;
import io.strata.registry.testing.TestDevices;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The prefetcher against real blob files (a {@link FileBlobStore} behind a {@link TimedStore}) and
 * real cache files: {@code all} makes every blob complete and the device then works with the store
 * gone; {@code table} fetches the planned chunks and no request is for unplanned ones only; a read is
 * never queued behind a running prefetch; a bad prefetched chunk is dropped when a read uses it and
 * fetched again.
 */
@Timeout(120)
class PrefetcherTest {
    static final int CHUNK = 64 << 10;

    @TempDir
    Path tmp;

    /** An image of random (incompressible) files in 64 KiB chunks, with a prefetch table of {@code prefetch}. */
    static Path buildImage(Path dir, List<String> prefetch) throws IOException {
        Random r = new Random(42);
        Path src = dir.resolve("src");
        write(src.resolve("big/data"), 40 * CHUNK, r);
        write(src.resolve("app/bin"), 5 * CHUNK, r);
        write(src.resolve("app/lib/x"), 3 * CHUNK + 17, r);
        write(src.resolve("other/y"), 10 * CHUNK, r);
        write(src.resolve("small"), 1000, r);
        Path out = dir.resolve("img");
        ImageBuilder.build(src, out, BuildOptions.defaults(1_750_000_000L).withChunkSize(CHUNK).withThreads(1)
                .withPrefetch(prefetch), BuildListener.SILENT);
        return out;
    }

    private static void write(Path p, int size, Random r) throws IOException {
        Files.createDirectories(p.getParent());
        byte[] b = new byte[size];
        r.nextBytes(b);
        Files.write(p, b);
    }

    static byte[] localDevice(Path img) throws IOException {
        try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), new LocalBlobDirectory(img.resolve("blobs")),
                FlatDeviceOptions.defaults())) {
            return TestDevices.readAll(dev, 128 << 10);
        }
    }

    private RemoteBlobSource source(Path cache, RemoteBlobSource.FetcherFactory fetchers, FetchPolicy policy) throws IOException {
        return new RemoteBlobSource(new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED), fetchers, "test store", policy);
    }

    private static Prefetcher finish(Prefetcher p) throws InterruptedException {
        assertTrue(p.awaitFinished(Duration.ofSeconds(60)), "prefetch finishes: " + p.progress());
        return p;
    }

    @Test
    void allMakesEveryBlobCompleteAndTheDeviceWorksWithTheStoreGone() throws Exception {
        Path img = buildImage(tmp, List.of("app"));
        byte[] expected = localDevice(img);
        FileBlobStore files = new FileBlobStore(img.resolve("blobs"));
        RafsImage image = RafsImage.open(img.resolve("bootstrap"));
        ChunkTable table = ChunkTable.buildAll(image)[0];
        String id = image.blobs().get(0).blobId();
        RemoteBlobSource source = source(tmp.resolve("cache"), new TimedStore(files), FetchPolicy.defaults());
        try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), source, FlatDeviceOptions.defaults())) {
            Prefetcher p = finish(Prefetcher.start(image, source, PrefetchMode.ALL, PrefetchOptions.defaults()));
            PrefetchProgress pr = p.progress();
            assertEquals(PrefetchProgress.State.DONE, pr.state(), pr.toString());
            assertEquals(table.size(), pr.plannedChunks(), "every chunk of the blob: " + pr);
            assertEquals(pr.plannedChunks(), pr.doneChunks());
            assertEquals(pr.plannedBytes(), pr.doneBytes());
            assertTrue(pr.requests() >= 1, pr.toString());
            assertEquals(table.size(), source.counters().misses(), "each chunk fetched once: " + source.counters());
            assertTrue(pr.toString().startsWith("prefetch=all:done 100% chunks=" + table.size() + "/" + table.size()), pr.toString());
            p.close();

            try (RemoteBlob again = source.open(id, table.compressedRanges())) {
                CachedBlobFile f = again.cacheFile();
                assertEquals(f.ranges().count(), f.presentCount(), "every chunk is on disk");
            }
            files.failing(true);
            assertArrayEquals(expected, TestDevices.readAll(dev, 128 << 10), "the open device reads everything from the cache");
        }
        // A fresh process view: a new source on the same cache directory, the store still gone.
        RemoteBlobSource fresh = source(tmp.resolve("cache"), new TimedStore(files), FetchPolicy.defaults());
        // Complete on disk: a blob opened now is its cache file, served like a local one (zero-copy paths).
        try (RemoteBlob again = fresh.open(id, table.compressedRanges())) {
            assertTrue(again.localFile().isPresent(), "a complete blob offers its data file");
        }
        try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), fresh, FlatDeviceOptions.defaults())) {
            assertArrayEquals(expected, TestDevices.readAll(dev, 128 << 10));
        }
        assertEquals(0, fresh.counters().fetchRequests());
    }

    @Test
    void tableFetchesThePlannedChunksAndNothingElseButMergeNeighbours() throws Exception {
        Path img = buildImage(tmp, List.of("app", "/other/y"));
        RafsImage image = RafsImage.open(img.resolve("bootstrap"));
        PrefetchPlan plan = PrefetchPlan.of(image);
        assertEquals(5 + 4 + 10, plan.chunks().size(), "app/bin 5, app/lib/x 4, other/y 10 chunks");
        TimedStore store = new TimedStore(new FileBlobStore(img.resolve("blobs")));
        // The smallest merge limit: a request holds at most two 64 KiB chunks.
        FetchPolicy policy = new FetchPolicy(FetchPolicy.MIN_MERGE_LIMIT, 0);
        RemoteBlobSource source = source(tmp.resolve("cache"), store, policy);
        Prefetcher p = finish(Prefetcher.start(image, source, PrefetchMode.TABLE, PrefetchOptions.defaults()));
        assertEquals(PrefetchProgress.State.DONE, p.progress().state(), p.progress().toString());
        assertEquals(plan.chunks().size(), p.progress().plannedChunks());
        assertEquals(plan.compressedBytes(), p.progress().plannedBytes());

        ChunkTable table = ChunkTable.buildAll(image)[0];
        try (RemoteBlob blob = source.open(image.blobs().get(0).blobId(), table.compressedRanges())) {
            CachedBlobFile f = blob.cacheFile();
            for (PrefetchPlan.Chunk c : plan.chunks()) {
                assertTrue(f.isPresent(Prefetcher.indexOf(f.ranges(), c.compressedOffset(), c.compressedSize())),
                        "planned chunk at " + c.compressedOffset() + " is cached");
            }
            assertTrue(f.presentCount() < f.ranges().count() - 30, "big/data (40 chunks) is not fetched: " + f.presentCount());
        }
        List<TimedStore.Request> requests = store.requests();
        long bytes = 0;
        for (TimedStore.Request r : requests) {
            assertTrue(r.prefetch(), "only the prefetcher fetched: " + r);
            assertTrue(r.length() <= FetchPolicy.MIN_MERGE_LIMIT, r.toString());
            assertTrue(plan.chunks().stream().anyMatch(c -> r.overlaps(c.compressedOffset(), c.compressedOffset() + c.compressedSize())),
                    "every request is for a planned chunk: " + r);
            bytes += r.length();
        }
        assertTrue(bytes <= plan.compressedBytes() + (long) requests.size() * CHUNK,
                "at most one merged neighbour per request: " + bytes + " bytes for " + plan.compressedBytes() + " planned");
    }

    @Test
    void aTableFetchesItsChunksOnlyInParallelAndAReadOfAChunkOnTheWireWaitsForIt() throws Exception {
        Path img = buildImage(tmp, List.of("app", "/other/y"));
        RafsImage image = RafsImage.open(img.resolve("bootstrap"));
        byte[] expected = localDevice(img);
        PrefetchPlan plan = PrefetchPlan.of(image);
        ChunkTable table = ChunkTable.buildAll(image)[0];
        long delay = 1000;
        TimedStore store = new TimedStore(new FileBlobStore(img.resolve("blobs"))).delay(delay);
        // The default policy: a plain miss would merge unwanted neighbours (big/data) up to 1 MiB.
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        PrefetchPlan.Chunk wanted = plan.chunks().get(plan.chunks().size() - 1);
        int c = 0;
        while (table.compressedOffset(c) != wanted.compressedOffset()) {
            c++;
        }
        long at = image.devices().get(0).mappedBlkaddr() * RafsImage.BLOCK_SIZE + table.uncompressedOffset(c);
        try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), source, FlatDeviceOptions.defaults());
             // From the bootstrap's path, as the servers start it (the image is opened on the prefetch thread).
             Prefetcher p = Prefetcher.start(img.resolve("bootstrap"), source, PrefetchMode.TABLE, PrefetchOptions.defaults())) {
            // app (app/bin, app/lib/x: adjacent in the blob) and other/y: two segments, both on the wire at once.
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (store.prefetchInFlight() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(2, store.prefetchInFlight(), "both segments requested in parallel: " + store.requests());
            byte[] got = new byte[4096];
            dev.read(at, ByteBuffer.wrap(got));
            assertArrayEquals(java.util.Arrays.copyOfRange(expected, (int) at, (int) at + 4096), got);
            String me = Thread.currentThread().getName();
            assertTrue(store.requests().stream().noneMatch(r -> r.thread().equals(me)),
                    "the read waited for the prefetch request bringing its chunk: " + store.requests());
            finish(p);
            assertEquals(PrefetchProgress.State.DONE, p.progress().state(), p.progress().toString());
        }
        List<TimedStore.Request> requests = store.requests();
        assertEquals(2, requests.size(), requests.toString());
        long bytes = 0;
        for (TimedStore.Request r : requests) {
            assertTrue(r.prefetch(), r.toString());
            bytes += r.length();
        }
        assertEquals(plan.compressedBytes(), bytes, "exactly the listed files' chunks: " + requests);
    }

    @Test
    void withAllAReadOutsideTheTableKeepsItsReadaheadWindow() throws Exception {
        Path img = buildImage(tmp, List.of("app"));
        RafsImage image = RafsImage.open(img.resolve("bootstrap"));
        byte[] expected = localDevice(img);
        ChunkTable table = ChunkTable.buildAll(image)[0];
        // One slot, slow requests: the prefetch is busy with the table's segment (app) while the read comes.
        TimedStore store = new TimedStore(new FileBlobStore(img.resolve("blobs"))).delay(1000);
        RemoteBlobSource source = source(tmp.resolve("cache"), store, FetchPolicy.defaults());
        // A chunk in the middle of big/data (40 chunks, stored after app's 9 in the blob), far from the table's files.
        Integer[] byOffset = new Integer[table.size()];
        for (int k = 0; k < byOffset.length; k++) {
            byOffset[k] = k;
        }
        java.util.Arrays.sort(byOffset, java.util.Comparator.comparingLong(table::compressedOffset));
        int c = byOffset[9 + 20];
        assertTrue(table.compressedOffset(c) >= 9L * CHUNK, "past app's chunks");
        long at = image.devices().get(0).mappedBlkaddr() * RafsImage.BLOCK_SIZE + table.uncompressedOffset(c);
        try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), source, FlatDeviceOptions.defaults());
             Prefetcher p = Prefetcher.start(image, source, PrefetchMode.ALL, PrefetchOptions.defaults().withSlots(1))) {
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (store.prefetchInFlight() < 1 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            byte[] got = new byte[4096];
            dev.read(at, ByteBuffer.wrap(got));
            assertArrayEquals(java.util.Arrays.copyOfRange(expected, (int) at, (int) at + 4096), got);
        }
        String me = Thread.currentThread().getName();
        List<TimedStore.Request> mine = store.requests().stream().filter(r -> r.thread().equals(me)).toList();
        assertEquals(1, mine.size(), store.requests().toString());
        assertEquals(FetchPolicy.DEFAULT_INITIAL_WINDOW, mine.get(0).length(),
                "the read's own first window, not a 1 MiB piece of the fill: " + mine);
    }

    @Test
    void aBootstrapThatDoesNotOpenMeansNoPrefetchNotAnError() throws Exception {
        Path bad = Files.writeString(tmp.resolve("not-a-bootstrap"), "nothing here");
        RemoteBlobSource source = source(tmp.resolve("cache"), new FileBlobStore(tmp), FetchPolicy.defaults());
        Prefetcher p = finish(Prefetcher.start(bad, source, PrefetchMode.TABLE, PrefetchOptions.defaults()));
        assertEquals(PrefetchProgress.State.FAILED, p.progress().state(), p.progress().toString());
        p.close();
    }

    @Test
    void aReadIsNotQueuedBehindARunningPrefetch() throws Exception {
        Path img = buildImage(tmp, List.of());
        RafsImage image = RafsImage.open(img.resolve("bootstrap"));
        byte[] expected = localDevice(img);
        // Long against scheduling noise: the margins below are half and twice this, and a loaded
        // 2-core CI machine can stall a thread for a few hundred milliseconds.
        long delay = 1500;
        // The read's own request lasts longer than the prefetch requests already on the wire, so that
        // they end while it still fetches (seconds of margin even on a loaded machine): the prefetcher
        // must then hold back rather than send more.
        long demandDelay = 3 * delay;
        TimedStore store = new TimedStore(new FileBlobStore(img.resolve("blobs"))).delay(delay).demandDelay(demandDelay);
        RemoteBlobSource source = source(tmp.resolve("cache"), store, new FetchPolicy(FetchPolicy.MIN_MERGE_LIMIT, 0));
        ChunkTable table = ChunkTable.buildAll(image)[0];
        // The chunk stored last in the blob: `all` would reach it last, seconds from now.
        int last = 0;
        for (int c = 0; c < table.size(); c++) {
            if (table.compressedOffset(c) > table.compressedOffset(last)) {
                last = c;
            }
        }
        long at = image.devices().get(0).mappedBlkaddr() * RafsImage.BLOCK_SIZE + table.uncompressedOffset(last);
        try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), source, FlatDeviceOptions.defaults());
             // Two slots, holding back for any read that fetches: the mechanism, at settings that keep the timing margins wide.
             Prefetcher p = Prefetcher.start(image, source, PrefetchMode.ALL, new PrefetchOptions(2, 1, 3, Duration.ofMillis(5)))) {
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (store.prefetchInFlight() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(2, store.prefetchInFlight(), "both prefetch slots busy before the read");
            long t0 = System.nanoTime();
            byte[] got = new byte[4096];
            dev.read(at, ByteBuffer.wrap(got));
            long readMillis = (System.nanoTime() - t0) / 1_000_000;
            assertArrayEquals(java.util.Arrays.copyOfRange(expected, (int) at, (int) at + 4096), got);

            String me = Thread.currentThread().getName();
            TimedStore.Request mine = store.requests().stream().filter(r -> r.thread().equals(me)).findFirst().orElseThrow();
            long queuedMillis = (mine.startNanos() - t0) / 1_000_000;
            // A prefetch request takes `delay`: a read queued behind one would start that much later.
            assertTrue(queuedMillis < delay / 2, "the read's request started " + queuedMillis + " ms after the read");
            assertTrue(readMillis < demandDelay + delay, "the read took " + readMillis + " ms (one request: " + demandDelay + " ms)");
            assertEquals(PrefetchProgress.State.RUNNING, p.progress().state(), "the prefetch was still running");
            long overlapping = store.requests().stream().filter(TimedStore.Request::prefetch)
                    .filter(r -> r.startNanos() < mine.endNanos() && r.endNanos() > mine.startNanos()).count();
            assertTrue(overlapping >= 1, "prefetch requests were on the wire during the read");
            assertTrue(p.progress().yields() >= 1, "the prefetch held back while the read fetched: " + p.progress());
            for (TimedStore.Request r : store.requests()) {
                long concurrent = store.requests().stream().filter(TimedStore.Request::prefetch)
                        .filter(o -> o.startNanos() <= r.startNanos() && o.endNanos() > r.startNanos()).count();
                assertTrue(concurrent <= 2, "at most 2 prefetch requests at once, saw " + concurrent);
            }
            long closeStart = System.nanoTime();
            p.close();
            assertTrue((System.nanoTime() - closeStart) / 1_000_000 < delay * 3, "close waits only for the requests in flight");
            assertEquals(PrefetchProgress.State.STOPPED, p.progress().state());
            int after = store.requests().size();
            Thread.sleep(delay + 100);
            assertEquals(after, store.requests().size(), "no request after close");
        }
    }

    @Test
    void aBadPrefetchedChunkIsDroppedAndFetchedAgainByTheReadThatFindsIt() throws Exception {
        Path img = buildImage(tmp, List.of());
        RafsImage image = RafsImage.open(img.resolve("bootstrap"));
        byte[] expected = localDevice(img);
        ChunkTable table = ChunkTable.buildAll(image)[0];
        String id = image.blobs().get(0).blobId();
        int c = 3;
        FileBlobStore files = new FileBlobStore(img.resolve("blobs")).corrupt(id, table.compressedOffset(c) + 10);
        RemoteBlobSource source = source(tmp.resolve("cache"), files, FetchPolicy.defaults());
        long at = image.devices().get(0).mappedBlkaddr() * RafsImage.BLOCK_SIZE + table.uncompressedOffset(c);
        byte[] want = java.util.Arrays.copyOfRange(expected, (int) at, (int) at + 4096);
        try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), source, FlatDeviceOptions.defaults())) {
            Prefetcher p = finish(Prefetcher.start(image, source, PrefetchMode.ALL, PrefetchOptions.defaults()));
            assertEquals(PrefetchProgress.State.DONE, p.progress().state(), "prefetch stores compressed bytes unchecked");
            files.corrupt(null, -1);
            files.clearRequests();
            byte[] got = new byte[4096];
            // The read finds it bad in the cache, drops it and fetches it once more: it succeeds.
            dev.read(at, ByteBuffer.wrap(got));
            assertArrayEquals(want, got, "the read fetched the bad chunk again");
            assertEquals(1, source.counters().discarded(), "and dropped the bad copy from the cache");
            assertEquals(1, files.requests().size(), files.requests().toString());
        }
    }

    /**
     * A cache on a full disk (a tmpfs the test mounts and fills): what the prefetch fetches cannot be
     * stored. It is a failed prefetch, not a done one: no chunk counts as cached, and it stops after its
     * failures in a row instead of pulling the whole image to throw it away.
     */
    @Test
    void aPrefetchWhoseChunksCannotBeStoredFailsAndCountsNothingCached() throws Exception {
        Path img = buildImage(tmp, List.of());
        RafsImage image = RafsImage.open(img.resolve("bootstrap"));
        try (io.strata.registry.testing.FullDisk small = io.strata.registry.testing.FullDisk.mount(tmp.resolve("small"), "1m")) {
            FileBlobStore files = new FileBlobStore(img.resolve("blobs"));
            RemoteBlobSource source = source(small.dir().resolve("cache"), files, FetchPolicy.defaults());
            try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), source, FlatDeviceOptions.defaults())) {
                small.fill();
                Prefetcher p = finish(Prefetcher.start(image, source, PrefetchMode.ALL,
                        PrefetchOptions.defaults().withSlots(1)));
                PrefetchProgress pr = p.progress();
                assertEquals(PrefetchProgress.State.FAILED, pr.state(), pr.toString());
                assertEquals(0, pr.doneChunks(), pr.toString());
                assertEquals(0, pr.doneBytes(), pr.toString());
                assertEquals(PrefetchOptions.defaults().maxConsecutiveFailures(), pr.failures(), pr.toString());
            }
        }
    }
}
