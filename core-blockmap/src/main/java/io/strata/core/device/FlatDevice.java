package io.strata.core.device;

import io.strata.core.blob.BlobSource;
import io.strata.core.buffer.NativeBuffer;
import io.strata.core.chunk.CacheStats;
import io.strata.core.chunk.ChunkCache;
import io.strata.core.chunk.ChunkStore;
import io.strata.core.chunk.ChunkTable;
import io.strata.core.image.DeviceSlot;
import io.strata.core.image.LegacyBootstrap;
import io.strata.core.image.RafsImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import io.strata.core.os.OpenFile;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A RAFS v6 image composed into one block device, the layout of the kernel's flatdev mode (Linux
 * 6.4+, {@code erofs_map_dev}): the bootstrap at block 0, then each blob's uncompressed address space
 * at its device slot's {@code mapped_blkaddr}, zeros everywhere else.
 */
public final class FlatDevice implements BlockDevice {
    private static final int BOOTSTRAP = -1;
    private static final long BLOCK = RafsImage.BLOCK_SIZE;

    private final RafsImage image;
    private final ChunkStore chunks;
    private final OpenFile bootstrapFile;
    /** The rewritten bootstrap in legacy-kernel mode, else null (then the file is served as it is). */
    private final NativeBuffer legacyBootstrap;
    private final long size;
    // Extents sorted by start: the bootstrap, then blobs. Parallel arrays, searched without allocation.
    private final long[] extentStart;
    private final long[] extentEnd;
    private final int[] extentBlob;

    private FlatDevice(RafsImage image, ChunkStore chunks, FileChannel bootstrapFile, NativeBuffer legacyBootstrap) {
        this.image = image;
        this.chunks = chunks;
        this.bootstrapFile = new OpenFile(bootstrapFile, image.path());
        this.legacyBootstrap = legacyBootstrap;
        this.size = image.flatDeviceBlocks() * BLOCK;
        List<long[]> extents = new ArrayList<>();
        extents.add(new long[] {0, image.fileSize(), BOOTSTRAP});
        List<DeviceSlot> devices = image.devices();
        for (int b = 0; b < devices.size(); b++) {
            DeviceSlot d = devices.get(b);
            extents.add(new long[] {d.mappedBlkaddr() * BLOCK, (d.mappedBlkaddr() + d.blocks()) * BLOCK, b});
        }
        extents.sort(Comparator.comparingLong(e -> e[0]));
        int n = extents.size();
        extentStart = new long[n];
        extentEnd = new long[n];
        extentBlob = new int[n];
        for (int i = 0; i < n; i++) {
            extentStart[i] = extents.get(i)[0];
            extentEnd[i] = extents.get(i)[1];
            extentBlob[i] = (int) extents.get(i)[2];
        }
    }

    /** Opens the bootstrap and every blob it names; fails if any is missing or malformed. */
    public static FlatDevice open(Path bootstrap, BlobSource blobs, FlatDeviceOptions options) throws IOException {
        return open(bootstrap, blobs, options, null);
    }

    /**
     * As above, with the decompressed chunks held in {@code sharedCache} (when not null) beside other
     * devices' (the daemon's exports share one bound); {@code options.cacheBytes()} is then unused.
     * Closing the device takes its chunks out of the shared cache and frees their memory.
     */
    public static FlatDevice open(Path bootstrap, BlobSource blobs, FlatDeviceOptions options, io.strata.core.chunk.ChunkCache sharedCache)
            throws IOException {
        RafsImage image = RafsImage.open(bootstrap);
        return open(image, io.strata.core.chunk.ChunkTable.buildAll(image), blobs, options, sharedCache);
    }

