package io.strata.nbd;

/** TLS credentials that cannot be used (a missing or unreadable file, a key that does not fit); the message is one line naming the file. */
public final class TlsSetupException extends Exception {
    public TlsSetupException(String message) {
        super(message);
    }

    public TlsSetupException(String message, Throwable cause) {
        super(message, cause);
    }
}
