package io.strata.cli;

import java.util.List;
import picocli.CommandLine;

/**
 * How log lines are written (issue 11 part 6): {@code text}, one human-readable line per event as
 * slf4j-simple writes it, or {@code json}, one JSON object per line for log shippers. The choice
 * takes effect when {@code --log-format} is parsed; {@link StrataLogger} reads it on every event, so
 * loggers created earlier follow it too.
 */
enum LogFormat {
    TEXT, JSON;

    private static volatile LogFormat current = TEXT;

    static LogFormat current() {
        return current;
    }

    static void use(LogFormat format) {
        current = format;
    }

    /** Parses {@code text} or {@code json} (any case); anything else is a bad argument. */
    static final class Converter implements CommandLine.ITypeConverter<LogFormat> {
        @Override
        public LogFormat convert(String value) {
            for (LogFormat f : values()) {
                if (f.name().equalsIgnoreCase(value)) {
                    return f;
                }
            }
            throw new CommandLine.TypeConversionException("expected text or json, got '" + value + "'");
        }
    }

    /** The values the shell completion offers. */
    static final class Names implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return List.of("text", "json").iterator();
        }
    }
}