    /**
     * As above, from an image already parsed and its blobs' chunk tables already built
     * ({@code ChunkTable.buildAll(image)}), so that a caller that needs them too (a server's
     * prefetcher) does not parse the bootstrap a second time.
     */
    public static FlatDevice open(RafsImage image, io.strata.core.chunk.ChunkTable[] tables, BlobSource blobs, FlatDeviceOptions options,
            io.strata.core.chunk.ChunkCache sharedCache) throws IOException {
        ChunkStore store = ChunkStore.open(image, tables, blobs, options.cacheBytes(), sharedCache);
        FileChannel file = null;
        NativeBuffer legacy = null;
        try {
            file = FileChannel.open(image.path(), StandardOpenOption.READ);
            if (options.legacyKernel()) {
                ByteBuffer rewritten = LegacyBootstrap.rewrite(image);
                legacy = NativeBuffer.allocate(rewritten.remaining());
                legacy.view().put(0, rewritten, 0, rewritten.remaining());
            }
            return new FlatDevice(image, store, file, legacy);
        } catch (IOException | RuntimeException e) {
            store.close();
            if (file != null) {
                file.close();
            }
            throw e;
        }
    }

    public RafsImage image() {
        return image;
    }

    @Override
    public long size() {
        return size;
    }

    /**
     * What a byte range of the device is made of, run by run, in order: the one walk over extents
     * and chunk tables that {@link #resolve}, {@link #pin}, {@link #isReady} and
     * {@link #mapAllocation} share. A visitor returns false to stop the walk. Visitors are stateless
     * singletons and the caller's state travels in {@code ctx}, so a walk allocates nothing.
     */
    private interface Runs<C> {
        /**
         * Bytes that read as zeros: a gap between extents or unmapped blob space ({@code hole}), or
         * the padding after a chunk's last byte up to its 4 KiB block (not a hole: part of a data block).
         */
        boolean zeros(FlatDevice d, C ctx, long length, boolean hole) throws IOException;

        /** Bootstrap bytes at {@code position} of the bootstrap. */
        boolean bootstrap(FlatDevice d, C ctx, long position, long length) throws IOException;

        /** {@code length} bytes of chunk {@code chunk} of blob {@code blob}, from {@code offsetInChunk}. */
        boolean chunk(FlatDevice d, C ctx, int blob, int chunk, long offsetInChunk, long length) throws IOException;
    }

    /** Walks {@code [offset, offset+length)} (inside the device); false if a visitor stopped it. */
    private <C> boolean walk(long offset, long length, Runs<C> runs, C ctx) throws IOException {
        long pos = offset;
        long end = offset + length;
        int e = firstExtentEndingAfter(pos);
        while (pos < end) {
            if (e >= extentStart.length || pos < extentStart[e]) {
                long gapEnd = e < extentStart.length ? Math.min(extentStart[e], end) : end;
                if (!runs.zeros(this, ctx, gapEnd - pos, true)) {
                    return false;
                }
                pos = gapEnd;
                continue;
            }
            long segEnd = Math.min(extentEnd[e], end);
            if (extentBlob[e] == BOOTSTRAP) {
                if (!runs.bootstrap(this, ctx, pos, segEnd - pos)) {
                    return false;
                }
            } else if (!walkBlob(extentBlob[e], pos - extentStart[e], segEnd - pos, runs, ctx)) {
                return false;
            }
            pos = segEnd;
            e++;
        }
        return true;
    }

    /** Walks a range of one blob's uncompressed space: chunk bytes, chunk padding, unmapped holes. */
    private <C> boolean walkBlob(int blob, long local, long len, Runs<C> runs, C ctx) throws IOException {
        ChunkTable t = chunks.table(blob);
        long p = local;
        long stop = local + len;
        while (p < stop) {
            int c = t.find(p);
            if (c < 0) {
                long next = Math.min(t.nextChunkStart(p), stop);
                if (!runs.zeros(this, ctx, next - p, true)) {
                    return false;
                }
                p = next;
                continue;
            }
            long start = t.uncompressedOffset(c);
            long dataEnd = start + t.uncompressedSize(c);
            if (p < dataEnd) {
                long n = Math.min(dataEnd, stop) - p;
                if (!runs.chunk(this, ctx, blob, c, p - start, n)) {
                    return false;
                }
                p += n;
            }
            long padEnd = t.paddedEnd(c);
            if (p < stop && p < padEnd) {
                long n = Math.min(padEnd, stop) - p;
                if (!runs.zeros(this, ctx, n, false)) {
                    return false;
                }
                p += n;
            }
        }
        return true;
    }

