package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The RAFS v6 superblock extension: 256 bytes right after the EROFS superblock (Nydus
 * {@code RafsV6SuperBlockExt}). It locates the blob table and the chunk-info table.
 */
public record RafsSuperblockExt(
        long flags,
        long blobTableOffset,
        long blobTableSize,
        long chunkSize,
        long chunkTableOffset,
        long chunkTableSize,
        long prefetchTableOffset,
        long prefetchTableSize) {

    public static final int OFFSET = ErofsSuperblock.OFFSET + ErofsSuperblock.SIZE;
    public static final int SIZE = 256;

    static final int FLAGS_OFF = 0;
    static final int BLOB_TABLE_OFFSET_OFF = 8;
    static final int BLOB_TABLE_SIZE_OFF = 16;
    static final int CHUNK_SIZE_OFF = 20;
    static final int CHUNK_TABLE_OFFSET_OFF = 24;
    static final int CHUNK_TABLE_SIZE_OFF = 32;
    static final int PREFETCH_TABLE_OFFSET_OFF = 40;
    static final int PREFETCH_TABLE_SIZE_OFF = 48;

    // Flag bits beyond compression and digest (those live in Compression and DigestAlgorithm).
    public static final long FLAG_EXPLICIT_UID_GID = 0x10;
    public static final long FLAG_HAS_XATTR = 0x20;
    public static final long FLAG_INLINED_CHUNK_DIGEST = 0x100;
    public static final long FLAG_TARFS = 0x200;

    public static RafsSuperblockExt decode(ByteBuffer block0) {
        ByteBuffer b = block0.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int o = OFFSET;
        return new RafsSuperblockExt(
                b.getLong(o + FLAGS_OFF),
                b.getLong(o + BLOB_TABLE_OFFSET_OFF),
                Integer.toUnsignedLong(b.getInt(o + BLOB_TABLE_SIZE_OFF)),
                Integer.toUnsignedLong(b.getInt(o + CHUNK_SIZE_OFF)),
                b.getLong(o + CHUNK_TABLE_OFFSET_OFF),
                b.getLong(o + CHUNK_TABLE_SIZE_OFF),
                b.getLong(o + PREFETCH_TABLE_OFFSET_OFF),
                Integer.toUnsignedLong(b.getInt(o + PREFETCH_TABLE_SIZE_OFF)));
    }

    public void encode(ByteBuffer block0) {
        ByteBuffer b = block0.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int o = OFFSET;
        b.putLong(o + FLAGS_OFF, flags);
        b.putLong(o + BLOB_TABLE_OFFSET_OFF, blobTableOffset);
        b.putInt(o + BLOB_TABLE_SIZE_OFF, (int) blobTableSize);
        b.putInt(o + CHUNK_SIZE_OFF, (int) chunkSize);
        b.putLong(o + CHUNK_TABLE_OFFSET_OFF, chunkTableOffset);
        b.putLong(o + CHUNK_TABLE_SIZE_OFF, chunkTableSize);
        b.putLong(o + PREFETCH_TABLE_OFFSET_OFF, prefetchTableOffset);
        b.putInt(o + PREFETCH_TABLE_SIZE_OFF, (int) prefetchTableSize);
    }
}
