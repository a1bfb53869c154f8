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
 * measured: a client whose whole queue fits one batch (fio at queue depth 4) sits idle during a wait
 * and gets a third of the throughput, a client with many in flight gains. So the connection
 * alternates: a probe of {@link #PROBE_BATCHES} batches without waits, then one with waits for as
 * long (or as many batches), then a run the faster way of {@link #RUN_PROBES} probes' worth of
 * batches, twice as long each time the probes decide the same (up to {@link #MAX_RUN_PROBES}), so a
 * steady client pays for probing less and less. Waits must win by {@link #WIN_MARGIN}, and twice in a
 * row to be turned on ({@link #WINS_TO_WAIT}); once on, one lost probe turns them off.
 *
 * <p>State of one connection's thread; not thread-safe.
 */
final class BatchWait {
    /** Waits follow only batches at least this deep: the client keeps more than one request in flight. */
    static final int MIN_REQUESTS = 2;
    /** Above this mean request size the copies, not the wake-ups, are the cost. */
    static final long MAX_MEAN_BYTES = 64 << 10;
    /**
     * Batches in each probe (each of the two ways): ~10 ms at 4 KiB and queue depth 32, long enough for
     * a client's batches to grow once waits begin, and for a preempted thread to be the exception.
     */
    static final int PROBE_BATCHES = 512;
    /** After the probes, the faster way is kept for at least this many probes' worth of batches. */
    static final int RUN_PROBES = 32;
    /** The longest run: a client that changes its ways is found within a few seconds at most. */
    static final int MAX_RUN_PROBES = 64;
    /** Waits are kept only if they answered requests at least this much faster than no waits... */
    static final double WIN_MARGIN = 1.05;
    /**
     * ...in this many probes in a row (one when they are on): a probe lasts a few milliseconds, and a
     * probe without waits during which this thread lost its CPU would otherwise turn waits on for a
     * client that they slow down.
     */
    static final int WINS_TO_WAIT = 2;

    private enum Phase { PROBE_WITHOUT, PROBE_WITH, RUN }

    private final long nanos;
    private Phase phase = Phase.PROBE_WITHOUT;
    /** Whether waits are on in this phase. */
    private boolean waiting;
    private long phaseStart = Long.MIN_VALUE;
    private int phaseBatches;
    private long phaseRequests;
    private double rateWithout;
    private long durationWithout;
    /** The runs' length in probes' worth of batches, and the decision they follow. */
    private int runProbes = RUN_PROBES;
    /** This run's length in batches. */
    private int runBatches;
    private boolean decided;
    /** Probes in a row in which waits were faster. */
    private int wins;

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
            phaseStart = now; // the connection's first batch starts the clock: phases count the batches after it
            return;
        }
        phaseRequests += requests;
        phaseBatches++;
        long elapsed = Math.max(1, now - phaseStart);
        switch (phase) {
            case PROBE_WITHOUT -> {
                if (phaseBatches < PROBE_BATCHES) {
                    return;
                }
                rateWithout = phaseRequests / (double) elapsed;
                durationWithout = elapsed;
                phase = Phase.PROBE_WITH;
                waiting = true;
            }
            case PROBE_WITH -> {
                // As long as the probe without waits took, at most as many batches: a client that waits
                // loses throughput meanwhile, so this probe is no longer than needed to compare.
                if (phaseBatches < PROBE_BATCHES && elapsed < durationWithout) {
                    return;
                }
                boolean faster = phaseRequests / (double) elapsed >= rateWithout * WIN_MARGIN;
                wins = faster ? wins + 1 : 0;
                boolean decision = wins >= WINS_TO_WAIT;
                if (faster && !decision) {
                    runBatches = PROBE_BATCHES; // confirm soon; the runs' length stays as it was
                } else {
                    runProbes = decision == decided ? Math.min(2 * runProbes, MAX_RUN_PROBES) : RUN_PROBES;
                    runBatches = PROBE_BATCHES * runProbes;
                    decided = decision;
                }
                waiting = decision;
                phase = Phase.RUN;
            }
            case RUN -> {
                if (phaseBatches < runBatches) {
                    return;
                }
                phase = Phase.PROBE_WITHOUT;
                waiting = false;
            }
        }
        phaseStart = now;
        phaseBatches = 0;
        phaseRequests = 0;
    }

    /** Whether the connection runs the way the last probes chose (not probing): for tests. */
    boolean running() {
        return phase == Phase.RUN;
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
