package io.strata.nbd;

import java.time.Duration;

/**
 * Reply coalescing, as a network card's adaptive interrupt moderation, for one connection: when it
 * has answered every request it read, it may wait a moment before it sleeps on its socket, so that
 * the requests the client sends meanwhile arrive together.
 *
 * <p>Why: at queue depth a client sends its next requests as it takes in replies. A connection thread
 * that sleeps on the socket at once is woken by the first of them (fio at queue depth 32, 4 KiB:
 * 1.2 requests per wake-up), and each wake-up costs the kernel a sleep, a wake, a read and a write:
 * most of the server's CPU for a 4 KiB read (docs/benchmarks.md, "NBD server"). A short wait first
 * lets a busy client's requests gather (7 per batch there): fewer, fuller reads and writes for the
 * server, and fewer, fuller receives for the client, which at 4 KiB is the bottleneck. The wait is a
 * timed park; the kernel adds its timer slack (50 us by default), so it lasts 20-70 us.
 *
 * <p>When: never after a batch of one request (a client sending one at a time would only get its
 * replies later) or of large requests (their copies, not wake-ups, are the cost: above
 * {@link #MAX_MEAN_BYTES} each). Otherwise only while waiting answers more requests per second,
 * measured: a client whose whole queue fits one batch (say 4 in flight) sits idle during a wait and
 * loses throughput, a client with many in flight gains. The connection alternates: a probe of
 * {@link #PROBE_BATCHES} batches without waits, one with, then {@link #RUN_PROBES} probes' worth of
 * batches the way that answered requests faster (waits must win by {@link #WIN_MARGIN}), and again.
 *
 * <p>State of one connection's thread; not thread-safe.
 */
final class BatchWait {
    /** Waits follow only batches at least this deep: the client keeps more than one request in flight. */
    static final int MIN_REQUESTS = 2;
    /** Above this mean request size the copies, not the wake-ups, are the cost. */
    static final long MAX_MEAN_BYTES = 64 << 10;
    /** Batches in each probe (each of the two ways). */
    static final int PROBE_BATCHES = 128;
    /** After the probes, the faster way is kept for this many probes' worth of batches: probing costs ~1/20 of the time. */
    static final int RUN_PROBES = 32;
    /** Waits are kept only if they answered requests at least this much faster than no waits. */
    static final double WIN_MARGIN = 1.05;

    private enum Phase { PROBE_WITHOUT, PROBE_WITH, RUN }

    private final long nanos;
    private Phase phase = Phase.PROBE_WITHOUT;
    /** Whether waits are on in this phase. */
    private boolean waiting;
    private long phaseStart = Long.MIN_VALUE;
    private int phaseBatches;
    private long phaseRequests;
    private double rateWithout;

    private int lastRequests;
    private long lastBytes;
    /** A wait was spent since the last batch: the next wait is on the socket. */
    private boolean waited;

    BatchWait(Duration wait) {
        this.nanos = wait.toNanos();
    }

    /** A batch of {@code requests} requests asking for {@code bytes} in all was read at {@code now} (System.nanoTime). */
    void batchRead(int requests, long bytes, long now) {
        waited = false;
        lastRequests = requests;
        lastBytes = bytes;
        if (nanos == 0) {
            return;
        }
        if (phaseStart == Long.MIN_VALUE) {
            phaseStart = now;
        }
        phaseRequests += requests;
        if (++phaseBatches >= (phase == Phase.RUN ? PROBE_BATCHES * RUN_PROBES : PROBE_BATCHES)) {
            double rate = phaseRequests / (double) Math.max(1, now - phaseStart);
            switch (phase) {
                case PROBE_WITHOUT -> {
                    rateWithout = rate;
                    phase = Phase.PROBE_WITH;
                    waiting = true;
                }
                case PROBE_WITH -> {
                    phase = Phase.RUN;
                    waiting = rate >= rateWithout * WIN_MARGIN;
                }
                case RUN -> {
                    phase = Phase.PROBE_WITHOUT;
                    waiting = false;
                }
            }
            phaseStart = now;
            phaseBatches = 0;
            phaseRequests = 0;
        }
    }

    /**
     * Whether to wait {@link #nanos} for more requests now (no request is waiting, the last batch is
     * answered); at most once between two batches.
     */
    boolean waitNow() {
        if (!waiting || waited || lastRequests < MIN_REQUESTS || lastBytes > lastRequests * MAX_MEAN_BYTES) {
            return false;
        }
        waited = true;
        return true;
    }

    long nanos() {
        return nanos;
    }
}
