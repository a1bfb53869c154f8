package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * A 12-byte EROFS directory entry ({@code struct erofs_dirent}). A directory block holds the entries,
 * then their names; the first entry's {@code nameoff} / 12 is the entry count.
 */
public record ErofsDirent(long nid, int nameoff, int fileType, String name) {
    public static final int SIZE = 12;
    static final int NID_OFF = 0;
    static final int NAMEOFF_OFF = 8;
    static final int FILE_TYPE_OFF = 10;
    static final int RESERVED_OFF = 11;

    // File types ({@code EROFS_FT_*}).
    public static final int FT_UNKNOWN = 0;
    public static final int FT_REG_FILE = 1;
    public static final int FT_DIR = 2;
    public static final int FT_CHRDEV = 3;
    public static final int FT_BLKDEV = 4;
    public static final int FT_FIFO = 5;
    public static final int FT_SOCK = 6;
    public static final int FT_SYMLINK = 7;

    /** Longest name an entry may have ({@code EROFS_NAME_LEN}). */
    public static final int MAX_NAME_LEN = 255;

    /** Writes this entry's 12-byte header at {@code at}; the name goes at {@code nameoff} of its block. */
    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(at + NID_OFF, nid);
        b.putShort(at + NAMEOFF_OFF, (short) nameoff);
        b.put(at + FILE_TYPE_OFF, (byte) fileType);
        b.put(at + RESERVED_OFF, (byte) 0);
    }

    /** Entries of one directory block ({@code length} bytes of the block are used). */
    public static java.util.List<ErofsDirent> decodeBlock(ByteBuffer image, int at, int length) {
        ByteBuffer b = image.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (at < 0 || length < SIZE || (long) at + length > b.limit()) {
            throw new IllegalArgumentException("directory block at " + at + " (" + length + " bytes) lies outside the "
                    + b.limit() + "-byte bootstrap or cannot hold an entry");
        }
        int first = Short.toUnsignedInt(b.getShort(at + NAMEOFF_OFF));
        if (first < SIZE || first % SIZE != 0 || first > length) {
            throw new IllegalArgumentException("directory block at " + at + ": first nameoff " + first + " is invalid");
        }
        int count = first / SIZE;
        java.util.List<ErofsDirent> out = new java.util.ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int e = at + i * SIZE;
            int nameoff = Short.toUnsignedInt(b.getShort(e + NAMEOFF_OFF));
            int nameEnd = i + 1 < count ? Short.toUnsignedInt(b.getShort(e + SIZE + NAMEOFF_OFF)) : length;
            if (nameoff < first || nameEnd > length || nameEnd < nameoff) {
                throw new IllegalArgumentException("directory block at " + at + ": entry " + i + " name range " + nameoff + ".." + nameEnd);
            }
            int n = nameEnd - nameoff;
            if (i + 1 == count) {
                // The last name runs to the end of the used area, NUL-padded.
                while (n > 0 && b.get(at + nameoff + n - 1) == 0) {
                    n--;
                }
            }
            byte[] name = new byte[n];
            b.get(at + nameoff, name);
            out.add(new ErofsDirent(b.getLong(e + NID_OFF), nameoff, Byte.toUnsignedInt(b.get(e + FILE_TYPE_OFF)),
                    new String(name, StandardCharsets.UTF_8)));
        }
        return out;
    }
}
