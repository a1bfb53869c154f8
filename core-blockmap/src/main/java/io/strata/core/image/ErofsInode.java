package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The fields of an EROFS on-disk inode that the read side needs, compact (32 B) or extended (64 B)
 * ({@code struct erofs_inode_compact} / {@code erofs_inode_extended}). The inode of nid N starts at
 * {@code meta_blkaddr * 4096 + N * 32}.
 */
public record ErofsInode(long nid, long offset, int format, int xattrIcount, int mode, long size, int rawUnion) {

    public static final int SLOT_SIZE = 32;
    public static final int COMPACT_SIZE = 32;
    public static final int EXTENDED_SIZE = 64;

    static final int FORMAT_OFF = 0;
    static final int XATTR_ICOUNT_OFF = 2;
    static final int MODE_OFF = 4;
    static final int COMPACT_SIZE_OFF = 8;    // u32 in compact inodes
    static final int EXTENDED_SIZE_OFF = 8;   // u64 in extended inodes
    static final int UNION_OFF = 16;          // raw_blkaddr, rdev, or chunk format

    /** i_format bit 0: extended inode. Bits 1-3: data layout. */
    static final int FORMAT_EXTENDED = 0x1;
    public static final int LAYOUT_FLAT_PLAIN = 0;
    public static final int LAYOUT_FLAT_INLINE = 2;
    public static final int LAYOUT_CHUNK_BASED = 4;

    /** Chunk format (in the union): log2(chunk size / block size) in bits 0-4, 8-byte indexes at 0x20. */
    public static final int CHUNK_FORMAT_BLKBITS_MASK = 0x1f;
    public static final int CHUNK_FORMAT_INDEXES = 0x20;
    public static final int CHUNK_INDEX_SIZE = 8;
    /** The xattr body starts with a 12-byte header; each further icount unit is 4 bytes. */
    static final int XATTR_IBODY_HEADER_SIZE = 12;

    public static final int S_IFMT = 0xF000;
    public static final int S_IFSOCK = 0xC000;
    public static final int S_IFLNK = 0xA000;
    public static final int S_IFREG = 0x8000;
    public static final int S_IFBLK = 0x6000;
    public static final int S_IFDIR = 0x4000;
    public static final int S_IFCHR = 0x2000;
    public static final int S_IFIFO = 0x1000;

    /** The {@code i_format} of a compact inode with this data layout (extended inodes add bit 0). */
    public static int formatOf(int dataLayout) {
        return dataLayout << 1;
    }

    /** The chunk format stored in the union of a CHUNK_BASED inode: 8-byte indexes, chunk size in bits 0-4. */
    public static int chunkFormatOf(long chunkSize) {
        if (Long.bitCount(chunkSize) != 1 || chunkSize < RafsImage.BLOCK_SIZE) {
            throw new IllegalArgumentException("chunk size " + chunkSize + " is not a power of two >= 4096");
        }
        return CHUNK_FORMAT_INDEXES | (Long.numberOfTrailingZeros(chunkSize) - RafsImage.BLOCK_BITS);
    }

    public static ErofsInode decode(ByteBuffer image, long metaBlkaddr, long nid) {
        ByteBuffer b = image.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long off = metaBlkaddr * RafsImage.BLOCK_SIZE + nid * SLOT_SIZE;
        int at = (int) off;
        int format = Short.toUnsignedInt(b.getShort(at + FORMAT_OFF));
        boolean extended = (format & FORMAT_EXTENDED) != 0;
        long size = extended ? b.getLong(at + EXTENDED_SIZE_OFF) : Integer.toUnsignedLong(b.getInt(at + COMPACT_SIZE_OFF));
        return new ErofsInode(nid, off, format,
                Short.toUnsignedInt(b.getShort(at + XATTR_ICOUNT_OFF)),
                Short.toUnsignedInt(b.getShort(at + MODE_OFF)),
                size,
                b.getInt(at + UNION_OFF));
    }

    public boolean extended() {
        return (format & FORMAT_EXTENDED) != 0;
    }

    public int inodeSize() {
        return extended() ? EXTENDED_SIZE : COMPACT_SIZE;
    }

    public int dataLayout() {
        return (format >> 1) & 0x7;
    }

    public int xattrSize() {
        return xattrIcount == 0 ? 0 : XATTR_IBODY_HEADER_SIZE + (xattrIcount - 1) * 4;
    }

    public boolean isDirectory() {
        return (mode & S_IFMT) == S_IFDIR;
    }

    /** Byte offset just after the inode and its inline xattrs: where inline data begins. */
    public long inlineDataOffset() {
        return offset + inodeSize() + xattrSize();
    }

    /** For CHUNK_BASED inodes: where the chunk index array starts (8-aligned). */
    public long chunkIndexOffset() {
        return (inlineDataOffset() + 7) & ~7L;
    }

    public int chunkFormat() {
        return rawUnion & 0xffff;
    }

    public long chunkSize() {
        return (long) RafsImage.BLOCK_SIZE << (chunkFormat() & CHUNK_FORMAT_BLKBITS_MASK);
    }

    public long chunkCount() {
        long cs = chunkSize();
        return (size + cs - 1) / cs;
    }

    public long rawBlkaddr() {
        return Integer.toUnsignedLong(rawUnion);
    }
}
