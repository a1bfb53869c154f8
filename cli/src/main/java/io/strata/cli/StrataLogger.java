package io.strata.cli;

import java.time.Instant;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.event.LoggingEvent;
import org.slf4j.helpers.MessageFormatter;
import org.slf4j.simple.SimpleLogger;

/**
 * slf4j-simple's logger with one more output: when {@link LogFormat#current()} is JSON, an event
 * enabled by slf4j-simple's levels ({@code simplelogger.properties}) is written as one
 * {@link JsonLogLine} to stderr; otherwise slf4j-simple writes its text line as before.
 */
final class StrataLogger extends SimpleLogger {
    private static final long serialVersionUID = 1L;

    StrataLogger(String name) {
        super(name);
    }

    @Override
    protected void handleNormalizedLoggingCall(Level level, Marker marker, String pattern, Object[] arguments, Throwable thrown) {
        if (LogFormat.current() == LogFormat.JSON) {
            writeJson(level, pattern, arguments, thrown);
        } else {
            super.handleNormalizedLoggingCall(level, marker, pattern, arguments, thrown);
        }
    }

    /** The fluent API (logger.atInfo()...) arrives here, past handleNormalizedLoggingCall. */
    @Override
    public void log(LoggingEvent event) {
        if (LogFormat.current() == LogFormat.JSON) {
            if (isLevelEnabled(event.getLevel().toInt())) {
                writeJson(event.getLevel(), event.getMessage(), event.getArgumentArray(), event.getThrowable());
            }
        } else {
            super.log(event);
        }
    }

    private void writeJson(Level level, String pattern, Object[] arguments, Throwable thrown) {
        String message = pattern == null ? "" : MessageFormatter.basicArrayFormat(pattern, arguments);
        // println on one PrintStream is atomic: lines of concurrent events never interleave.
        System.err.println(JsonLogLine.format(Instant.now(), level.toString(), getName(), message == null ? "" : message, thrown));
    }
}
