package io.strata.builder.data;

import io.strata.core.image.RafsBlobMetaInfo;
import java.nio.file.Path;

/** A data blob written to a temporary file: its id (sha256 of the file), sizes and trailer fields. */
public record FinishedBlob(Path file, String id, int blobIndex, long compressedSize, long uncompressedSize,
                           int chunkCount, RafsBlobMetaInfo metaInfo) {
}
