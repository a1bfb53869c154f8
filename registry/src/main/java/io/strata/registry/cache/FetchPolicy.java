package io.strata.registry.cache;

/**
 * How a miss is turned into a request. A request always covers whole chunks; it grows over the
 * neighbouring missing chunks (forward first: reads tend to go forward, then backward) until it
 * would pass {@code mergeLimit} bytes, bridging gaps (present chunks, bytes no chunk uses) of up
 * to {@code maxGap} bytes. Nydus amplifies reads to 1 MiB, never below 128 KiB, and merges across
 * gaps up to 8 KiB: the same defaults. A single chunk larger than the limit is fetched whole.
 */
public record FetchPolicy(int mergeLimit, int maxGap) {
    public static final int DEFAULT_MERGE_LIMIT = 1 << 20;
    /** Smaller requests cost a round trip each for little data: the issue sets this floor. */
    public static final int MIN_MERGE_LIMIT = 128 << 10;
    public static final int DEFAULT_MAX_GAP = 8 << 10;

    public FetchPolicy {
        if (mergeLimit < MIN_MERGE_LIMIT) {
            throw new IllegalArgumentException("fetch merge limit " + mergeLimit + " is below " + MIN_MERGE_LIMIT + " bytes");
        }
        if (maxGap < 0 || maxGap > mergeLimit) {
            throw new IllegalArgumentException("fetch gap " + maxGap + " must lie in [0, " + mergeLimit + "]");
        }
    }

    public static FetchPolicy defaults() {
        return new FetchPolicy(DEFAULT_MERGE_LIMIT, DEFAULT_MAX_GAP);
    }
}
