package io.strata.registry.cache;

import java.util.concurrent.atomic.LongAdder;

/**
 * What the remote blobs of one source did, for the metrics line: chunk reads served from the disk
 * cache (hits) and chunks fetched (misses), bytes and requests fetched, chunks dropped after failing
 * their digest. Counting allocates nothing.
 */
public final class CacheCounters {
    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private final LongAdder bytesFetched = new LongAdder();
    private final LongAdder fetchRequests = new LongAdder();
    private final LongAdder discarded = new LongAdder();
    private final LongAdder readAheads = new LongAdder();

    void hit() {
        hits.increment();
    }

    void fetched(int chunks, long bytes) {
        misses.add(chunks);
        bytesFetched.add(bytes);
        fetchRequests.increment();
    }

    void fetchedUncached(long bytes) {
        bytesFetched.add(bytes);
        fetchRequests.increment();
    }

    void readAhead() {
        readAheads.increment();
    }

    void discarded(int chunks) {
        discarded.add(chunks);
    }

    /** Chunk reads served from the disk cache. */
    public long hits() {
        return hits.sum();
    }

    /** Chunks fetched from the remote (each counted once, by the read that fetched it). */
    public long misses() {
        return misses.sum();
    }

    public long bytesFetched() {
        return bytesFetched.sum();
    }

    public long fetchRequests() {
        return fetchRequests.sum();
    }

    /** Requests sent ahead of a forward-streaming reader (readahead; also counted in fetch requests). */
    public long readAheads() {
        return readAheads.sum();
    }

    /** Chunks dropped from the cache because they did not decompress or verify. */
    public long discarded() {
        return discarded.sum();
    }

    @Override
    public String toString() {
        return "disk_hits=" + hits() + " disk_misses=" + misses() + " fetched_bytes=" + bytesFetched()
                + " fetch_requests=" + fetchRequests() + " readaheads=" + readAheads() + " discarded_chunks=" + discarded();
    }
}
