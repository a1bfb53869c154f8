package io.strata.registry.prefetch;

import java.time.Duration;

/**
 * How hard a {@link Prefetcher} pulls.
 *
 * @param slots requests a prefetch keeps in flight at most (default 16, the registry client's default
 *     concurrency bound: a link with a round trip of 20 ms at 50 MiB/s holds 1 MiB in flight, and a
 *     table's segments are often 100-200 KiB, each costing a round trip and the registry's own time
 *     (~35 ms there with 8 in flight) more than its bytes; the client's fair semaphore still serves
 *     a read's request as soon as one request on the wire ends)
 * @param yieldAt a prefetch request is issued only while fewer than this many on-demand reads are
 *     fetching for themselves (default 2; reads waiting for a prefetch request do not count)
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
        return new PrefetchOptions(io.strata.registry.RegistryOptions.DEFAULT_MAX_CONCURRENCY, 2, 3, Duration.ofMillis(5));
    }

    public PrefetchOptions withSlots(int n) {
        return new PrefetchOptions(n, yieldAt, maxConsecutiveFailures, yieldPoll);
    }
}
