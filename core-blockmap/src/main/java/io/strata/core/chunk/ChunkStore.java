package io.strata.core.chunk;

import io.strata.core.blob.Blob;
import io.strata.core.blob.BlobSource;
import io.strata.core.blob.MissingBlobsException;
import io.strata.core.buffer.NativeBuffer;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.image.ImageFormatException;
import io.strata.core.image.RafsImage;
import io.strata.core.metrics.ReadFailureLog;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import io.strata.core.os.OpenFile;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The chunks of an image's blobs: where each one is, how to decompress and verify it, and the cache
 * that holds it uncompressed. A chunk's digest is checked the first time it is loaded; a mismatch
 * fails only the reads that need that chunk.
 */
public final class ChunkStore implements Closeable {
    private static final Logger LOG = LoggerFactory.getLogger(ChunkStore.class);

    private final ChunkTable[] tables;
    private final Blob[] blobs;
    /** Each blob's local file, or null when the blob is not a local file; looked up once. */
    private final OpenFile[] files;
    private final Compression[] compression;
    private final DigestAlgorithm[] digest;
    /** Stored chunks whose digest has been checked, one bit per chunk: they may then go zero-copy. */
    private final AtomicLongArray[] verifiedStored;
    private final ChunkCache cache;
    /** Index of this image's blob 0 in {@link #cache}: 0 in its own cache, where it starts in a shared one. */
    private final int cacheBase;
    /** This image's blobs in the cache, with their own counters. */
    private final ChunkCache.Share share;
    private final int largestChunk;
    /** False when the cache is shared with other stores (the daemon's): closing then only takes this image's blobs out. */
    private final boolean ownsCache;
    private final int stagingSize;
    /**
     * Load workspaces not in use; a load borrows one and gives it back. Not one per thread: the
     * servers start threads per connection, and a per-thread workspace of a thread that ended stayed
     * here until close (about 2 MiB each; the soak's whole-device copies grew a server by 40 MB per
     * copy). Pooled, there are as many as loads ever ran at once. Guarded by itself; an ArrayDeque
     * allocates nothing once it has grown, so a miss does not either.
     */
    private final WorkspacePool pool;
    private final ChunkCache.Loader loader = this::loadChunk;

    /**
     * The load workspaces of the stores that use one cache: each store's own, or, in a shared cache
     * (the daemon's), one pool for all its exports, so 50 exports keep as many workspaces as loads
     * ran at once, not 50 times that. A workspace smaller than a store needs is replaced.
     */
    static final class WorkspacePool {
        /** Guarded by itself; an ArrayDeque allocates nothing once it has grown, so a miss does not either. */
        private final ArrayDeque<Workspace> idle = new ArrayDeque<>();
        /** Every workspace made and not yet freed, to free them at close. */
        private final java.util.Set<Workspace> all = java.util.concurrent.ConcurrentHashMap.newKeySet();

        Workspace borrow(int stagingSize, int digestSize) {
            Workspace ws;
            synchronized (idle) {
                ws = idle.pollFirst();
            }
            if (ws != null && ws.stagingSize >= stagingSize && ws.digestInput.length >= digestSize) {
                return ws;
            }
            if (ws != null) { // made for smaller chunks: replace it with one that fits both
                stagingSize = Math.max(stagingSize, ws.stagingSize);
                digestSize = Math.max(digestSize, ws.digestInput.length);
                all.remove(ws);
                ws.close();
            }
            ws = new Workspace(NativeBuffer.allocate(stagingSize), stagingSize, new byte[digestSize]);
            all.add(ws);
            return ws;
        }

        void giveBack(Workspace ws) {
            synchronized (idle) {
                idle.addFirst(ws);
            }
        }

        int count() {
            return all.size();
        }

        void close() {
            for (Workspace ws : all) {
                ws.close();
            }
            all.clear();
            synchronized (idle) {
                idle.clear();
            }
        }
    }
    /** Where loads spend their time, for {@link #loadStats()}: a few adds per miss, which takes milliseconds anyway. */
    private final LongAdder loads = new LongAdder();
    private final LongAdder readNanos = new LongAdder();
    private final LongAdder decompressNanos = new LongAdder();
    private final LongAdder digestNanos = new LongAdder();
    private final ReadFailureLog readFailures = new ReadFailureLog(LOG);
    private final LongAdder corrupt = new LongAdder();

