package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 12-byte header of an inode's inline xattr area ({@code struct erofs_xattr_ibody_header}),
 * followed by {@code sharedCount} 4-byte shared-xattr ids and then the inline entries. The name
 * filter is only consulted when the superblock has the XATTR_FILTER compat bit; a writer without it
 * stores 0.
 */
public record ErofsXattrIbodyHeader(int nameFilter, int sharedCount) {
    public static final int SIZE = 12;
    static final int NAME_FILTER_OFF = 0;
    static final int SHARED_COUNT_OFF = 4;
    static final int RESERVED_OFF = 5;
    static final int RESERVED_SIZE = 7;

    /** {@code i_xattr_icount} for an inline area holding {@code entryBytes} (a multiple of 4) of entries. */
    public static int icountFor(int entryBytes) {
        if (entryBytes % 4 != 0) {
            throw new IllegalArgumentException("xattr entries are 4-byte aligned, got " + entryBytes);
        }
        return 1 + entryBytes / 4;
    }

    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(at + NAME_FILTER_OFF, nameFilter);
        b.put(at + SHARED_COUNT_OFF, (byte) sharedCount);
        for (int i = 0; i < RESERVED_SIZE; i++) {
            b.put(at + RESERVED_OFF + i, (byte) 0);
        }
    }

    public static ErofsXattrIbodyHeader decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return new ErofsXattrIbodyHeader(b.getInt(at + NAME_FILTER_OFF), Byte.toUnsignedInt(b.get(at + SHARED_COUNT_OFF)));
    }
}
