package io.strata.builder.source;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Finds a PAX extended-header record ({@code "LEN KEY=VALUE\n"}, POSIX pax format) in raw tar bytes
 * and returns its value exactly, bytes included that are not UTF-8.
 */
final class PaxRecords {
    private PaxRecords() {
    }

    /** The value of the last record for {@code key} in {@code raw}, or null if there is none. */
    static byte[] rawValue(byte[] raw, String key) {
        byte[] needle = (" " + key + "=").getBytes(StandardCharsets.UTF_8);
        byte[] found = null;
        for (int i = indexOf(raw, needle, 0); i >= 0; i = indexOf(raw, needle, i + 1)) {
            int start = i;
            while (start > 0 && raw[start - 1] >= '0' && raw[start - 1] <= '9') {
                start--;
            }
            if (start == i) {
                continue;
            }
            int len;
            try {
                len = Integer.parseInt(new String(raw, start, i - start, StandardCharsets.US_ASCII));
            } catch (NumberFormatException e) {
                continue;
            }
            int end = start + len; // one past the record's '\n'
            int valueStart = i + needle.length;
            if (len <= 0 || end > raw.length || end - 1 < valueStart || raw[end - 1] != '\n') {
                continue;
            }
            found = Arrays.copyOfRange(raw, valueStart, end - 1);
        }
        return found;
    }

    private static int indexOf(byte[] hay, byte[] needle, int from) {
        outer:
        for (int i = from; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
