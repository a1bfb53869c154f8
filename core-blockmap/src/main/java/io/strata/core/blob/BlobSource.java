package io.strata.core.blob;

import java.io.IOException;

/** Where data blobs come from, by blob id: a local directory, later a registry. */
public interface BlobSource {
    /** Whether {@link #open} would find the blob; used to list every missing blob at once. */
    boolean exists(String blobId);

    Blob open(String blobId) throws IOException;

    /**
     * Opens a blob knowing where its chunks are: {@code chunks} holds the compressed range of every
     * chunk the image names in it. A remote source fetches whole chunks and merges neighbours with
     * it; a local directory has no use for it.
     */
    default Blob open(String blobId, ChunkRanges chunks) throws IOException {
        return open(blobId);
    }

    /** A human-readable description for logs and error messages. */
    String describe();
}
