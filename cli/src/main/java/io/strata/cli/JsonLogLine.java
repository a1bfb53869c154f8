package io.strata.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * One log event as one line of JSON (RFC 8259), the shape log shippers (Vector, Fluent Bit,
 * Promtail) take without a parser rule: {@code time} (UTC, milliseconds), {@code level},
 * {@code logger}, {@code message}, and {@code exception} (the stack trace) when there is one.
 */
final class JsonLogLine {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSX").withZone(ZoneOffset.UTC);

    private JsonLogLine() {
    }

    static String format(Instant time, String level, String logger, String message, Throwable thrown) {
        StringBuilder b = new StringBuilder(128 + message.length());
        b.append("{\"time\":\"").append(TIME.format(time)).append('"');
        field(b, "level", level);
        field(b, "logger", logger);
        field(b, "message", message);
        if (thrown != null) {
            StringWriter trace = new StringWriter();
            thrown.printStackTrace(new PrintWriter(trace));
            field(b, "exception", trace.toString().stripTrailing());
        }
        return b.append('}').toString();
    }

    private static void field(StringBuilder b, String name, String value) {
        b.append(",\"").append(name).append("\":\"");
        escape(b, value);
        b.append('"');
    }

    /**
     * Escapes what RFC 8259 section 7 requires (quote, backslash, U+0000..U+001F) and every character
     * past ASCII as backslash-u escapes (a pair for a supplementary character, one for a lone
     * surrogate): the line is then plain ASCII, valid and lossless whatever encoding stderr has
     * (a service's is often ASCII, with no LANG set), and never invalid UTF-8.
     */
    static void escape(StringBuilder b, String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20 || c >= 0x7f) {
                        b.append("\\u").append(HEX[c >> 12]).append(HEX[(c >> 8) & 15]).append(HEX[(c >> 4) & 15]).append(HEX[c & 15]);
                    } else {
                        b.append(c);
                    }
                }
            }
        }
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();
}
