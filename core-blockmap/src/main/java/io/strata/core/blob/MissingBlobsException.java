package io.strata.core.blob;

import java.io.IOException;
import java.util.List;

/** An image names blobs that its blob source does not have; lists all of them, not just the first. */
public final class MissingBlobsException extends IOException {
    private final List<String> missing;

    public MissingBlobsException(String source, List<String> missing) {
        super("missing " + missing.size() + " blob(s) in " + source + ": " + String.join(", ", missing));
        this.missing = List.copyOf(missing);
    }

    public List<String> missing() {
        return missing;
    }
}
