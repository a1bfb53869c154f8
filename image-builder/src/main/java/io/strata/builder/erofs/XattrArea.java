package io.strata.builder.erofs;

import io.strata.core.image.ErofsXattrEntry;
import io.strata.core.image.ErofsXattrIbodyHeader;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * An inode's inline xattrs: the 12-byte header then the entries (no shared xattrs). The kernel finds
 * the area right after the inode and sizes it from {@code i_xattr_icount}.
 */
record XattrArea(List<ErofsXattrEntry> entries) {
    static final XattrArea NONE = new XattrArea(List.of());
    /** The most entry bytes {@code i_xattr_icount} (a __le16, 1 + entry bytes / 4) can describe. */
    static final int MAX_ENTRY_BYTES = (0xFFFF - 1) * 4;

    /** Bytes on disk: 0 without xattrs. */
    int size() {
        if (entries.isEmpty()) {
            return 0;
        }
        return ErofsXattrIbodyHeader.SIZE + entryBytes();
    }

    int icount() {
        return entries.isEmpty() ? 0 : ErofsXattrIbodyHeader.icountFor(entryBytes());
    }

    int entryBytes() {
        int n = 0;
        for (ErofsXattrEntry e : entries) {
            n += e.encodedSize();
        }
        return n;
    }

    void encode(ByteBuffer buf, int at) {
        if (entries.isEmpty()) {
            return;
        }
        new ErofsXattrIbodyHeader(0, 0).encode(buf, at);
        int p = at + ErofsXattrIbodyHeader.SIZE;
        for (ErofsXattrEntry e : entries) {
            p += e.encode(buf, p);
        }
    }
}
