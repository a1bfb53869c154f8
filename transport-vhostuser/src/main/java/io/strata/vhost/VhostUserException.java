package io.strata.vhost;

import java.io.IOException;

/** The front-end broke the protocol: the session is closed with one log line naming the cause. */
public final class VhostUserException extends IOException {
    public VhostUserException(String message) {
        super(message);
    }
}