    private ChunkStore(ChunkTable[] tables, Blob[] blobs, Compression[] compression, DigestAlgorithm[] digest,
                       long cacheBytes, int slotSize, ChunkCache shared) {
        this.tables = tables;
        this.blobs = blobs;
        this.files = new OpenFile[blobs.length];
        for (int b = 0; b < blobs.length; b++) {
            files[b] = blobs[b].localFile().orElse(null);
        }
        this.compression = compression;
        this.digest = digest;
        this.verifiedStored = new AtomicLongArray[tables.length];
        int[] counts = new int[tables.length];
        int staging = 4096;
        for (int b = 0; b < tables.length; b++) {
            counts[b] = tables[b].size();
            verifiedStored[b] = new AtomicLongArray((tables[b].size() + 63) / 64);
            staging = Math.max(staging, tables[b].maxCompressedSize());
        }
        this.stagingSize = staging;
        if (shared == null) {
            this.cache = new ChunkCache(cacheBytes, slotSize);
            this.ownsCache = true;
        } else {
            this.cache = shared;
            this.ownsCache = false;
        }
        this.share = cache.addBlobs(counts);
        this.pool = cache.workspaces;
        this.cacheBase = share.first();
        // The digest check's scratch array is as large as this image's chunks, not the shared cache's slots.
        this.largestChunk = slotSize;
    }

    /**
     * Opens every blob the image names. Fails with the full list of missing blob ids, or with the
     * first blob that is shorter than its chunks need.
     */
    public static ChunkStore open(RafsImage image, BlobSource source, long cacheBytes) throws IOException {
        return open(image, source, cacheBytes, null);
    }

    /**
     * As {@link #open(RafsImage, BlobSource, long)}, with the chunks held in {@code shared} (when not
     * null) beside other images' instead of a cache of its own; the image's largest chunk must fit
     * the shared cache's slots.
     */
    public static ChunkStore open(RafsImage image, BlobSource source, long cacheBytes, ChunkCache shared) throws IOException {
        return open(image, null, source, cacheBytes, shared);
    }

    /** As above, with the image's chunk tables already built ({@link ChunkTable#buildAll}); null builds them. */
    public static ChunkStore open(RafsImage image, ChunkTable[] built, BlobSource source, long cacheBytes, ChunkCache shared)
            throws IOException {
        List<BlobTableEntry> entries = image.blobs();
        List<String> missing = new ArrayList<>();
        for (BlobTableEntry e : entries) {
            if (!source.exists(e.blobId())) {
                missing.add(e.blobId());
            }
        }
        if (!missing.isEmpty()) {
            throw new MissingBlobsException(source.describe(), missing);
        }
        int n = entries.size();
        if (built != null && built.length != n) {
            throw new IllegalArgumentException(built.length + " chunk tables for an image of " + n + " blobs");
        }
        ChunkTable[] tables = built != null ? built : ChunkTable.buildAll(image);
        Blob[] blobs = new Blob[n];
        Compression[] compression = new Compression[n];
        DigestAlgorithm[] digest = new DigestAlgorithm[n];
        int slotSize = 4096;
        try {
            for (int b = 0; b < n; b++) {
                BlobTableEntry e = entries.get(b);
                compression[b] = e.compression();
                digest[b] = e.digest();
                slotSize = (int) Math.max(slotSize, e.chunkSize());
                blobs[b] = source.open(e.blobId(), tables[b].compressedRanges());
                // The blob file's size is known only now: every chunk (and the compressed size the
                // blob table claims) must lie inside it, or a read would hit the end of the file.
                long need = Math.max(tables[b].compressedEnd(), e.compressedSize());
                long have = blobs[b].size();
                if (have < need) {
                    throw new ImageFormatException(Path.of(source.describe()).resolve(e.blobId()), "file size", have,
                            "truncated: blob " + b + " of " + image.path() + " needs " + need + " bytes"
                                    + (need == e.compressedSize() ? " (its compressed_size)" : " (the end of its last chunk)"));
                }
            }
        } catch (IOException | RuntimeException ex) {
            for (Blob blob : blobs) {
                if (blob != null) {
                    try {
                        blob.close();
                    } catch (IOException suppressed) {
                        ex.addSuppressed(suppressed);
                    }
                }
            }
            throw ex;
        }
        if (shared != null && slotSize > shared.maxChunkSize()) {
            closeQuietly(blobs);
            throw new ImageFormatException(image.path(), "chunk_size", slotSize,
                    "larger than the shared chunk cache takes (--max-chunk-size, " + shared.maxChunkSize() + " bytes)");
        }
        return new ChunkStore(tables, blobs, compression, digest, cacheBytes, slotSize, shared);
    }

    private static void closeQuietly(Blob[] blobs) {
        for (Blob b : blobs) {
            try {
                b.close();
            } catch (IOException ignored) {
                // the image is refused anyway
            }
        }
    }

