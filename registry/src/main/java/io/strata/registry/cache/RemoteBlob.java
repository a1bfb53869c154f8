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

    /** How long readahead stays off after a store failed: what it fetched would only be thrown away. */
    private static final long STORE_FAILURE_PAUSE_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
    /** {@link #fetch}'s answer for a prefetch whose bytes the cache could not store (a full disk). */
    private static final long NOT_KEPT = -1;
    /** When storing last failed (nanoTime), or long ago. */
    private volatile long storeFailedAt = System.nanoTime() - STORE_FAILURE_PAUSE_NANOS;

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
    /**
     * Readahead markers, one bit per chunk (see {@link #readAhead}): the first chunk of each
     * readahead request; the first read to reach one sends the next request. Set and cleared under
     * {@code inFlight}'s monitor, tested without it (a stale test only costs a synchronous miss later).
     */
    private final int[] readaheadMarkers;

    RemoteBlob(RemoteBlobSource source, CachedBlobFile file, RangeFetcher fetcher) {
        this.source = source;
        this.file = file;
        this.fetcher = fetcher;
        this.ranges = file.ranges();
        this.data = file.data();
        this.dataFile = new OpenFile(data, file.dataPath());
        this.completeFile = file.completeAtOpen() ? Optional.of(dataFile) : Optional.empty();
        long sum = 0;
        for (int i = 0; i < ranges.count(); i++) {
            sum += ranges.length(i);
        }
        this.chunkBytes = sum;
        this.policy = source.policy();
        this.counters = source.counters();
        this.inFlight = file.inFlight();
        this.readaheadMarkers = new int[policy.readsAhead() ? (ranges.count() + 31) >>> 5 : 0];
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
        int start = dst.position();
        try {
            readOnce(dst, position);
        } catch (InternalError e) {
            // The map was cut short under us (see CachedBlobFile#lost): once more, fetching.
            file.lost(e);
            dst.position(start);
            readOnce(dst, position);
        }
    }

    private void readOnce(ByteBuffer dst, long position) throws IOException {
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
                } else {
                    if (readaheadMarkers.length > 0 && (readaheadMarkers[i >>> 5] & (1 << i)) != 0) {
                        readaheadReached(i);
                    }
                    if (file.isPresent(i)) {
                        long to = Math.min(end, ranges.end(i));
                        if (readCached(dst, p, to)) {
                            counters.hit();
                            p = to;
                        } else {
                            file.markMissing(i); // the data file lost it: fetch again
                        }
                    } else {
                        p = fetchMissing(i, dst, p, end);
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
     * Chunk {@code i} (which holds {@code p}) is missing: fetches it (see {@link #claimForRead}), or
     * waits for the fetch already under way. Returns how far {@code dst} is now filled (the caller
     * loops: after waiting, the chunk is usually present).
     */
    private long fetchMissing(int i, ByteBuffer dst, long p, long end) throws IOException {
        ChunkFill fill;
        ChunkFill other;
        synchronized (inFlight) {
            if (file.isPresent(i)) {
                return p;
            }
            other = inFlight.get(i);
            fill = other == null ? claimForRead(i) : null;
        }
        if (other != null) {
            // Not counted as a demand fetch: a read waiting for a prefetch request must not hold the prefetch back.
            other.await("fetch of blob " + describe() + " chunk at byte " + ranges.offset(i));
            return p; // present now, normally; if its fetch could not store it, the loop claims it
        }
        if (dst == null) {
            return fetch(fill, null, p, end); // fetchIfMissing: a prefetch, not a read
        }
        // Counted while it fetches: a prefetcher holds back new requests meanwhile.
        source.demandStarted();
        try {
            return fetch(fill, dst, p, end);
        } finally {
            source.demandFinished();
        }
    }

    /**
     * What a read that misses chunk {@code i} fetches: the plan's segment holding it when a
     * prefetcher planned one (exactly the chunks it wanted, fetched now, ahead of the prefetch),
     * else the chunk and its missing neighbours up to the merge limit. Holds {@code inFlight}'s monitor.
     */
    private ChunkFill claimForRead(int i) {
        FetchPlan plan = file.plan();
        int[] segment = plan == null ? null : plan.segmentOf(i);
        if (segment != null) {
            ChunkFill fill = claimSpan(segment);
            if (fill != null && inFlight.get(i) == fill) {
                return fill;
            }
            if (fill != null) {
                release(fill); // cannot happen (i is missing and unclaimed, so in the span), but never leave a claim behind
            }
        }
        if (!policy.readsAhead()) {
            return claim(i, policy.mergeLimit());
        }
        // A forward stream, told by its context as the kernel's readahead does when it has no state
        // for a reader: the chunks just before the miss are present or being fetched. Twice that
        // run (at least the first window, at most the limit) is fetched now; once the window has
        // reached the limit (a long stream, such as a whole-device copy) as much again is fetched
        // ahead of the reader. Short streams (a directory of small files) are not read ahead: what
        // lies past them is mostly other files, bytes for nothing. No run: a scattered read,
        // fetched with the first window alone.
        long behind = 0;
        long from = ranges.offset(i);
        int limit = policy.mergeLimit();
        for (int j = i - 1; j >= 0 && from - ranges.end(j) <= policy.maxGap() && behind < limit; j--) {
            if (ranges.length(j) > 0 && !file.isPresent(j) && !inFlight.containsKey(j)) {
                break;
            }
            behind = ranges.offset(i) - ranges.offset(j);
            from = ranges.offset(j);
        }
        if (behind == 0) {
            return claim(i, policy.initialWindow());
        }
        int window = (int) Math.min(limit, Math.max(policy.initialWindow(), 2 * behind));
        ChunkFill fill = claim(i, window);
        if (window >= limit) {
            readAhead(fill.stop, window);
        }
        return fill;
    }

    /** A read reached the first chunk of a readahead request: the next one goes out, twice as large. */
    private void readaheadReached(int marker) {
        synchronized (inFlight) {
            if ((readaheadMarkers[marker >>> 5] & (1 << marker)) == 0) {
                return;
            }
            readaheadMarkers[marker >>> 5] &= ~(1 << marker);
            // Where the readahead ended: past the chunks after the marker that are present or claimed.
            // Not the marker itself: the read at it fetches it if it is missing (its readahead could not
            // store it: a full disk); claimed here again, that read waited for a readahead that could
            // not store it either, for ever (11,643 range requests for one chunk in two minutes).
            int j = marker + 1;
            while (j < ranges.count() && (ranges.length(j) == 0 || file.isPresent(j) || inFlight.containsKey(j))) {
                j++;
            }
            if (j == ranges.count()) {
                return;
            }
            long previous = ranges.offset(j) - ranges.offset(marker);
            readAhead(ranges.offset(j), (int) Math.min(policy.mergeLimit(), Math.max(policy.initialWindow(), 2 * previous)));
        }
    }

    /**
     * Fetches up to {@code window} bytes of missing, unclaimed chunks from {@code at} on, on a
     * readahead thread; their first chunk becomes a marker. Nothing when the chunk at {@code at} is
     * present or claimed already (another reader's readahead). The chunks are claimed when the thread
     * starts, not when the request is queued: a read reaching a chunk of a request still queued
     * behind others fetches it itself, where it waited for the queue and then a whole deadline (with
     * many streams, several deadlines). Holds {@code inFlight}'s monitor.
     */
    private void readAhead(long at, int window) {
        int j = ranges.firstEndingAfter(at);
        if (System.nanoTime() - storeFailedAt < STORE_FAILURE_PAUSE_NANOS) {
            return; // what it fetched could not be kept: reads fetch their own chunks for a while
        }
        if (j >= ranges.count() || ranges.offset(j) - at > policy.maxGap() || closed
                || ranges.length(j) == 0 || file.isPresent(j) || inFlight.containsKey(j)) {
            return;
        }
        readaheadMarkers[j >>> 5] |= 1 << j;
        counters.readAhead();
        int first = j;
        source.readAhead(() -> {
            ChunkFill ahead;
            synchronized (inFlight) {
                if (closed || file.isPresent(first) || inFlight.containsKey(first)) {
                    return; // a read got there first
                }
                ahead = claim(first, window);
            }
            source.demandStarted();
            try {
                fetch(ahead, null, 0, 0);
            } catch (IOException | RuntimeException e) {
                // The reads waiting for it get the failure; a later read claims the chunks again.
                LOG.warn("readahead of blob {} bytes {}-{}: {}", describe(), ranges.offset(ahead.chunks[0]), ahead.stop - 1, e.toString());
            } finally {
                source.demandFinished();
            }
        });
    }

    /** Drops a claim that will not be fetched. Holds {@code inFlight}'s monitor. */
    private void release(ChunkFill fill) {
        for (int k = 0; k < fill.count; k++) {
            inFlight.remove(fill.chunks[k]);
        }
        fill.finish(null);
    }

    /**
     * Claims the missing, unclaimed chunks of {@code wanted} (ascending chunk indexes) and every
     * other missing, unclaimed chunk between the first and last of them: their bytes come with the
     * request anyway. Null when every wanted chunk is present or being fetched. Holds
     * {@code inFlight}'s monitor.
     */
    private ChunkFill claimSpan(int[] wanted) {
        int first = -1;
        int last = -1;
        for (int c : wanted) {
            if (ranges.length(c) > 0 && !file.isPresent(c) && !inFlight.containsKey(c)) {
                if (first < 0) {
                    first = c;
                }
                last = c;
            }
        }
        if (first < 0) {
            return null;
        }
        int count = 0;
        for (int j = first; j <= last; j++) {
            if (ranges.length(j) > 0 && !file.isPresent(j) && !inFlight.containsKey(j)) {
                count++;
            }
        }
        ChunkFill fill = new ChunkFill(count);
        for (int j = first; j <= last; j++) {
            if (ranges.length(j) > 0 && !file.isPresent(j) && !inFlight.containsKey(j)) {
                fill.add(j);
                fill.stop = Math.max(fill.stop, ranges.end(j));
            }
        }
        for (int k = 0; k < fill.count; k++) {
            inFlight.put(fill.chunks[k], fill);
        }
        return fill;
    }

    /**
     * Fetches the claimed chunks of {@code fill} with one request (from the first claimed chunk's
     * start to the last one's end), stores them, serves {@code [p, end)} of it into {@code dst}
     * (null for a prefetch) and ends the claim. Returns how far {@code dst} is filled; for a
     * prefetch, {@link #NOT_KEPT} if the cache could not store what it fetched.
     */
    private long fetch(ChunkFill fill, ByteBuffer dst, long p, long end) throws IOException {
        long start = Long.MAX_VALUE;
        long stop = 0;
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
            boolean kept = true;
            try {
                stored = file.store(buf, start, fill.chunks, fill.count);
            } catch (IOException e) {
                // A full or failing disk costs caching, not the read: it is served from the fetched bytes.
                long unsaid = source.storeFailureToLog();
                if (unsaid >= 0) {
                    LOG.warn("cache: cannot store blob {} bytes {}-{} in {}: {}{}", id(), start, stop - 1, file.dataPath(), e.toString(),
                            unsaid > 0 ? " (and " + unsaid + " other store(s) failed since the last warning; next warning in a minute at most)"
                                    : " (further failures are logged once a minute)");
                }
                storeFailedAt = System.nanoTime();
                stored = 0;
                kept = false;
            }
            if (stored > 0) {
                source.stored(stop - start);
            }
            if (dst == null) {
                return kept ? stop : NOT_KEPT; // a prefetch: nobody to serve
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
     * Registers a prefetcher's plan for this blob (shared by every reader of the blob in this
     * process): from now on a read that misses a planned chunk no one is fetching takes its segment.
     */
    public void usePlan(FetchPlan plan) {
        file.plan(plan);
    }

    /**
     * Fetches the missing chunks of one planned segment ({@code chunks}, ascending) that no one is
     * fetching, with one request (bridging the chunks between them); chunks being fetched by a read
     * or another prefetch request are left to that fetch, not waited for. For prefetching; returns
     * true if this call sent a request. Fails when the cache could not store what it fetched.
     */
    public boolean fetchSegment(int[] chunks) throws IOException {
        ChunkFill fill;
        synchronized (inFlight) {
            fill = claimSpan(chunks);
        }
        if (fill == null) {
            return false;
        }
        if (fetch(fill, null, 0, 0) == NOT_KEPT) {
            throw notKept(); // not a success: the prefetcher would count the chunks as cached, and fetch on regardless
        }
        return true;
    }

    /**
     * Makes chunk {@code i} present unless it is: fetches it (with its missing neighbours, as a read
     * would) or waits for the fetch under way. For prefetching; returns true if this call fetched.
     */
    public boolean fetchIfMissing(int i) throws IOException {
        long at = ranges.offset(i);
        while (ranges.length(i) > 0 && !file.isPresent(i)) {
            long r = fetchMissing(i, null, at, at);
            if (r == NOT_KEPT) {
                throw notKept();
            }
            if (r != at) {
                return true;
            }
        }
        return false;
    }

    /** A prefetch's failure when its bytes could not be stored ({@link #fetch} logged why). */
    private static IOException notKept() {
        return new IOException("fetched, but the cache could not store it (see the warning before)");
    }

    /** How many chunks the blob has (indexes for {@link #fetchIfMissing}, in blob order). */
    public int chunkCount() {
        return ranges.count();
    }

    /**
     * Claims chunk {@code i} and its missing, unclaimed neighbours (forward first, then backward)
     * while the request stays within {@code limit} bytes and the gaps it bridges within the gap limit.
     * Holds {@code inFlight}'s monitor.
     */
    private ChunkFill claim(int i, int limit) {
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
        fill.stop = stop;
        return fill;
    }

    /**
     * The bytes {@code failed} read from {@code position} failed their digest (or did not
     * decompress): the chunks they overlap are dropped where the data file holds those very bytes,
     * so that the next read fetches them again instead of reusing the bad bytes, and their fetch
     * may overwrite them. Where the file holds other bytes (the bad ones were fetched and not kept,
     * or another process has put a copy there since) nothing is dropped: those bytes may be the
     * ones another reader checked and serves, and the next read uses them (checked again). Returns
     * true when a chunk overlaps: reading again may give other bytes.
     */
    @Override
    public boolean discard(long position, ByteBuffer failed) throws IOException {
        long end = position + failed.remaining();
        int dropped = 0;
        boolean overlaps = false;
        for (int i = ranges.firstEndingAfter(position); i < ranges.count() && ranges.offset(i) < end; i++) {
            if (ranges.end(i) <= position || ranges.length(i) == 0) {
                continue;
            }
            overlaps = true;
            long from = Math.max(position, ranges.offset(i));
            long to = Math.min(end, ranges.end(i));
            ByteBuffer part = failed.slice(failed.position() + (int) (from - position), (int) (to - from));
            if (file.isPresent(i) && file.holds(from, part)) {
                file.foundBad(i);
                file.markMissing(i);
                dropped++;
            }
        }
        if (dropped > 0) {
            // No longer complete: ChunkStore stops serving stored chunks straight from the file until
            // every chunk is present (and checked) again.
            completeFile = Optional.empty();
            counters.discarded(dropped);
            LOG.warn("cache: dropped {} chunk(s) of blob {} at bytes {}-{}: they did not verify; fetching them again",
                    dropped, describe(), position, end - 1);
        }
        return overlaps;
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
