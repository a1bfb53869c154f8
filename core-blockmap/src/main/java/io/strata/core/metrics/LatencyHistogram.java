package io.strata.core.metrics;

import java.util.concurrent.atomic.LongAdder;

/**
 * Request latencies in fixed buckets, for a Prometheus histogram read at scrape time. Observing
 * allocates nothing and takes no lock (a {@link LongAdder} per bucket: many queue or loader threads
 * observe at once). Buckets run from 25 microseconds (a cached 4 KiB read) to 10 seconds (a remote
 * chunk fetched through retries); slower requests land in the last, unbounded bucket.
 */
public final class LatencyHistogram {
    /** Upper bounds in nanoseconds of every bucket but the last, which has none (+Inf). */
    private static final long[] UPPER_NANOS = {
        25_000L, 50_000L, 100_000L, 250_000L, 500_000L,
        1_000_000L, 2_500_000L, 5_000_000L, 10_000_000L, 25_000_000L, 50_000_000L,
        100_000_000L, 250_000_000L, 500_000_000L, 1_000_000_000L, 2_500_000_000L, 5_000_000_000L, 10_000_000_000L,
    };

    private final LongAdder[] counts = new LongAdder[UPPER_NANOS.length + 1];
    private final LongAdder sumNanos = new LongAdder();

    public LatencyHistogram() {
        for (int i = 0; i < counts.length; i++) {
            counts[i] = new LongAdder();
        }
    }

    public void observeNanos(long nanos) {
        long n = Math.max(0, nanos);
        int i = 0;
        while (i < UPPER_NANOS.length && n > UPPER_NANOS[i]) {
            i++;
        }
        counts[i].increment();
        sumNanos.add(n);
    }

    /** Buckets, the last one unbounded. */
    public static int buckets() {
        return UPPER_NANOS.length + 1;
    }

    /** The upper bound of bucket {@code i} in seconds; +Inf for the last. */
    public static double upperBoundSeconds(int i) {
        return i < UPPER_NANOS.length ? UPPER_NANOS[i] / 1e9 : Double.POSITIVE_INFINITY;
    }

    /** Observations that fell into bucket {@code i} (not cumulative). */
    public long bucketCount(int i) {
        return counts[i].sum();
    }

    /** Every observation's latency added up, in nanoseconds. */
    public long sumNanos() {
        return sumNanos.sum();
    }

    /** Observations so far (the buckets' sum). */
    public long count() {
        long c = 0;
        for (LongAdder a : counts) {
            c += a.sum();
        }
        return c;
    }
}
