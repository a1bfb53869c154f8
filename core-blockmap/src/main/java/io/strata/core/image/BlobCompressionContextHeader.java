package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 4096-byte blob.meta header at the end of a data blob's chunk-info array (Nydus
 * {@code BlobCompressionContextHeader}): it says where the array is, how it is compressed and how
 * many entries it has. Both its first and its last 4 bytes are the magic 0xB10BB10B.
 */
public record BlobCompressionContextHeader(int features, int ciCompressor, long ciEntries, long ciOffset,
                                           long ciCompressedSize, long ciUncompressedSize) {
    public static final int SIZE = 4096;
    public static final int MAGIC = 0xB10BB10B;
    static final int MAGIC_OFF = 0;
    static final int FEATURES_OFF = 4;
    static final int CI_COMPRESSOR_OFF = 8;
    static final int CI_ENTRIES_OFF = 12;
    static final int CI_OFFSET_OFF = 16;
    static final int CI_COMPRESSED_SIZE_OFF = 24;
    static final int CI_UNCOMPRESSED_SIZE_OFF = 32;
    // 40 zran offset u64, 48 zran size u64, 56 zran count u32: zero outside gzip (zran) blobs.
    static final int MAGIC2_OFF = SIZE - 4;

    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(MAGIC_OFF, MAGIC);
        b.putInt(FEATURES_OFF, features);
        b.putInt(CI_COMPRESSOR_OFF, ciCompressor);
        b.putInt(CI_ENTRIES_OFF, (int) ciEntries);
        b.putLong(CI_OFFSET_OFF, ciOffset);
        b.putLong(CI_COMPRESSED_SIZE_OFF, ciCompressedSize);
        b.putLong(CI_UNCOMPRESSED_SIZE_OFF, ciUncompressedSize);
        b.putInt(MAGIC2_OFF, MAGIC);
        return b.array();
    }

    public static BlobCompressionContextHeader decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(at + MAGIC_OFF) != MAGIC || b.getInt(at + MAGIC2_OFF) != MAGIC) {
            throw new IllegalArgumentException("no blob.meta header magic 0xb10bb10b at " + at);
        }
        return new BlobCompressionContextHeader(b.getInt(at + FEATURES_OFF), b.getInt(at + CI_COMPRESSOR_OFF),
                Integer.toUnsignedLong(b.getInt(at + CI_ENTRIES_OFF)), b.getLong(at + CI_OFFSET_OFF),
                b.getLong(at + CI_COMPRESSED_SIZE_OFF), b.getLong(at + CI_UNCOMPRESSED_SIZE_OFF));
    }
}
