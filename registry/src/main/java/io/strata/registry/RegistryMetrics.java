package io.strata.registry;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAccumulator;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counters for one registry: requests sent (every try counts), bytes received in response bodies,
 * retries, errors (failed tries and failed operations) and request latency. Updating allocates
 * nothing: adders and a fixed array of histogram buckets.
 *
 * <p>Latency goes into 96 buckets whose bounds grow by a factor of 2^(1/4) from 50 microseconds
 * (so up to ~12 minutes, past any sensible --registry-deadline); a percentile is reported as its
 * bucket's upper bound, within 19 % of the true value, which is what a metrics line needs. The last
 * bucket has no upper bound: a percentile that falls there is reported as the longest latency seen.
 */
public final class RegistryMetrics {
    private static final int BUCKETS = 96;
    private static final long[] UPPER_MICROS = new long[BUCKETS];

    static {
        double b = 50;
        for (int i = 0; i < BUCKETS; i++) {
            UPPER_MICROS[i] = (long) b;
            b *= Math.pow(2, 0.25);
        }
        UPPER_MICROS[BUCKETS - 1] = Long.MAX_VALUE;
    }

    private final String registry;
    private final LongAdder requests = new LongAdder();
    private final LongAdder bytes = new LongAdder();
    private final LongAdder retries = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final AtomicLongArray latency = new AtomicLongArray(BUCKETS);
    private final LongAccumulator maxMicros = new LongAccumulator(Math::max, 0);
    private final LongAdder latencySumNanos = new LongAdder();

    RegistryMetrics(String registry) {
        this.registry = registry;
    }

    public String registry() {
        return registry;
    }

    void request() {
        requests.increment();
    }

    void bytes(long n) {
        bytes.add(n);
    }

    void retry() {
        retries.increment();
    }

    void error() {
        errors.increment();
    }

    void latencyNanos(long nanos) {
        long micros = nanos / 1000;
        int lo = 0;
        int hi = BUCKETS - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (UPPER_MICROS[mid] >= micros) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        latency.incrementAndGet(lo);
        maxMicros.accumulate(micros);
        latencySumNanos.add(nanos);
    }

    /** Latency buckets, for a Prometheus histogram: {@link #latencyCount} of each. */
    public static int latencyBuckets() {
        return BUCKETS;
    }

    /** The upper bound of latency bucket {@code i} in seconds; +Inf for the last. */
    public static double latencyUpperBoundSeconds(int i) {
        return i == BUCKETS - 1 ? Double.POSITIVE_INFINITY : UPPER_MICROS[i] / 1e6;
    }

    /** Requests whose latency fell in bucket {@code i} (not cumulative). */
    public long latencyCount(int i) {
        return latency.get(i);
    }

    /** Every request's latency added up, in nanoseconds. */
    public long latencySumNanos() {
        return latencySumNanos.sum();
    }

    public long requests() {
        return requests.sum();
    }

    public long bytes() {
        return bytes.sum();
    }

    public long retries() {
        return retries.sum();
    }

    public long errors() {
        return errors.sum();
    }

    /** The latency at quantile {@code q} (0..1) in microseconds, or 0 before any request finished. */
    public long latencyMicros(double q) {
        long total = 0;
        long[] counts = new long[BUCKETS];
        for (int i = 0; i < BUCKETS; i++) {
            counts[i] = latency.get(i);
            total += counts[i];
        }
        if (total == 0) {
            return 0;
        }
        long rank = (long) Math.ceil(q * total);
        long seen = 0;
        for (int i = 0; i < BUCKETS; i++) {
            seen += counts[i];
            if (seen >= rank && counts[i] > 0) {
                return i == BUCKETS - 1 ? maxMicros.get() : UPPER_MICROS[i];
            }
        }
        return maxMicros.get();
    }

    public long p50Micros() {
        return latencyMicros(0.50);
    }

    public long p99Micros() {
        return latencyMicros(0.99);
    }

    /** For the metrics line: {@code registry=H requests=N bytes=N retries=N errors=N p50=Xms p99=Yms}. */
    public String summary() {
        return "registry=" + registry + " requests=" + requests() + " bytes=" + bytes() + " retries=" + retries()
                + " errors=" + errors() + " p50=" + millis(p50Micros()) + " p99=" + millis(p99Micros());
    }

    private static String millis(long micros) {
        return micros >= 10_000 ? (micros / 1000) + "ms" : String.format(java.util.Locale.ROOT, "%.1fms", micros / 1000.0);
    }
}
