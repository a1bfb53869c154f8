package io.strata.core.image;

import java.io.IOException;
import java.nio.file.Path;

/**
 * An image file is not what its format says it must be. The message always names the file, the
 * on-disk field and the offending value, so that a user can find the problem with a hex dump.
 */
public final class ImageFormatException extends IOException {
    private final Path file;
    private final String field;

    public ImageFormatException(Path file, String field, Object value, String problem) {
        super(oneLine(file + ": " + field + " = " + value + ": " + problem));
        this.file = file;
        this.field = field;
    }

    public Path file() {
        return file;
    }

    public String field() {
        return field;
    }

    /**
     * The message is one line whatever the image holds: names and ids read from it can contain any
     * byte (a fuzzer found a ToC entry name with a newline), so control characters are escaped.
     */
    public static String oneLine(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isISOControl(c)) {
                if (b == null) {
                    b = new StringBuilder(s.length() + 16).append(s, 0, i);
                }
                b.append(String.format("\\x%02x", (int) c));
            } else if (b != null) {
                b.append(c);
            }
        }
        return b == null ? s : b.toString();
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}
