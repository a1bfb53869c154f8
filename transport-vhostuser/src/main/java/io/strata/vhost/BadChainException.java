package io.strata.vhost;

/** A descriptor chain the device cannot use (bad address, loop, wrong direction, too long). */
final class BadChainException extends Exception {
    BadChainException(String message) {
        super(message, null, false, false); // no stack trace: a guest's mistake, logged as one line
    }
}
