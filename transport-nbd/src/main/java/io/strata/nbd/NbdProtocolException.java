package io.strata.nbd;

import java.io.IOException;

/** The peer broke the protocol; the connection is closed with one log line naming the cause. */
public final class NbdProtocolException extends IOException {
    public NbdProtocolException(String message) {
        super(message);
    }
}
