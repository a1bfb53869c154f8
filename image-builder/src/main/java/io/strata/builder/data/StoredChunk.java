package io.strata.builder.data;

/**
 * A chunk written to a data blob: which blob, its index in that blob's chunk array, and where its
 * compressed bytes and its 4 KiB-aligned uncompressed space are.
 */
public record StoredChunk(int blobIndex, int indexInBlob, byte[] digest, long compressedOffset, int compressedSize,
                          long uncompressedOffset, int uncompressedSize, boolean compressed) {
}
