package io.strata.registry;

import java.io.IOException;

/**
 * A registry operation failed: an unknown image, refused credentials, a manifest that is not a Nydus
 * image, a registry that kept failing past the retry budget. The message is one line, names the
 * registry, repository or digest involved, and never carries credentials or tokens (URLs are shown
 * without their query, which may hold a signed-URL signature).
 */
public class RegistryException extends IOException {
    private static final long serialVersionUID = 1L;

    /** The HTTP status that ended the operation, or 0 when it did not end with one. */
    private final int status;

    public RegistryException(String message) {
        this(message, 0, null);
    }

    public RegistryException(String message, int status) {
        this(message, status, null);
    }

    public RegistryException(String message, int status, Throwable cause) {
        super(oneLine(message), cause);
        this.status = status;
    }

    public int status() {
        return status;
    }

    static String oneLine(String s) {
        if (s == null) {
            return "";
        }
        StringBuilder b = new StringBuilder(Math.min(s.length(), 600));
        for (int i = 0; i < s.length() && b.length() < 600; i++) {
            char c = s.charAt(i);
            b.append(c == '\n' || c == '\r' || c == '\t' ? ' ' : c < 0x20 || c == 0x7f ? '?' : c);
        }
        return b.toString();
    }
}
