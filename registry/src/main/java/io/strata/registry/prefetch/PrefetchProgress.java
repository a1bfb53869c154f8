package io.strata.registry.prefetch;

import java.util.concurrent.atomic.LongAdder;

/**
 * What a prefetch has done, for the metrics line: chunks and compressed bytes planned and done (a
 * chunk is done once it is in the cache, whoever fetched it), the requests it sent (the chunks they
 * fetched count among the cache's misses), the times it held back for reads, and failed requests.
 * Counting allocates nothing.
 */
public final class PrefetchProgress {
    /** running, done (everything planned is cached), stopped (closed), failed (gave up), or off. */
    public enum State { OFF, RUNNING, DONE, STOPPED, FAILED }

    private final PrefetchMode mode;
    final LongAdder plannedChunks = new LongAdder();
    final LongAdder plannedBytes = new LongAdder();
    final LongAdder doneChunks = new LongAdder();
    final LongAdder doneBytes = new LongAdder();
    final LongAdder requests = new LongAdder();
    final LongAdder yields = new LongAdder();
    final LongAdder failures = new LongAdder();
    volatile State state = State.OFF;

    PrefetchProgress(PrefetchMode mode) {
        this.mode = mode;
    }

    public PrefetchMode mode() {
        return mode;
    }

    public State state() {
        return state;
    }

    public long plannedChunks() {
        return plannedChunks.sum();
    }

    public long plannedBytes() {
        return plannedBytes.sum();
    }

    public long doneChunks() {
        return doneChunks.sum();
    }

    public long doneBytes() {
        return doneBytes.sum();
    }

    /** Requests this prefetch sent (each covers one or more merged chunks). */
    public long requests() {
        return requests.sum();
    }

    /** Times a prefetch slot held back because reads were fetching. */
    public long yields() {
        return yields.sum();
    }

    public long failures() {
        return failures.sum();
    }

    /** For the metrics line: {@code prefetch=all:running 45% chunks=120/267 bytes=...}. */
    @Override
    public String toString() {
        long pb = plannedBytes();
        long db = doneBytes();
        return "prefetch=" + mode.cliName() + ":" + state.name().toLowerCase(java.util.Locale.ROOT)
                + " " + (pb == 0 ? 100 : db * 100 / pb) + "% chunks=" + doneChunks() + "/" + plannedChunks()
                + " bytes=" + db + "/" + pb + " prefetch_requests=" + requests() + " prefetch_yields=" + yields()
                + " prefetch_failures=" + failures();
    }
}
