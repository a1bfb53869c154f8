package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 32-byte EROFS inode ({@code struct erofs_inode_compact}). It has no room for a 64-bit size,
 * 32-bit ids or a per-inode mtime: its {@code i_mtime} is an offset from the superblock's epoch
 * (Linux 6.13+), and older kernels, which read those 4 bytes as reserved, show the superblock's
 * build time for every compact inode. A writer therefore uses it only when the file's mtime equals
 * the build time, so every kernel shows the same mtime (see {@link #fits}).
 *
 * <p>The fields shared with the extended inode (format, xattr count, mode, size, union) sit at the
 * offsets named in {@link ErofsInode}.
 */
public record ErofsCompactInode(int format, int xattrIcount, int mode, int nlink, long size, long mtimeOffset,
                                int union, long ino, int uid, int gid) {

    public static final int SIZE = ErofsInode.COMPACT_SIZE;
    static final int NLINK_OFF = 6;
    static final int MTIME_OFF = 12;
    static final int INO_OFF = 20;
    static final int UID_OFF = 24;
    static final int GID_OFF = 26;
    static final int RESERVED_OFF = 28;

    /**
     * Whether an inode with these fields can be compact and read back identically on every kernel:
     * 16-bit ids and link count, a 32-bit size, and the superblock's build time as its mtime.
     */
    public static boolean fits(long uid, long gid, long nlink, long size, long mtime, int mtimeNsec,
                               long buildTime, int buildTimeNsec) {
        return uid >= 0 && uid <= 0xFFFF && gid >= 0 && gid <= 0xFFFF && nlink <= 0xFFFF
                && size >= 0 && size <= 0xFFFF_FFFFL && mtime == buildTime && mtimeNsec == buildTimeNsec;
    }

    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putShort(at + ErofsInode.FORMAT_OFF, (short) (format & ~ErofsInode.FORMAT_EXTENDED));
        b.putShort(at + ErofsInode.XATTR_ICOUNT_OFF, (short) xattrIcount);
        b.putShort(at + ErofsInode.MODE_OFF, (short) mode);
        b.putShort(at + NLINK_OFF, (short) nlink);
        b.putInt(at + ErofsInode.COMPACT_SIZE_OFF, (int) size);
        b.putInt(at + MTIME_OFF, (int) mtimeOffset);
        b.putInt(at + ErofsInode.UNION_OFF, union);
        b.putInt(at + INO_OFF, (int) ino);
        b.putShort(at + UID_OFF, (short) uid);
        b.putShort(at + GID_OFF, (short) gid);
        b.putInt(at + RESERVED_OFF, 0);
    }

    public static ErofsCompactInode decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return new ErofsCompactInode(
                Short.toUnsignedInt(b.getShort(at + ErofsInode.FORMAT_OFF)),
                Short.toUnsignedInt(b.getShort(at + ErofsInode.XATTR_ICOUNT_OFF)),
                Short.toUnsignedInt(b.getShort(at + ErofsInode.MODE_OFF)),
                Short.toUnsignedInt(b.getShort(at + NLINK_OFF)),
                Integer.toUnsignedLong(b.getInt(at + ErofsInode.COMPACT_SIZE_OFF)),
                Integer.toUnsignedLong(b.getInt(at + MTIME_OFF)),
                b.getInt(at + ErofsInode.UNION_OFF),
                Integer.toUnsignedLong(b.getInt(at + INO_OFF)),
                Short.toUnsignedInt(b.getShort(at + UID_OFF)),
                Short.toUnsignedInt(b.getShort(at + GID_OFF)));
    }
}
