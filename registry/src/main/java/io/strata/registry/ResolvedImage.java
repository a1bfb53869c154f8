package io.strata.registry;

import java.util.List;

/**
 * A Nydus image as its manifest describes it.
 *
 * @param reference the reference pinned to the manifest's digest (so every later read names the
 *     same image even if the tag moves)
 * @param manifestDigest sha256 of the manifest bytes
 * @param blobs the data blob layers, in manifest order (a blob's id is its digest's hex)
 * @param bootstrap the bootstrap layer (a gzip tar holding image/image.boot)
 */
public record ResolvedImage(ImageReference reference, String manifestDigest, List<Layer> blobs, Layer bootstrap) {
    public ResolvedImage {
        blobs = List.copyOf(blobs);
    }

    /** One layer: digest and size as the manifest gives them. */
    public record Layer(String digest, long size) {
        /** The Nydus blob id: the digest without "sha256:". */
        public String blobId() {
            return digest.substring("sha256:".length());
        }
    }
}
