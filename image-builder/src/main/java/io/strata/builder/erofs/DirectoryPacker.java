package io.strata.builder.erofs;

import io.strata.builder.tree.Name;
import io.strata.core.image.ErofsDirent;
import io.strata.core.image.RafsImage;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Packs a directory's entries into EROFS directory blocks: entries (sorted by unsigned bytes, "." and
 * ".." included) fill each 4 KiB block with their 12-byte headers first, then their names, unpadded;
 * the kernel takes a name's end from the next entry's {@code nameoff}, and the last name of a block
 * runs to the NUL padding or the block's end ({@code erofs_readdir}, {@code erofs_namei}). The
 * directory's size ends right after the last name of its last block.
 */
final class DirectoryPacker {
    private static final int BLOCK = RafsImage.BLOCK_SIZE;

    private DirectoryPacker() {
    }

    /** The directory's {@code i_size} for these names (in order). */
    static long size(List<Name> names) {
        long full = 0;
        int used = 0;
        for (Name n : names) {
            int need = ErofsDirent.SIZE + n.length();
            if (used + need > BLOCK) {
                full++;
                used = 0;
            }
            used += need;
        }
        return full * BLOCK + used;
    }

    /** The directory's bytes ({@code size} of them): full blocks zero-padded, the last block as used. */
    static byte[] encode(List<DirEntry> entries, long size) {
        byte[] out = new byte[Math.toIntExact(size)];
        ByteBuffer buf = ByteBuffer.wrap(out);
        int start = 0;
        int blockStart = 0;
        while (start < entries.size()) {
            int end = start;
            int used = 0;
            while (end < entries.size() && used + ErofsDirent.SIZE + entries.get(end).name().length() <= BLOCK) {
                used += ErofsDirent.SIZE + entries.get(end).name().length();
                end++;
            }
            int nameoff = (end - start) * ErofsDirent.SIZE;
            for (int i = start; i < end; i++) {
                DirEntry e = entries.get(i);
                new ErofsDirent(e.nid(), nameoff, e.fileType(), null).encode(buf, blockStart + (i - start) * ErofsDirent.SIZE);
                e.name().copyTo(out, blockStart + nameoff);
                nameoff += e.name().length();
            }
            start = end;
            blockStart += BLOCK;
        }
        return out;
    }
}
