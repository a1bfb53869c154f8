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
        return b.append(level).append(' ').append(shortName).append(" - ").append(message).toString();
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
