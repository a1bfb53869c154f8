package io.strata.core.blob;

import java.io.IOException;

/** Where data blobs come from, by blob id: a local directory, later a registry. */
public interface BlobSource {
    /** Whether {@link #open} would find the blob; used to list every missing blob at once. */
    boolean exists(String blobId);

    Blob open(String blobId) throws IOException;

    /** A human-readable description for logs and error messages. */
    String describe();
}
