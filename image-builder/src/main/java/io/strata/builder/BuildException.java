package io.strata.builder;

import java.io.IOException;

/** A source cannot be built into an image; the message names the source and the entry at fault. */
public final class BuildException extends IOException {
    public BuildException(String message) {
        super(message);
    }

    public BuildException(String message, Throwable cause) {
        super(message, cause);
    }
}
