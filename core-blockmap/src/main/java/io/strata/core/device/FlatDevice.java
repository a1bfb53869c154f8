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
        this.bootstrapFile = new OpenFile(bootstrapFile);
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
        RafsImage image = RafsImage.open(bootstrap);
        ChunkStore store = ChunkStore.open(image, blobs, options.cacheBytes());
        FileChannel file = null;
        NativeBuffer legacy = null;
        try {
            file = FileChannel.open(bootstrap, StandardOpenOption.READ);
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

    @Override
    public void resolve(long offset, long length, SegmentSink sink) throws IOException {
        BlockDevice.checkRange(offset, length, size);
        long pos = offset;
        long end = offset + length;
        int e = firstExtentEndingAfter(pos);
        while (pos < end) {
            if (e >= extentStart.length || pos < extentStart[e]) {
                long gapEnd = e < extentStart.length ? Math.min(extentStart[e], end) : end;
                sink.zeros(gapEnd - pos);
                pos = gapEnd;
                continue;
            }
            long segEnd = Math.min(extentEnd[e], end);
            if (extentBlob[e] == BOOTSTRAP) {
                resolveBootstrap(pos, segEnd - pos, sink);
            } else {
                resolveBlob(extentBlob[e], pos - extentStart[e], segEnd - pos, sink);
            }
            pos = segEnd;
            e++;
        }
    }

    @Override
    public boolean isReady(long offset, long length) {
        if (!BlockDevice.isInRange(offset, length, size)) {
            return true;
        }
        long pos = offset;
        long end = offset + length;
        for (int e = firstExtentEndingAfter(pos); e < extentStart.length && extentStart[e] < end; e++) {
            if (extentBlob[e] == BOOTSTRAP) {
                continue;
            }
            ChunkTable t = chunks.table(extentBlob[e]);
            long local = Math.max(pos, extentStart[e]) - extentStart[e];
            long stop = Math.min(extentEnd[e], end) - extentStart[e];
            while (local < stop) {
                int c = t.find(local);
                if (c < 0) {
                    local = t.nextChunkStart(local);
                    continue;
                }
                if (!chunks.isReady(extentBlob[e], c)) {
                    return false;
                }
                local = t.paddedEnd(c);
            }
        }
        return true;
    }

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

    private void resolveBootstrap(long pos, long len, SegmentSink sink) throws IOException {
        if (legacyBootstrap != null) {
            sink.memory(legacyBootstrap, (int) pos, (int) len);
        } else {
            sink.file(bootstrapFile, pos, len);
        }
    }

    /** Resolves a range of one blob's uncompressed space: chunk bytes, chunk padding, holes. */
    private void resolveBlob(int blob, long local, long len, SegmentSink sink) throws IOException {
        ChunkTable t = chunks.table(blob);
        long p = local;
        long stop = local + len;
        while (p < stop) {
            int c = t.find(p);
            if (c < 0) {
                long next = Math.min(t.nextChunkStart(p), stop);
                sink.zeros(next - p);
                p = next;
                continue;
            }
            long start = t.uncompressedOffset(c);
            long dataEnd = start + t.uncompressedSize(c);
            if (p < dataEnd) {
                long n = Math.min(dataEnd, stop) - p;
                OpenFile file = chunks.fileOf(blob);
                boolean storedInFile = chunks.isStoredInFile(blob, c);
                if (storedInFile && chunks.isVerifiedStored(blob, c)) {
                    sink.file(file, t.compressedOffset(c) + (p - start), n);
                } else {
                    ChunkCache.Entry entry = chunks.acquire(blob, c);
                    try {
                        sink.memory(entry.buffer(), (int) (p - start), (int) n);
                    } finally {
                        if (storedInFile) {
                            chunks.releaseAndDiscard(entry); // verified now: later reads go to the file
                        } else {
                            chunks.release(entry);
                        }
                    }
                }
                p += n;
            }
            long padEnd = t.paddedEnd(c);
            if (p < stop && p < padEnd) {
                long n = Math.min(padEnd, stop) - p;
                sink.zeros(n);
                p += n;
            }
        }
    }

    /**
     * Holes are the gaps between the bootstrap and the blobs and the unmapped parts of a blob's space;
     * a chunk, its 4 KiB padding included, is data.
     */
    @Override
    public void mapAllocation(long offset, long length, AllocationSink sink) throws IOException {
        BlockDevice.checkRange(offset, length, size);
        long pos = offset;
        long end = offset + length;
        int e = firstExtentEndingAfter(pos);
        while (pos < end) {
            long runEnd;
            boolean hole;
            if (e >= extentStart.length || pos < extentStart[e]) {
                runEnd = e < extentStart.length ? Math.min(extentStart[e], end) : end;
                hole = true;
            } else if (extentBlob[e] == BOOTSTRAP) {
                runEnd = Math.min(extentEnd[e], end);
                hole = false;
            } else {
                ChunkTable t = chunks.table(extentBlob[e]);
                long local = pos - extentStart[e];
                int c = t.find(local);
                long localEnd;
                if (c >= 0) {
                    localEnd = t.paddedEnd(c);
                    hole = false;
                } else {
                    localEnd = t.nextChunkStart(local);
                    hole = true;
                }
                runEnd = Math.min(Math.min(extentEnd[e], end), localEnd == Long.MAX_VALUE ? Long.MAX_VALUE : extentStart[e] + localEnd);
            }
            if (!sink.run(runEnd - pos, hole)) {
                return;
            }
            pos = runEnd;
            if (e < extentEnd.length && pos >= extentEnd[e]) {
                e++;
            }
        }
    }

    @Override
    public CacheStats cacheStats() {
        return chunks.stats();
    }

    @Override
    public io.strata.core.chunk.LoadStats loadStats() {
        return chunks.loadStats();
    }

    @Override
    public String describe() {
        return "RAFS image " + image.path() + " (" + image.blobs().size() + " blob(s), " + size / BLOCK + " blocks"
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
