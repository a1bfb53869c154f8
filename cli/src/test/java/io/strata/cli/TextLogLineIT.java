package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.Random;
import java.util.TimeZone;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * (An IT only because the cli module runs its tests after package, with failsafe.) Text log lines keep slf4j-simple's shape ({@code simplelogger.properties}) without its date
 * formatter: the timestamp is the one {@code SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSSZ")} writes,
 * in zones east and west of UTC, with half and quarter hour offsets, across DST changes.
 */
@Timeout(30)
class TextLogLineIT {
    private static final String[] ZONES = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
        "America/St_Johns", "Pacific/Chatham", "Australia/Lord_Howe", "Pacific/Kiritimati", "Pacific/Pago_Pago"};

    @Test
    void timestampsAreThoseOfSlf4jSimplesFormat() {
        Random random = new Random(10);
        for (String id : ZONES) {
            TimeZone zone = TimeZone.getTimeZone(id);
            assertEquals(id, zone.getID());
            SimpleDateFormat expected = new SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSSZ");
            expected.setTimeZone(zone);
            long[] fixed = {0L, 1L, 999L, 1_000L, -1L, 1_764_634_550_954L, 1_711_846_799_999L, 1_711_846_800_000L, 253_402_300_799_999L};
            for (long t : fixed) {
                check(expected, zone, t);
            }
            for (int i = 0; i < 2_000; i++) {
                check(expected, zone, (long) (random.nextDouble() * 4_102_444_800_000L)); // 1970..2100
            }
        }
    }

    private static void check(SimpleDateFormat expected, TimeZone zone, long t) {
        StringBuilder b = new StringBuilder();
        TextLogLine.appendTime(b, t, zone);
        assertEquals(expected.format(new Date(t)), b.toString(), zone.getID() + " at " + t);
    }

    @Test
    void aLineIsTimestampLevelShortNameAndMessage() {
        String line = TextLogLine.format(0L, true, "INFO", "NbdServer", "nbd: listening on unix:/run/x.sock");
        StringBuilder time = new StringBuilder();
        TextLogLine.appendTime(time, 0L, TimeZone.getDefault());
        assertEquals(time + " INFO NbdServer - nbd: listening on unix:/run/x.sock", line);
        assertEquals("WARN serve - stopping", TextLogLine.format(5L, false, "WARN", "serve", "stopping"));
    }

    @Test
    void aClientsNewlineCannotStartALineOfItsOwn() {
        // An NBD client's export name, quoted in "handshake failed: EXPORT_NAME for unknown export '...'".
        String forged = "x\n2026-12-03T09:40:00.000+0000 WARN NbdServer - nbd: FAKE admin login\r\u0000\u001b[31m\u007f\ttab";
        String line = TextLogLine.format(0L, false, "INFO", "NbdServer", "handshake failed: unknown export '" + forged + "'");
        assertEquals("INFO NbdServer - handshake failed: unknown export 'x\\n2026-12-03T09:40:00.000+0000 WARN NbdServer - nbd: FAKE"
                + " admin login\\r\\u0000\\u001b[31m\\u007f\\ttab'", line);
        assertEquals("caf\u00e9 \u6f22", TextLogLine.format(0L, false, "INFO", "x", "caf\u00e9 \u6f22").substring("INFO x - ".length()),
                "printable characters past ASCII stay as they are");
    }
}
