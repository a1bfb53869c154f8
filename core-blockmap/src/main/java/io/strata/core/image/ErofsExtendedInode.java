package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 64-byte EROFS inode ({@code struct erofs_inode_extended}): 64-bit size, 32-bit ids and link
 * count, and its own mtime with nanoseconds. The fields shared with the compact inode sit at the
 * offsets named in {@link ErofsInode}; bytes 6-7 ({@code i_nb}) are the high bits of a 48-bit block
 * address, which a writer without the 48BIT feature leaves zero.
 */
public record ErofsExtendedInode(int format, int xattrIcount, int mode, long size, int union, long ino,
                                 long uid, long gid, long mtime, int mtimeNsec, long nlink) {

    public static final int SIZE = ErofsInode.EXTENDED_SIZE;
    static final int NB_OFF = 6;
    static final int INO_OFF = 20;
    static final int UID_OFF = 24;
    static final int GID_OFF = 28;
    static final int MTIME_OFF = 32;
    static final int MTIME_NSEC_OFF = 40;
    static final int NLINK_OFF = 44;
    static final int RESERVED_OFF = 48;
    static final int RESERVED_SIZE = 16;

    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putShort(at + ErofsInode.FORMAT_OFF, (short) (format | ErofsInode.FORMAT_EXTENDED));
        b.putShort(at + ErofsInode.XATTR_ICOUNT_OFF, (short) xattrIcount);
        b.putShort(at + ErofsInode.MODE_OFF, (short) mode);
        b.putShort(at + NB_OFF, (short) 0);
        b.putLong(at + ErofsInode.EXTENDED_SIZE_OFF, size);
        b.putInt(at + ErofsInode.UNION_OFF, union);
        b.putInt(at + INO_OFF, (int) ino);
        b.putInt(at + UID_OFF, (int) uid);
        b.putInt(at + GID_OFF, (int) gid);
        b.putLong(at + MTIME_OFF, mtime);
        b.putInt(at + MTIME_NSEC_OFF, mtimeNsec);
        b.putInt(at + NLINK_OFF, (int) nlink);
        for (int i = 0; i < RESERVED_SIZE; i++) {
            b.put(at + RESERVED_OFF + i, (byte) 0);
        }
    }

    public static ErofsExtendedInode decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return new ErofsExtendedInode(
                Short.toUnsignedInt(b.getShort(at + ErofsInode.FORMAT_OFF)),
                Short.toUnsignedInt(b.getShort(at + ErofsInode.XATTR_ICOUNT_OFF)),
                Short.toUnsignedInt(b.getShort(at + ErofsInode.MODE_OFF)),
                b.getLong(at + ErofsInode.EXTENDED_SIZE_OFF),
                b.getInt(at + ErofsInode.UNION_OFF),
                Integer.toUnsignedLong(b.getInt(at + INO_OFF)),
                Integer.toUnsignedLong(b.getInt(at + UID_OFF)),
                Integer.toUnsignedLong(b.getInt(at + GID_OFF)),
                b.getLong(at + MTIME_OFF),
                b.getInt(at + MTIME_NSEC_OFF),
                Integer.toUnsignedLong(b.getInt(at + NLINK_OFF)));
    }
}
