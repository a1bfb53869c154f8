package io.strata.core.metrics;

import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * Says why a device's bytes could not be read (a registry that stopped answering, a blob file gone or
 * truncated), at most one line per {@link #INTERVAL_NANOS}: the transports answer each such read with
 * EIO and nothing more, and a registry outage fails thousands of reads a minute. The line after a
 * quiet spell counts the failures left out before it.
 */
public final class ReadFailureLog {
    public static final long INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final Logger log;
    private final long intervalNanos;
    private long lastLogged;
    private boolean loggedOnce;
    private long leftOut;

    public ReadFailureLog(Logger log) {
        this(log, INTERVAL_NANOS);
    }

    public ReadFailureLog(Logger log, long intervalNanos) {
        this.log = log;
        this.intervalNanos = intervalNanos;
    }

    /** Logs (or counts, inside an interval) that the read of {@code what} ("blob X chunk N", a file's region) failed. */
    public void failed(String what, IOException e) {
        long now = System.nanoTime();
        long skipped;
        synchronized (this) {
            if (loggedOnce && now - lastLogged < intervalNanos) {
                leftOut++;
                return;
            }
            skipped = leftOut;
            leftOut = 0;
            lastLogged = now;
            loggedOnce = true;
        }
        String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage().replaceAll("\\s+", " ");
        log.warn("read of {} failed: {}{}", what, why,
                skipped == 0 ? "" : " (and " + skipped + " more failed reads since the last such line)");
    }
}
