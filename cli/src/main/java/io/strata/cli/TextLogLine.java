package io.strata.cli;

import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.TimeZone;

/**
 * One log event as the human-readable line slf4j-simple would write with Strata's settings
 * ({@code simplelogger.properties}): {@code 2026-12-02T00:15:50.954+0000 INFO NbdServer - message},
 * the timestamp in the local time zone (slf4j-simple's {@code yyyy-MM-dd'T'HH:mm:ss.SSSZ}), left out
 * under the systemd journal ({@link HostLogging}).
 *
 * <p>Written here rather than by slf4j-simple because slf4j-simple formats the time with a
 * {@code java.text.SimpleDateFormat} made when its first logger is, and that loads the JDK's locale
 * data (CLDR calendars, date and number symbols): tens of milliseconds of CPU in every server's start
 * before its "listening" line (docs/benchmarks.md, "Start-up and idle footprint"). The time zone's
 * offset and plain digits need none of it.
 */
final class TextLogLine {
    private TextLogLine() {
    }

    static String format(long epochMillis, boolean timestamp, String level, String shortName, String message) {
        StringBuilder b = new StringBuilder(48 + message.length());
        if (timestamp) {
            appendTime(b, epochMillis, TimeZone.getDefault());
            b.append(' ');
        }
        b.append(level).append(' ').append(shortName).append(" - ");
        appendOneLine(b, message);
        return b.toString();
    }

    /**
     * Appends {@code message} with its control characters escaped (backslash and n, r or t, else a
     * backslash-u escape of four hex digits): a message may quote what a client sent (an NBD export name, a registry's
     * error text), and a newline there would let a client write a line of its own into the log (the
     * journal takes each line as an entry). Stack traces are written after the line, as before.
     */
    static void appendOneLine(StringBuilder b, String message) {
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            if (c >= 0x20 && c != 0x7f) {
                b.append(c);
            } else if (c == '\n') {
                b.append("\\n");
            } else if (c == '\r') {
                b.append("\\r");
            } else if (c == '\t') {
                b.append("\\t");
            } else {
                b.append("\\u00").append(Character.forDigit(c >> 4, 16)).append(Character.forDigit(c & 0xf, 16));
            }
        }
    }

    /** {@code yyyy-MM-dd'T'HH:mm:ss.SSSZ} of {@code epochMillis} in {@code zone}, e.g. 2026-12-02T00:15:50.954+0100. */
    static void appendTime(StringBuilder b, long epochMillis, TimeZone zone) {
        int offsetSeconds = zone.getOffset(epochMillis) / 1000;
        LocalDateTime t = LocalDateTime.ofEpochSecond(Math.floorDiv(epochMillis, 1000L), (int) Math.floorMod(epochMillis, 1000L) * 1_000_000,
                ZoneOffset.ofTotalSeconds(offsetSeconds));
        pad(b, t.getYear(), 4).append('-');
        pad(b, t.getMonthValue(), 2).append('-');
        pad(b, t.getDayOfMonth(), 2).append('T');
        pad(b, t.getHour(), 2).append(':');
        pad(b, t.getMinute(), 2).append(':');
        pad(b, t.getSecond(), 2).append('.');
        pad(b, t.getNano() / 1_000_000, 3);
        int offsetMinutes = Math.abs(offsetSeconds) / 60;
        b.append(offsetSeconds < 0 ? '-' : '+');
        pad(b, offsetMinutes / 60, 2);
        pad(b, offsetMinutes % 60, 2);
    }

    private static StringBuilder pad(StringBuilder b, int value, int digits) {
        String s = Integer.toString(value);
        for (int i = s.length(); i < digits; i++) {
            b.append('0');
        }
        return b.append(s);
    }
}
