package io.strata.registry.cache;

/**
 * How a read's miss is turned into requests. A request always covers whole chunks; it grows over
 * the neighbouring missing chunks (forward first: reads tend to go forward, then backward) until it
 * would pass its size, bridging gaps (present chunks, bytes no chunk uses) of up to {@code maxGap}
 * bytes. A single chunk larger than the size is fetched whole.
 *
 * <p>The size is a readahead window, as the kernel's page cache does it: a miss away from the
 * reads before it fetches {@code initialWindow} bytes; a miss that follows them (a forward stream
 * within the blob) fetches twice the run before it, up to {@code mergeLimit}, and once at the limit
 * also the next window asynchronously, ahead of the reader, whose first read of it sends the one
 * after. Small first
 * requests keep scattered reads (an application's own files among others) from dragging in a
 * megabyte of neighbours each; the doubling and the readahead keep a streaming reader's link busy.
 * Nydus amplifies reads to 1 MiB, never below 128 KiB, and merges across gaps up to 8 KiB: the
 * defaults here are that limit and gap, and a first window of 128 KiB. With {@code initialWindow ==
 * mergeLimit} every miss fetches up to the limit and nothing is read ahead.
 */
public record FetchPolicy(int mergeLimit, int maxGap, int initialWindow) {
    public static final int DEFAULT_MERGE_LIMIT = 1 << 20;
    /** Smaller requests cost a round trip each for little data: the issue sets this floor. */
    public static final int MIN_MERGE_LIMIT = 128 << 10;
    public static final int DEFAULT_MAX_GAP = 8 << 10;
    public static final int DEFAULT_INITIAL_WINDOW = 128 << 10;

    public FetchPolicy {
        if (mergeLimit < MIN_MERGE_LIMIT) {
            throw new IllegalArgumentException("fetch merge limit " + mergeLimit + " is below " + MIN_MERGE_LIMIT + " bytes");
        }
        if (maxGap < 0 || maxGap > mergeLimit) {
            throw new IllegalArgumentException("fetch gap " + maxGap + " must lie in [0, " + mergeLimit + "]");
        }
        if (initialWindow < MIN_MERGE_LIMIT || initialWindow > mergeLimit) {
            throw new IllegalArgumentException("first fetch window " + initialWindow + " must lie in [" + MIN_MERGE_LIMIT + ", "
                    + mergeLimit + "]");
        }
    }

    /** Every miss fetches up to {@code mergeLimit}; no readahead. */
    public FetchPolicy(int mergeLimit, int maxGap) {
        this(mergeLimit, maxGap, mergeLimit);
    }

    public static FetchPolicy defaults() {
        return new FetchPolicy(DEFAULT_MERGE_LIMIT, DEFAULT_MAX_GAP, DEFAULT_INITIAL_WINDOW);
    }

    /** Whether a forward stream grows the window and is read ahead. */
    public boolean readsAhead() {
        return initialWindow < mergeLimit;
    }
}