    @Override
    public void resolve(long offset, long length, SegmentSink sink) throws IOException {
        BlockDevice.checkRange(offset, length, size);
        walk(offset, length, RESOLVE, sink);
    }

    /** Resolve: each run straight to the sink; a chunk pinned only while the sink takes its bytes. */
    private static final Runs<SegmentSink> RESOLVE = new Runs<>() {
        @Override
        public boolean zeros(FlatDevice d, SegmentSink sink, long length, boolean hole) throws IOException {
            sink.zeros(length);
            return true;
        }

        @Override
        public boolean bootstrap(FlatDevice d, SegmentSink sink, long position, long length) throws IOException {
            if (d.legacyBootstrap != null) {
                sink.memory(d.legacyBootstrap, (int) position, (int) length);
            } else {
                sink.file(d.bootstrapFile, position, length);
            }
            return true;
        }

        @Override
        public boolean chunk(FlatDevice d, SegmentSink sink, int blob, int c, long inChunk, long n) throws IOException {
            ChunkStore chunks = d.chunks;
            boolean storedInFile = chunks.isStoredInFile(blob, c);
            if (storedInFile && chunks.isVerifiedStored(blob, c)) {
                sink.file(chunks.fileOf(blob), chunks.table(blob).compressedOffset(c) + inChunk, n);
                chunks.countHits(1); // read from its file, not the cache, but a chunk touched and not loaded
                return true;
            }
            ChunkCache.Entry entry = chunks.acquire(blob, c);
            try {
                sink.memory(entry.buffer(), (int) inChunk, (int) n);
            } finally {
                if (storedInFile) {
                    chunks.releaseAndDiscard(entry); // verified now: later reads go to the file
                } else {
                    chunks.release(entry);
                }
            }
            return true;
        }
    };

    /**
     * Resolves the range once into {@code out} with every chunk it needs pinned (loaded first when
     * {@code mayLoad}, else only if all are cached already). Hits are counted once, here, when the
     * range is pinned; loads count as the cache counts them. See {@link BlockDevice#pin}.
     */
    @Override
    public PinOutcome pin(long offset, long length, PinnedRange out, boolean mayLoad) throws IOException {
        BlockDevice.checkRange(offset, length, size);
        out.release();
        boolean done = false;
        try {
            done = walk(offset, length, mayLoad ? PIN_LOADING : PIN_CACHED, out);
            if (done) {
                // Loads count their hits and misses in the cache; verified stored chunks are hits the cache never saw.
                int hits = (mayLoad ? 0 : out.pinnedChunks()) + out.storedChunks();
                if (hits > 0) {
                    chunks.countHits(hits);
                }
                return PinOutcome.PINNED;
            }
            return out.outOfBudget() ? PinOutcome.NO_ROOM : PinOutcome.NOT_CACHED;
        } finally {
            if (!done) {
                out.release(); // an error, a chunk not cached, or no pin budget: nothing stays pinned
            }
        }
    }

    private static final Runs<PinnedRange> PIN_LOADING = new Pinning(true);
    private static final Runs<PinnedRange> PIN_CACHED = new Pinning(false);

    /** Pin: each run recorded; a chunk pinned (loaded first, or only if cached) against the pin budget. */
    private static final class Pinning implements Runs<PinnedRange> {
        private final boolean mayLoad;

        Pinning(boolean mayLoad) {
            this.mayLoad = mayLoad;
        }

        @Override
        public boolean zeros(FlatDevice d, PinnedRange out, long length, boolean hole) {
            out.addZeros(length);
            return true;
        }

        @Override
        public boolean bootstrap(FlatDevice d, PinnedRange out, long position, long length) throws IOException {
            if (d.legacyBootstrap != null) {
                out.addMemory(d.legacyBootstrap, position, length);
            } else {
                out.addFile(d.bootstrapFile, position, length);
            }
            return true;
        }