    public int blobCount() {
        return tables.length;
    }

    public ChunkTable table(int blob) {
        return tables[blob];
    }

    /** The local file of a blob, for zero-copy transfer of stored chunks; null if it has none (yet). */
    public OpenFile fileOf(int blob) {
        OpenFile f = files[blob];
        if (f == null) {
            // A remote blob gains a local file when its last chunk arrives (Blob#localFile): from
            // then on it is served like a local blob. Optional.empty() is a constant: no allocation.
            f = blobs[blob].localFile().orElse(null);
            files[blob] = f; // a benign race: every thread that looks sees null or the same channel
        }
        return f;
    }

    /** True for a stored (uncompressed) chunk of a blob with a local file: once verified, it is read from the file. */
    public boolean isStoredInFile(int blob, int chunk) {
        return !tables[blob].isCompressed(chunk) && fileOf(blob) != null;
    }

    /** True for a stored (uncompressed) chunk whose digest was already checked. */
    public boolean isVerifiedStored(int blob, int chunk) {
        return (verifiedStored[blob].get(chunk >>> 6) & (1L << chunk)) != 0;
    }

    /**
     * True when reading the chunk now needs no load: a stored chunk already verified in a local
     * file, or a chunk loaded in the cache (a hint; see {@link ChunkCache#isReady}).
     */
    public boolean isReady(int blob, int chunk) {
        if (isStoredInFile(blob, chunk) && isVerifiedStored(blob, chunk)) {
            return true;
        }
        return cache.isReady(cacheBase + blob, chunk);
    }

    /** The chunk, uncompressed and verified, pinned in the cache until {@link #release}. */
    public ChunkCache.Entry acquire(int blob, int chunk) throws IOException {
        return cache.acquire(cacheBase + blob, chunk, tables[blob].uncompressedSize(chunk), loader);
    }

    /** The chunk pinned if it is in the cache now, else null; loads nothing, counts nothing (see {@link ChunkCache#tryAcquire}). */
    public ChunkCache.Entry tryAcquire(int blob, int chunk) {
        return cache.tryAcquire(cacheBase + blob, chunk);
    }

    /** Counts {@code n} hits taken with {@link #tryAcquire}, in the cache's counters and this image's share. */
    public void countHits(int n) {
        cache.countHits(share, n);
    }

    public void release(ChunkCache.Entry entry) {
        cache.release(entry);
    }

    /** Releases a chunk that later reads will not take from the cache (a verified stored chunk). */
    public void releaseAndDiscard(ChunkCache.Entry entry) {
        cache.releaseAndDiscard(entry);
    }

    /** This image's cache counters: the cache's own, or this image's share of a shared cache. */
    public CacheStats stats() {
        return ownsCache ? cache.stats() : cache.stats(share);
    }

    /** Bytes of cache memory this image's chunks hold now (all of the cache's, unless it is shared). */
    public long residentBytes() {
        return ownsCache ? cache.stats().residentBytes() : cache.residentBytes(cacheBase, tables.length);
    }

    public ChunkCache cache() {
        return cache;
    }

    public LoadStats loadStats() {
        return new LoadStats(loads.sum(), readNanos.sum(), decompressNanos.sum(), digestNanos.sum(), corrupt.sum());
    }

    private int loadChunk(int cacheBlob, int chunk, NativeBuffer slot) throws IOException {
        int blob = cacheBlob - cacheBase;
        ChunkTable t = tables[blob];
        Workspace ws = borrowWorkspace();
        try {
            try {
                return load(t, blob, chunk, slot, ws);
            } catch (ChunkCorruptedException first) {
                if (!first.refetches) {
                    throw first;
                }
                // A remote blob's cache held bytes that were stored unchecked (a readahead window's or
                // the prefetcher's neighbours of a bad answer) and has dropped them: one fresh fetch,
                // so one bad answer costs a request, not a failed read.
                return load(t, blob, chunk, slot, ws);
            }
        } finally {
            returnWorkspace(ws);
        }
    }

