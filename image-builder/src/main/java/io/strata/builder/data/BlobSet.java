package io.strata.builder.data;

import io.strata.builder.CompressorSpec;
import io.strata.core.image.ErofsChunkIndex;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The image's data blobs, one per layer that stores at least one new chunk, in layer order; a blob's
 * index is its place in that order (and in the blob and device tables). A layer whose chunks were all
 * stored before, or that has no file data, gets no blob.
 */
public final class BlobSet {
    /** The EROFS device id byte holds blob index + 1, and 0 is the bootstrap. */
    public static final int MAX_BLOBS = 0xFF - 1;

    /** Where blobs are written until the build commits. */
    @FunctionalInterface
    public interface TempFiles {
        Path newTempBlob() throws IOException;
    }

    private final TempFiles temps;
    private final CompressorSpec compressor;
    private final List<FinishedBlob> finished = new ArrayList<>();
    private BlobWriter current;

    public BlobSet(TempFiles temps, CompressorSpec compressor) {
        this.temps = temps;
        this.compressor = compressor;
    }

    /** The current layer's blob, created on its first chunk. */
    BlobWriter writer() throws IOException {
        if (current == null) {
            int index = finished.size();
            if (index >= MAX_BLOBS || index >= ErofsChunkIndex.MAX_CHUNK_INDEX) {
                throw new IOException("more than " + MAX_BLOBS + " layers store data; RAFS v6 addresses at most "
                        + MAX_BLOBS + " blobs");
            }
            current = new BlobWriter(temps.newTempBlob(), index, compressor.compression(), compressor.level());
        }
        return current;
    }

    /** Ends the current layer: its blob (if any) gets its trailer and id. */
    void finishLayer() throws IOException {
        if (current != null) {
            BlobWriter w = current;
            current = null;
            finished.add(w.finish());
        }
    }

    public List<FinishedBlob> finished() {
        return List.copyOf(finished);
    }

    /** Closes a blob left open by a failed build (its temporary file is removed by the output). */
    void abandon() {
        if (current != null) {
            try {
                current.close();
            } catch (IOException ignored) {
                // the build already failed; the temporary file is deleted with the output
            }
            current = null;
        }
    }
}
