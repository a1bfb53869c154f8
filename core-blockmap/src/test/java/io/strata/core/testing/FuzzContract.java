package io.strata.core.testing;

import io.strata.core.image.ImageFormatException;
import java.nio.file.Path;

/**
 * The contract every parser fuzz test checks when the parser refuses its input: the refusal is the
 * project's own format exception, and its one-line message names the file and the field. Anything
 * else escaping the parser (a RuntimeException, an OutOfMemoryError) fails the fuzz test as it is.
 */
public final class FuzzContract {
    private FuzzContract() {
    }

    /** Fails unless {@code e} names {@code file} and a field, on one line. */
    public static void checkRefusal(ImageFormatException e, Path file) {
        String m = e.getMessage();
        if (m == null || !m.startsWith(file + ": ") || e.field() == null || e.field().isEmpty()
                || !m.contains(e.field() + " = ") || m.indexOf('\n') >= 0) {
            throw new AssertionError("format error does not name file and field on one line: " + m, e);
        }
    }
}
