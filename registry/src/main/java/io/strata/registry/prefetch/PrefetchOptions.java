package io.strata.registry.prefetch;

import java.time.Duration;

/**
 * How hard a {@link Prefetcher} pulls.
 *
 * @param slots requests a prefetch keeps in flight at most (default 2, as few as keep the pipe
 *     busy: the registry client's concurrency bound, default 8, leaves the rest to reads)
 * @param yieldAt a prefetch request is issued only while fewer than this many on-demand reads are
 *     fetching or waiting (default 1: any read in progress goes first)
 * @param maxConsecutiveFailures prefetch stops (reads go on, fetching on demand) after this many
 *     failed requests in a row: the registry is gone, and retrying the whole image would only make
 *     a retry storm
 * @param yieldPoll how often a held-back prefetch looks again whether the reads are done
 */
public record PrefetchOptions(int slots, int yieldAt, int maxConsecutiveFailures, Duration yieldPoll) {
    public PrefetchOptions {
        if (slots < 1 || slots > 64) {
            throw new IllegalArgumentException("prefetch slots must be 1..64, not " + slots);
        }
        if (yieldAt < 1) {
            throw new IllegalArgumentException("prefetch yield threshold must be at least 1, not " + yieldAt);
        }
        if (maxConsecutiveFailures < 1) {
            throw new IllegalArgumentException("prefetch failure limit must be at least 1, not " + maxConsecutiveFailures);
        }
    }

    public static PrefetchOptions defaults() {
        return new PrefetchOptions(2, 1, 3, Duration.ofMillis(5));
    }

    public PrefetchOptions withSlots(int n) {
        return new PrefetchOptions(n, yieldAt, maxConsecutiveFailures, yieldPoll);
    }
}
