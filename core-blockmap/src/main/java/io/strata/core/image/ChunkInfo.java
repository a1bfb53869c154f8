package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One 80-byte entry of the RAFS v6 chunk-info table (Nydus {@code RafsV5ChunkInfo}, reused by v6).
 * It says where a chunk's compressed bytes live in its blob and where its uncompressed bytes sit
 * in that blob's uncompressed address space.
 */
public record ChunkInfo(
        byte[] digest,
        int blobIndex,
        int flags,
        long compressedSize,
        long uncompressedSize,
        long compressedOffset,
        long uncompressedOffset,
        long fileOffset,
        long index,
        int crc32) {

    public static final int SIZE = 80;
    public static final int DIGEST_SIZE = 32;
    static final int DIGEST_OFF = 0;
    static final int BLOB_INDEX_OFF = 32;
    static final int FLAGS_OFF = 36;
    static final int COMPRESSED_SIZE_OFF = 40;
    static final int UNCOMPRESSED_SIZE_OFF = 44;
    static final int COMPRESSED_OFFSET_OFF = 48;
    static final int UNCOMPRESSED_OFFSET_OFF = 56;
    static final int FILE_OFFSET_OFF = 64;
    static final int INDEX_OFF = 72;
    static final int CRC32_OFF = 76;

    public static final int FLAG_COMPRESSED = 0x1;
    public static final int FLAG_HOLE = 0x2;

    public static ChunkInfo decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        byte[] digest = new byte[DIGEST_SIZE];
        b.get(at + DIGEST_OFF, digest);
        return new ChunkInfo(
                digest,
                b.getInt(at + BLOB_INDEX_OFF),
                b.getInt(at + FLAGS_OFF),
                Integer.toUnsignedLong(b.getInt(at + COMPRESSED_SIZE_OFF)),
                Integer.toUnsignedLong(b.getInt(at + UNCOMPRESSED_SIZE_OFF)),
                b.getLong(at + COMPRESSED_OFFSET_OFF),
                b.getLong(at + UNCOMPRESSED_OFFSET_OFF),
                b.getLong(at + FILE_OFFSET_OFF),
                Integer.toUnsignedLong(b.getInt(at + INDEX_OFF)),
                b.getInt(at + CRC32_OFF));
    }

    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.put(at + DIGEST_OFF, digest);
        b.putInt(at + BLOB_INDEX_OFF, blobIndex);
        b.putInt(at + FLAGS_OFF, flags);
        b.putInt(at + COMPRESSED_SIZE_OFF, (int) compressedSize);
        b.putInt(at + UNCOMPRESSED_SIZE_OFF, (int) uncompressedSize);
        b.putLong(at + COMPRESSED_OFFSET_OFF, compressedOffset);
        b.putLong(at + UNCOMPRESSED_OFFSET_OFF, uncompressedOffset);
        b.putLong(at + FILE_OFFSET_OFF, fileOffset);
        b.putInt(at + INDEX_OFF, (int) index);
        b.putInt(at + CRC32_OFF, crc32);
    }

    public boolean isCompressed() {
        return (flags & FLAG_COMPRESSED) != 0;
    }

    public boolean isHole() {
        return (flags & FLAG_HOLE) != 0;
    }
}
