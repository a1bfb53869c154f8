package io.strata.cli;

import org.slf4j.LoggerFactory;

/**
 * A line a batch command writes to stderr besides its logs (progress, build warnings, push steps):
 * as plain text, or, under {@code --log-format json}, as a log event of logger {@code strata.WHAT},
 * so that every stderr line is JSON for a log shipper.
 */
final class StatusLine {
    private StatusLine() {
    }

    static void info(String what, String line) {
        if (LogFormat.current() == LogFormat.JSON) {
            LoggerFactory.getLogger("strata." + what).info("{}", line);
        } else {
            System.err.println(line);
            System.err.flush();
        }
    }

    static void warn(String what, String line) {
        if (LogFormat.current() == LogFormat.JSON) {
            LoggerFactory.getLogger("strata." + what).warn("{}", line);
        } else {
            System.err.println(line);
            System.err.flush();
        }
    }
}
