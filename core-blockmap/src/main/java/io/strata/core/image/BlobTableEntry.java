package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One 256-byte entry of the RAFS v6 blob table (Nydus {@code RafsV6Blob}). Strata reads the first
 * 104 bytes; the rest (blob.meta and ToC locations, used by Nydus's own tools) is kept verbatim so a
 * rewritten bootstrap preserves it.
 */
public record BlobTableEntry(
        String blobId,
        int blobIndex,
        long chunkSize,
        long chunkCount,
        int compressionCode,
        int digestCode,
        int features,
        long compressedSize,
        long uncompressedSize,
        byte[] metaInfo) {

    public static final int SIZE = 256;
    static final int BLOB_ID_OFF = 0;
    static final int BLOB_ID_SIZE = 64;
    static final int BLOB_INDEX_OFF = 64;
    static final int CHUNK_SIZE_OFF = 68;
    static final int CHUNK_COUNT_OFF = 72;
    static final int COMPRESSION_OFF = 76;
    static final int DIGEST_OFF = 80;
    static final int FEATURES_OFF = 84;
    static final int COMPRESSED_SIZE_OFF = 88;
    static final int UNCOMPRESSED_SIZE_OFF = 96;
    /** Start of the blob.meta / ToC fields that Strata's reader does not interpret ({@link RafsBlobMetaInfo}). */
    static final int META_INFO_OFF = 104;

    // Blob feature bits (Nydus {@code BlobFeatures}), shared with the blob.meta header.
    /** Uncompressed chunk data is 4 KiB-aligned in the blob's address space. */
    public static final int FEATURE_ALIGNED = 0x1;
    /** The blob carries its chunk digest array (blob.digest). */
    public static final int FEATURE_INLINED_CHUNK_DIGEST = 0x20;
    /** Tar headers follow the data and each trailer item. */
    public static final int FEATURE_HAS_TAR_HEADER = 0x1000_0000;
    /** A ToC ends the blob. */
    public static final int FEATURE_HAS_TOC = 0x2000_0000;
    /** Written by nydus-image 2.2 or newer (tar headers and optionally ToC). */
    public static final int FEATURE_CAP_TAR_TOC = 0x4000_0000;

    public static BlobTableEntry decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        byte[] meta = new byte[SIZE - META_INFO_OFF];
        b.get(at + META_INFO_OFF, meta);
        return new BlobTableEntry(
                DeviceSlot.cString(b, at + BLOB_ID_OFF, BLOB_ID_SIZE),
                b.getInt(at + BLOB_INDEX_OFF),
                Integer.toUnsignedLong(b.getInt(at + CHUNK_SIZE_OFF)),
                Integer.toUnsignedLong(b.getInt(at + CHUNK_COUNT_OFF)),
                b.getInt(at + COMPRESSION_OFF),
                b.getInt(at + DIGEST_OFF),
                b.getInt(at + FEATURES_OFF),
                b.getLong(at + COMPRESSED_SIZE_OFF),
                b.getLong(at + UNCOMPRESSED_SIZE_OFF),
                meta);
    }

    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        byte[] id = new byte[BLOB_ID_SIZE];
        byte[] raw = blobId.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(raw, 0, id, 0, Math.min(raw.length, BLOB_ID_SIZE));
        b.put(at + BLOB_ID_OFF, id);
        b.putInt(at + BLOB_INDEX_OFF, blobIndex);
        b.putInt(at + CHUNK_SIZE_OFF, (int) chunkSize);
        b.putInt(at + CHUNK_COUNT_OFF, (int) chunkCount);
        b.putInt(at + COMPRESSION_OFF, compressionCode);
        b.putInt(at + DIGEST_OFF, digestCode);
        b.putInt(at + FEATURES_OFF, features);
        b.putLong(at + COMPRESSED_SIZE_OFF, compressedSize);
        b.putLong(at + UNCOMPRESSED_SIZE_OFF, uncompressedSize);
        b.put(at + META_INFO_OFF, metaInfo);
    }

    /** Null when the code is unknown (reported by {@link RafsImage} with file and field). */
    public Compression compression() {
        return Compression.ofCode(compressionCode);
    }

    public DigestAlgorithm digest() {
        return DigestAlgorithm.ofCode(digestCode);
    }
}