    private int load(ChunkTable t, int blob, int chunk, NativeBuffer slot, Workspace ws) throws IOException {
        int csize = t.compressedSize(chunk);
        int usize = t.uncompressedSize(chunk);
        ByteBuffer staging = ws.staging.view();
        staging.clear().limit(csize);
        loads.increment();
        long start = System.nanoTime();
        // A stored chunk counts as verified (and is then sent straight from the file, unchecked) only
        // when the bytes checked here are the file's: a remote blob that is not complete yet returns
        // fetched bytes, which its cache file may not hold (a store that failed, another process's copy).
        boolean checksTheFile = !t.isCompressed(chunk) && fileOf(blob) != null;
        try {
            blobs[blob].readFully(staging, t.compressedOffset(chunk));
        } catch (IOException e) {
            readFailures.failed("blob " + blobs[blob].describe() + " chunk " + chunk, e);
            throw e;
        }
        long read = System.nanoTime();
        readNanos.add(read - start);
        Compression algo = t.isCompressed(chunk) ? compression[blob] : Compression.NONE;
        int produced;
        try {
            produced = ws.decompressor(algo).decompress(staging, csize, slot.view(), slot.capacity());
        } catch (IOException e) {
            throw corrupted(blob, t, chunk, algo.cliName() + " data does not decompress (" + e.getMessage() + ")", e, staging);
        }
        long decompressed = System.nanoTime();
        decompressNanos.add(decompressed - read);
        if (produced != usize) {
            throw corrupted(blob, t, chunk, "decompressed to " + produced + " bytes, expected " + usize, null, staging);
        }
        boolean matches = ws.digester.matches(digest[blob], slot.view(), usize, ws.digestInput, t.digests(), t.digestOffset(chunk));
        digestNanos.add(System.nanoTime() - decompressed);
        if (!matches) {
            throw corrupted(blob, t, chunk, digest[blob].cliName() + " digest mismatch", null, staging);
        }
        if (checksTheFile) {
            verifiedStored[blob].getAndUpdate(chunk >>> 6, w -> w | (1L << chunk));
        }
        return usize;
    }

    /**
     * Fails a chunk that does not decompress or verify. The blob is told to drop those bytes first:
     * a remote blob's cache must not keep them, or every later read would fail the same way.
     */
    private ChunkCorruptedException corrupted(int blob, ChunkTable t, int chunk, String why, Throwable cause, ByteBuffer staging) {
        String msg = "blob " + blobs[blob].describe() + " chunk " + chunk + " (uncompressed offset 0x"
                + Long.toHexString(t.uncompressedOffset(chunk)) + ", compressed offset 0x"
                + Long.toHexString(t.compressedOffset(chunk)) + "): " + why;
        corrupt.increment();
        LOG.error("corrupt chunk: {}", msg);
        ChunkCorruptedException failure = new ChunkCorruptedException(msg, cause);
        try {
            ByteBuffer failed = staging.duplicate();
            failed.clear().limit(t.compressedSize(chunk)); // the bytes read, as read (decompression only reads them)
            if (blobs[blob].discard(t.compressedOffset(chunk), failed)) {
                failure.refetches = true;
                files[blob] = null; // it may have stopped being complete: ask it again
            }
        } catch (IOException | RuntimeException e) {
            failure.addSuppressed(e);
        }
        return failure;
    }

    private Workspace borrowWorkspace() {
        return pool.borrow(stagingSize, largestChunk);
    }

    private void returnWorkspace(Workspace ws) {
        pool.giveBack(ws);
    }

    /** How many load workspaces exist: at most as many as loads that ran at the same time. */
    int workspaceCount() {
        return pool.count();
    }

    /** Scratch state for loading one chunk: borrowed from the pool for one load, reused for every miss. */
    static final class Workspace {
        final NativeBuffer staging;
        final int stagingSize;
        final byte[] digestInput;
        final ChunkDigester digester = new ChunkDigester();
        final Map<Compression, Decompressor> decompressors = new EnumMap<>(Compression.class);

        Workspace(NativeBuffer staging, int stagingSize, byte[] digestInput) {
            this.staging = staging;
            this.stagingSize = stagingSize;
            this.digestInput = digestInput;
        }

        void close() {
            staging.close();
            decompressors.values().forEach(Decompressor::close);
        }

        Decompressor decompressor(Compression c) {
            Decompressor d = decompressors.get(c);
            if (d == null) {
                d = Decompressor.forAlgorithm(c);
                decompressors.put(c, d);
            }
            return d;
        }
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (Blob b : blobs) {
            // Every blob is closed and the cache's share freed whatever one blob's close throws.
            try {
                b.close();
            } catch (IOException | RuntimeException | Error e) {
                if (first == null) {
                    first = e instanceof IOException io ? io : new IOException("closing blob " + b.describe() + ": " + e, e);
                }
            }
        }
        if (ownsCache) {
            cache.close(); // frees the workspaces too
        } else {
            cache.removeBlobs(cacheBase, tables.length);
        }
        if (first != null) {
            throw first;
        }
    }
}