        @Override
        public boolean chunk(FlatDevice d, PinnedRange out, int blob, int c, long inChunk, long n) throws IOException {
            ChunkStore chunks = d.chunks;
            ChunkTable t = chunks.table(blob);
            boolean storedInFile = chunks.isStoredInFile(blob, c);
            if (storedInFile && chunks.isVerifiedStored(blob, c)) {
                out.addVerifiedStored(chunks.fileOf(blob), t.compressedOffset(c) + inChunk, n);
                return true;
            }
            if (!out.reserve(chunks.cache(), chunks.cache().pinCost(t.uncompressedSize(c)))) {
                return false;
            }
            ChunkCache.Entry entry = mayLoad ? chunks.acquire(blob, c) : chunks.tryAcquire(blob, c);
            if (entry == null) {
                return false;
            }
            out.addChunk(chunks, entry, storedInFile, inChunk, n);
            return true;
        }
    }

    @Override
    public boolean isReady(long offset, long length) {
        if (!BlockDevice.isInRange(offset, length, size)) {
            return true;
        }
        try {
            return walk(offset, length, READY, null);
        } catch (IOException e) {
            return true; // not thrown by this walk; resolving will report any real error
        }
    }

    /** isReady: stops at the first chunk a read would have to load. */
    private static final Runs<Object> READY = new Runs<>() {
        @Override
        public boolean zeros(FlatDevice d, Object ctx, long length, boolean hole) {
            return true;
        }

        @Override
        public boolean bootstrap(FlatDevice d, Object ctx, long position, long length) {
            return true;
        }

        @Override
        public boolean chunk(FlatDevice d, Object ctx, int blob, int c, long inChunk, long n) {
            return d.chunks.isReady(blob, c);
        }
    };

    private int firstExtentEndingAfter(long pos) {
        int lo = 0;
        int hi = extentEnd.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (extentEnd[mid] <= pos) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /**
     * Holes are the gaps between the bootstrap and the blobs and the unmapped parts of a blob's space;
     * a chunk, its 4 KiB padding included, is data.
     */
    @Override
    public void mapAllocation(long offset, long length, AllocationSink sink) throws IOException {
        BlockDevice.checkRange(offset, length, size);
        walk(offset, length, ALLOCATION, sink);
    }

    /** mapAllocation: every run as data or hole (the sink merges neighbours of one kind). */
    private static final Runs<AllocationSink> ALLOCATION = new Runs<>() {
        @Override
        public boolean zeros(FlatDevice d, AllocationSink sink, long length, boolean hole) {
            return sink.run(length, hole);
        }

        @Override
        public boolean bootstrap(FlatDevice d, AllocationSink sink, long position, long length) {
            return sink.run(length, false);
        }

        @Override
        public boolean chunk(FlatDevice d, AllocationSink sink, int blob, int c, long inChunk, long n) {
            return sink.run(n, false);
        }
    };

    @Override
    public CacheStats cacheStats() {
        return chunks.stats();
    }

    /** Cache memory this device's chunks hold now: its share when the cache is shared. */
    public long cacheResidentBytes() {
        return chunks.residentBytes();
    }

    @Override
    public io.strata.core.chunk.LoadStats loadStats() {
        return chunks.loadStats();
    }

    @Override
    public String describe() {
        return "RAFS image " + image.path() + " " + shape();
    }

    @Override
    public String describeForClients() {
        return "RAFS image " + shape();
    }

    private String shape() {
        return "(" + image.blobs().size() + " blob(s), " + size / BLOCK + " blocks"
                + (legacyBootstrap != null ? ", legacy-kernel bootstrap" : "") + ")";
    }

    @Override
    public void close() throws IOException {
        try {
            chunks.close();
        } finally {
            bootstrapFile.channel().close();
            if (legacyBootstrap != null) {
                legacyBootstrap.close();
            }
        }
    }
}
