package io.strata.registry.cache;

import io.strata.core.blob.Blob;
import io.strata.core.blob.ChunkRanges;
import io.strata.registry.RangeFetcher;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import io.strata.core.os.OpenFile;
import java.nio.channels.FileChannel;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A blob read from a remote (a registry) through the persistent cache. A read is split by chunk:
 * a present chunk is read from the cache's data file; a missing one is fetched with one request that
 * also covers neighbouring missing chunks (see {@link FetchPolicy}), always whole chunks, stored,
 * and the read is served from the fetched bytes. Concurrent misses of one chunk in this process
 * fetch it once: the first claims it (and the neighbours it merges), the others wait for that fetch
 * and share its outcome. Bytes that lie in no chunk are fetched on demand and not kept.
 *
 * <p>The chunk store checks every chunk's digest; when one fails it calls {@link #discard}, which
 * clears the chunk's bit so that the next read fetches it again (the bad bytes stay on disk, unused,
 * until then).
 *
 * <p>A read of present chunks allocates nothing.
 */
public final class RemoteBlob implements Blob {
    private static final Logger LOG = LoggerFactory.getLogger(RemoteBlob.class);

    private final RemoteBlobSource source;
    private final CachedBlobFile file;
    private final RangeFetcher fetcher;
    private final ChunkRanges ranges;
    private final FileChannel data;
    /** The data file once every chunk is present (at open, or when the last one arrives); empty until then. */
    private volatile Optional<OpenFile> completeFile;
    /** The data file as transports see it, made once. */
    private final OpenFile dataFile;
    /** The sum of every chunk's length: the cached-bytes counter of a complete blob. */
    private final long chunkBytes;
    private final FetchPolicy policy;
    private final CacheCounters counters;
    /** Chunks being fetched now, by chunk index, in this blob's cache file. Guarded by itself. */
    private final Map<Integer, ChunkFill> inFlight;
    private volatile boolean closed;

    RemoteBlob(RemoteBlobSource source, CachedBlobFile file, RangeFetcher fetcher) {
        this.source = source;
        this.file = file;
        this.fetcher = fetcher;
        this.ranges = file.ranges();
        this.data = file.data();
        this.dataFile = new OpenFile(data);
        this.completeFile = file.completeAtOpen() ? Optional.of(dataFile) : Optional.empty();
        long sum = 0;
        for (int i = 0; i < ranges.count(); i++) {
            sum += ranges.length(i);
        }
        this.chunkBytes = sum;
        this.policy = source.policy();
        this.counters = source.counters();
        this.inFlight = file.inFlight();
    }

    @Override
    public String id() {
        return file.blobId();
    }

    @Override
    public String describe() {
        return file.blobId() + " from " + source.describe();
    }

    @Override
    public long size() {
        return file.blobSize();
    }

    /** The cache file this blob reads and fills (for tests and the prefetcher). */
    public CachedBlobFile cacheFile() {
        return file;
    }

    @Override
    public void readFully(ByteBuffer dst, long position) throws IOException {
        long end = position + dst.remaining();
        if (position < 0 || end > file.blobSize()) {
            throw new EOFException("blob " + describe() + " is " + file.blobSize() + " bytes; read of "
                    + dst.remaining() + " at " + position + " passes its end");
        }
        int limit = dst.limit();
        try {
            long p = position;
            while (p < end) {
                int i = ranges.firstEndingAfter(p);
                if (i == ranges.count() || ranges.offset(i) > p) {
                    long to = i == ranges.count() ? end : Math.min(end, ranges.offset(i));
                    source.demandStarted();
                    try {
                        fetchUncached(dst, p, to);
                    } finally {
                        source.demandFinished();
                    }
                    p = to;
                } else if (file.isPresent(i)) {
                    long to = Math.min(end, ranges.end(i));
                    if (readCached(dst, p, to)) {
                        counters.hit();
                        p = to;
                    } else {
                        file.markMissing(i); // the data file lost it: fetch again
                    }
                } else {
                    // Counted while it fetches or waits: a prefetcher holds back meanwhile.
                    source.demandStarted();
                    try {
                        p = fetchMissing(i, dst, p, end);
                    } finally {
                        source.demandFinished();
                    }
                }
            }
        } finally {
            dst.limit(limit);
        }
    }

    /** Reads {@code [from, to)} from the data file into {@code dst}; false if the file ends first. */
    private boolean readCached(ByteBuffer dst, long from, long to) throws IOException {
        int start = dst.position();
        dst.limit(start + (int) (to - from));
        long pos = from;
        while (dst.hasRemaining()) {
            int n = data.read(dst, pos);
            if (n < 0) {
                dst.position(start);
                return false;
            }
            pos += n;
        }
        return true;
    }

    /** Bytes between chunks (no chunk names them): fetched as they are, not cached. */
    private void fetchUncached(ByteBuffer dst, long from, long to) throws IOException {
        dst.limit(dst.position() + (int) (to - from));
        fetcher.fetch(from, dst);
        counters.fetchedUncached(to - from);
    }

