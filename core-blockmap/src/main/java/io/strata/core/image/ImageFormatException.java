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
        super(file + ": " + field + " = " + value + ": " + problem);
        this.file = file;
        this.field = field;
    }

    public Path file() {
        return file;
    }

    public String field() {
        return field;
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}
