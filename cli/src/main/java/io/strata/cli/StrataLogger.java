package io.strata.cli;

import java.io.PrintStream;
import java.time.Instant;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.event.LoggingEvent;
import org.slf4j.helpers.MessageFormatter;
import org.slf4j.simple.SimpleLogger;

/**
 * slf4j-simple's logger (its levels, from {@code simplelogger.properties}) writing its own lines: an
 * enabled event is one {@link JsonLogLine} on stderr when {@link LogFormat#current()} is JSON, and
 * otherwise one {@link TextLogLine}, the line slf4j-simple would write, without its date formatter.
 */
final class StrataLogger extends SimpleLogger {
    private static final long serialVersionUID = 1L;
    /** Text lines carry a timestamp unless {@link HostLogging} turned it off (the journal stamps them). */
    private static final boolean TIMESTAMPS = !"false".equals(System.getProperty("org.slf4j.simpleLogger.showDateTime"));

    /** Under the journal, each line starts with its syslog priority (sd-daemon(3): "<4>" a warning). */
    private static final boolean JOURNAL = "true".equals(System.getProperty(HostLogging.JOURNAL_PROPERTY));

    private final String shortName;

    StrataLogger(String name) {
        super(name);
        this.shortName = name.substring(name.lastIndexOf('.') + 1);
    }

    @Override
    protected void handleNormalizedLoggingCall(Level level, Marker marker, String pattern, Object[] arguments, Throwable thrown) {
        if (LogFormat.current() == LogFormat.JSON) {
            writeJson(level, pattern, arguments, thrown);
        } else {
            writeText(level, pattern, arguments, thrown);
        }
    }

    /** The fluent API (logger.atInfo()...) arrives here, past handleNormalizedLoggingCall. */
    @Override
    public void log(LoggingEvent event) {
        if (!isLevelEnabled(event.getLevel().toInt())) {
            return;
        }
        if (LogFormat.current() == LogFormat.JSON) {
            writeJson(event.getLevel(), event.getMessage(), event.getArgumentArray(), event.getThrowable());
        } else {
            writeText(event.getLevel(), event.getMessage(), event.getArgumentArray(), event.getThrowable());
        }
    }

    private void writeText(Level level, String pattern, Object[] arguments, Throwable thrown) {
        String message = pattern == null ? "" : MessageFormatter.basicArrayFormat(pattern, arguments);
        String line = TextLogLine.format(System.currentTimeMillis(), TIMESTAMPS, renderLevel(level.toInt()), shortName,
                message == null ? "" : message);
        if (JOURNAL) {
            line = syslogPriority(level) + line;
        }
        PrintStream err = System.err;
        // One event's line and stack trace together, as slf4j-simple keeps them.
        synchronized (StrataLogger.class) {
            err.println(line);
            if (thrown != null) {
                thrown.printStackTrace(err);
            }
            err.flush();
        }
    }

    /** sd-daemon(3)'s prefix: LOG_ERR 3, LOG_WARNING 4, LOG_INFO 6, LOG_DEBUG 7. */
    static String syslogPriority(Level level) {
        switch (level) {
            case ERROR: return "<3>";
            case WARN: return "<4>";
            case INFO: return "<6>";
            default: return "<7>";
        }
    }

    private void writeJson(Level level, String pattern, Object[] arguments, Throwable thrown) {
        String message = pattern == null ? "" : MessageFormatter.basicArrayFormat(pattern, arguments);
        // println on one PrintStream is atomic: lines of concurrent events never interleave.
        System.err.println(JsonLogLine.format(Instant.now(), level.toString(), getName(), message == null ? "" : message, thrown));
    }
}