    /**
     * Chunk {@code i} (which holds {@code p}) is missing: fetches it with its missing neighbours, or
     * waits for the fetch already under way. Returns how far {@code dst} is now filled (the caller
     * loops: after waiting, the chunk is usually present).
     */
    private long fetchMissing(int i, ByteBuffer dst, long p, long end) throws IOException {
        ChunkFill fill;
        ChunkFill other;
        long start = Long.MAX_VALUE;
        long stop = 0;
        synchronized (inFlight) {
            if (file.isPresent(i)) {
                return p;
            }
            other = inFlight.get(i);
            fill = other == null ? claim(i) : null;
        }
        if (other != null) {
            other.await("fetch of blob " + describe() + " chunk at byte " + ranges.offset(i));
            return p; // present now, normally; if its fetch could not store it, the loop claims it
        }
        for (int k = 0; k < fill.count; k++) {
            start = Math.min(start, ranges.offset(fill.chunks[k]));
            stop = Math.max(stop, ranges.end(fill.chunks[k]));
        }
        IOException failure = null;
        ByteBuffer buf = source.borrowBuffer((int) (stop - start));
        try {
            buf.clear().limit((int) (stop - start));
            fetcher.fetch(start, buf);
            buf.position(0);
            counters.fetched(fill.count, stop - start);
            int stored;
            try {
                stored = file.store(buf, start, fill.chunks, fill.count);
            } catch (IOException e) {
                // A full or failing disk costs caching, not the read: it is served from the fetched bytes.
                LOG.warn("cache: cannot store blob {} bytes {}-{} in {}: {}", id(), start, stop - 1, file.dataPath(), e.toString());
                stored = 0;
            }
            if (stored > 0) {
                source.stored(stop - start);
            }
            if (dst == null) {
                return stop; // a prefetch: nobody to serve
            }
            long to = Math.min(end, stop);
            ByteBuffer src = buf.duplicate();
            src.limit((int) (to - start)).position((int) (p - start));
            dst.limit(dst.position() + src.remaining());
            dst.put(src);
            return to;
        } catch (IOException | RuntimeException e) {
            failure = e instanceof IOException io ? io : new IOException(e);
            throw e;
        } finally {
            source.returnBuffer(buf);
            synchronized (inFlight) {
                for (int k = 0; k < fill.count; k++) {
                    inFlight.remove(fill.chunks[k]);
                }
            }
            fill.finish(failure);
        }
    }

    /**
     * Makes chunk {@code i} present unless it is: fetches it (with its missing neighbours, as a read
     * would) or waits for the fetch under way. For prefetching; returns true if this call fetched.
     */
    public boolean fetchIfMissing(int i) throws IOException {
        long at = ranges.offset(i);
        while (ranges.length(i) > 0 && !file.isPresent(i)) {
            if (fetchMissing(i, null, at, at) != at) {
                return true;
            }
        }
        return false;
    }

    /** How many chunks the blob has (indexes for {@link #fetchIfMissing}, in blob order). */
    public int chunkCount() {
        return ranges.count();
    }

    /**
     * Claims chunk {@code i} and its missing, unclaimed neighbours (forward first, then backward)
     * while the request stays within the merge limit and the gaps it bridges within the gap limit.
     * Holds {@code inFlight}'s monitor.
     */
    private ChunkFill claim(int i) {
        int limit = policy.mergeLimit();
        int gap = policy.maxGap();
        long start = ranges.offset(i);
        long stop = ranges.end(i);
        int[] picked = new int[16];
        int count = 0;
        picked[count++] = i;
        for (int j = i + 1; j < ranges.count(); j++) {
            if (ranges.offset(j) - stop > gap || inFlight.containsKey(j)) {
                break;
            }
            if (file.isPresent(j) || ranges.length(j) == 0) {
                continue; // bridged if the next missing chunk is near enough
            }
            long newStop = Math.max(stop, ranges.end(j));
            if (newStop - start > limit) {
                break;
            }
            stop = newStop;
            if (count == picked.length) {
                picked = Arrays.copyOf(picked, count * 2);
            }
            picked[count++] = j;
        }
        for (int j = i - 1; j >= 0; j--) {
            if (start - ranges.end(j) > gap || inFlight.containsKey(j)) {
                break;
            }
            if (file.isPresent(j) || ranges.length(j) == 0) {
                continue;
            }
            long newStart = Math.min(start, ranges.offset(j));
            if (stop - newStart > limit) {
                break;
            }
            start = newStart;
            if (count == picked.length) {
                picked = Arrays.copyOf(picked, count * 2);
            }
            picked[count++] = j;
        }
        ChunkFill fill = new ChunkFill(count);
        for (int k = 0; k < count; k++) {
            fill.add(picked[k]);
            inFlight.put(picked[k], fill);
        }
        return fill;
    }

    /**
     * Drops the chunks overlapping {@code [position, position + length)}: they failed their digest
     * (or did not decompress), so the next read fetches them again instead of reusing the bad bytes.
     */
    @Override
    public void discard(long position, int length) {
        long end = position + length;
        int dropped = 0;
        for (int i = ranges.firstEndingAfter(position); i < ranges.count() && ranges.offset(i) < end; i++) {
            if (ranges.end(i) > position && ranges.length(i) > 0 && file.isPresent(i)) {
                file.markMissing(i);
                dropped++;
            }
        }
        if (dropped > 0) {
            counters.discarded(dropped);
            LOG.warn("cache: dropped {} chunk(s) of blob {} at bytes {}-{}: they did not verify; the next read fetches them again",
                    dropped, describe(), position, end - 1);
        }
    }

    /**
     * The cache's data file once every chunk is present (filled by reads, the prefetcher or another
     * process sharing the cache): then the blob is served like a local one. Until then this is a
     * volatile read and, when the cached-bytes counter says the blob may be complete, a check of
     * the readiness map.
     */
    @Override
    public Optional<OpenFile> localFile() {
        Optional<OpenFile> f = completeFile;
        if (f.isEmpty() && file.cachedBytes() >= chunkBytes && file.presentCount() == ranges.count() && ranges.count() > 0) {
            f = Optional.of(dataFile);
            completeFile = f;
        }
        return f;
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        source.release(this);
    }
}
