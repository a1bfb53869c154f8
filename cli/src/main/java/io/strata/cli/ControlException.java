package io.strata.cli;

/**
 * A control request the daemon refuses, with the HTTP status it answers: 400 for a malformed
 * request, 404 for an unknown export, 409 for one that conflicts with the daemon's state (a name
 * in use, clients connected). The message is the JSON error's text.
 */
final class ControlException extends Exception {
    private static final long serialVersionUID = 1L;

    final int status;

    ControlException(int status, String message) {
        super(message);
        this.status = status;
    }

    static ControlException badRequest(String message) {
        return new ControlException(400, message);
    }
}
