package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One 128-byte entry of a data blob's table of contents (Nydus {@code TocEntry}): a named item of
 * the blob trailer (image.blob, blob.meta, blob.meta.header, blob.digest), where it is, how big, how
 * compressed, and the sha256 of its uncompressed bytes. The ToC is the last item of the blob.
 */
public record BlobTocEntry(int flags, String name, byte[] uncompressedDigest, long compressedOffset,
                           long compressedSize, long uncompressedSize) {
    public static final int SIZE = 128;
    static final int FLAGS_OFF = 0;
    static final int NAME_OFF = 8;
    static final int NAME_SIZE = 16;
    static final int DIGEST_OFF = 24;
    static final int DIGEST_SIZE = 32;
    static final int COMPRESSED_OFFSET_OFF = 56;
    static final int COMPRESSED_SIZE_OFF = 64;
    static final int UNCOMPRESSED_SIZE_OFF = 72;

    public static final int COMPRESSION_NONE = 0x1;
    public static final int COMPRESSION_ZSTD = 0x2;
    public static final int COMPRESSION_LZ4_BLOCK = 0x4;

    public static final String BLOB_RAW = "image.blob";
    public static final String BLOB_META = "blob.meta";
    public static final String BLOB_META_HEADER = "blob.meta.header";
    public static final String BLOB_DIGEST = "blob.digest";
    public static final String BLOB_TOC = "rafs.blob.toc";

    /** The ToC flag for a chunk compression algorithm. */
    public static int flagFor(Compression c) {
        switch (c) {
            case ZSTD:
                return COMPRESSION_ZSTD;
            case LZ4_BLOCK:
                return COMPRESSION_LZ4_BLOCK;
            case NONE:
                return COMPRESSION_NONE;
            default:
                throw new IllegalArgumentException("no ToC flag for " + c);
        }
    }

    public void encode(ByteBuffer buf, int at) {
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        if (n.length > NAME_SIZE) {
            throw new IllegalArgumentException("ToC entry name longer than 16 bytes: " + name);
        }
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < SIZE; i++) {
            b.put(at + i, (byte) 0);
        }
        b.putInt(at + FLAGS_OFF, flags);
        b.put(at + NAME_OFF, n);
        b.put(at + DIGEST_OFF, uncompressedDigest, 0, DIGEST_SIZE);
        b.putLong(at + COMPRESSED_OFFSET_OFF, compressedOffset);
        b.putLong(at + COMPRESSED_SIZE_OFF, compressedSize);
        b.putLong(at + UNCOMPRESSED_SIZE_OFF, uncompressedSize);
    }

    public static BlobTocEntry decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        byte[] digest = new byte[DIGEST_SIZE];
        b.get(at + DIGEST_OFF, digest);
        return new BlobTocEntry(b.getInt(at + FLAGS_OFF), DeviceSlot.cString(b, at + NAME_OFF, NAME_SIZE), digest,
                b.getLong(at + COMPRESSED_OFFSET_OFF), b.getLong(at + COMPRESSED_SIZE_OFF), b.getLong(at + UNCOMPRESSED_SIZE_OFF));
    }
}
