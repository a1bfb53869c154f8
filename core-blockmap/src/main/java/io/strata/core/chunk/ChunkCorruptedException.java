package io.strata.core.chunk;

import java.io.IOException;

/** A chunk's bytes do not match its digest, or do not decompress: the read that needs it fails. */
public final class ChunkCorruptedException extends IOException {
    private static final long serialVersionUID = 1L;

    /** The blob dropped the bad bytes (a remote blob's cache): reading the chunk again fetches a fresh copy. */
    transient boolean refetches;

    public ChunkCorruptedException(String message) {
        super(message);
    }

    public ChunkCorruptedException(String message, Throwable cause) {
        super(message, cause);
    }
}
