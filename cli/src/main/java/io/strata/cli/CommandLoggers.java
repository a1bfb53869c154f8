package io.strata.cli;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The commands' loggers, looked up when used rather than held in static fields: picocli
 * instantiates every command to build the command line, and an eager logger would start slf4j (and
 * its date formatting) for every command, 0.1 s of each `strata build`.
 */
final class CommandLoggers {
    private CommandLoggers() {
    }

    /** The servers' log: connections, exports, metrics, stop. */
    static Logger serve() {
        return LoggerFactory.getLogger("strata.serve");
    }

    /** Kernel attach: detaching on a signal. */
    static Logger attach() {
        return LoggerFactory.getLogger("strata.attach");
    }
}
