package io.strata.cli;

import java.io.PrintStream;

/**
 * Progress for long work: a redrawn bar on a terminal, a plain line every few seconds otherwise
 * (logs and CI), and always a final line.
 */
final class ProgressBar implements AutoCloseable {
    private static final long LINE_INTERVAL_NANOS = 5_000_000_000L;
    private static final long REDRAW_INTERVAL_NANOS = 100_000_000L;
    private final String label;
    private final PrintStream err;
    private final boolean terminal;
    private long lastPrint;
    private long lastDone;
    private long lastTotal;
    private boolean drawn;
    private boolean finished;
    private final long start = System.nanoTime();

    private ProgressBar(String label, PrintStream err, boolean terminal) {
        this.label = label;
        this.err = err;
        this.terminal = terminal;
        this.lastPrint = start;
    }

    /** A redrawn bar only on a terminal and with text logs; JSON logs get the plain lines as events. */
    static ProgressBar forStderr(String label) {
        return new ProgressBar(label, System.err, System.console() != null && LogFormat.current() != LogFormat.JSON);
    }

    void update(long done, long total) {
        lastDone = done;
        lastTotal = total;
        long now = System.nanoTime();
        if (now - lastPrint < (terminal ? REDRAW_INTERVAL_NANOS : LINE_INTERVAL_NANOS)) {
            return;
        }
        lastPrint = now;
        if (terminal) {
            err.print("\r" + render(done, total));
            drawn = true;
        } else {
            StatusLine.info(label, label + ": " + percent(done, total) + "% (" + mib(done) + " of " + mib(total) + " MiB)");
            return;
        }
        err.flush();
    }

    private String render(long done, long total) {
        int width = 40;
        int filled = (int) (width * percent(done, total) / 100);
        return label + " [" + "#".repeat(filled) + " ".repeat(width - filled) + "] " + percent(done, total) + "% "
                + mib(done) + "/" + mib(total) + " MiB";
    }

    /** Capped at 100: a source's total can arrive after some of its bytes are done. */
    private static long percent(long done, long total) {
        return total == 0 ? 100 : Math.min(100, 100 * done / total);
    }

    private static String mib(long bytes) {
        return String.format("%.1f", bytes / 1048576.0);
    }

    /** The work completed: {@link #close} reports its final line. */
    void finished() {
        finished = true;
    }

    @Override
    public void close() {
        if (!finished) {
            // The work failed (its error follows): no final line, which would read "100%" when the
            // failure came at the end of the input; a drawn bar only needs its line ended.
            if (drawn) {
                err.print("\n");
                err.flush();
            }
            return;
        }
        if (lastTotal == 0 && lastDone == 0) {
            return; // nothing to report
        }
        double secs = (System.nanoTime() - start) / 1e9;
        String summary = label + ": " + percent(lastDone, lastTotal) + "% (" + mib(lastDone) + " MiB in "
                + String.format("%.2f", secs) + " s)";
        if (terminal) {
            err.print("\r" + render(lastDone, lastTotal) + "\n");
            err.flush();
        }
        StatusLine.info(label, summary);
    }
}
