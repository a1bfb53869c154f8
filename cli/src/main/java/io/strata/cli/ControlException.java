package io.strata.cli;

/**
 * A control request the daemon refuses, with the HTTP status it answers: 400 for a malformed
 * request or an image that cannot be served, 404 for an unknown export, 409 for one that conflicts
 * with the daemon's state (a name in use, clients connected). The message is the JSON error's text.
 * {@link #badArgument} tells a request at fault (malformed, a missing file, a value out of range)
 * from one that failed for a reason outside it (a registry not reachable, a broken image): `strata
 * ctl` exits 2 for the first and 1 for the second, as `strata serve` would for the same source.
 */
final class ControlException extends Exception {
    private static final long serialVersionUID = 1L;

    final int status;
    final boolean badArgument;

    ControlException(int status, String message) {
        this(status, message, status == 400);
    }

    ControlException(int status, String message, boolean badArgument) {
        super(message);
        this.status = status;
        this.badArgument = badArgument;
    }

    static ControlException badRequest(String message) {
        return new ControlException(400, message);
    }
}
