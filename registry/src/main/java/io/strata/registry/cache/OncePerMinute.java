package io.strata.registry.cache;

import java.util.concurrent.TimeUnit;

/**
 * A warning said at most once a minute, counting the occurrences left unsaid in between: a full
 * disk fails every store, a bound below what is in use is found over at every check (about once per
 * MiB stored), and a line for each would flood the log.
 */
final class OncePerMinute {
    static final long INTERVAL_NANOS = TimeUnit.MINUTES.toNanos(1);

    private boolean said;
    private long saidAt;
    private long unsaid;

    /** -1: say nothing now; else say it, with how many occurrences went unsaid since it last was (0 or more). */
    synchronized long occurred() {
        long now = System.nanoTime();
        if (said && now - saidAt < INTERVAL_NANOS) {
            unsaid++;
            return -1;
        }
        long before = unsaid;
        said = true;
        saidAt = now;
        unsaid = 0;
        return before;
    }
}
