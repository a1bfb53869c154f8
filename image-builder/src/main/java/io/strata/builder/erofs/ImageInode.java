package io.strata.builder.erofs;

import io.strata.builder.tree.Name;
import io.strata.builder.tree.Node;
import io.strata.core.image.ErofsChunkIndex;
import io.strata.core.image.ErofsCompactInode;
import io.strata.core.image.ErofsExtendedInode;
import io.strata.core.image.ErofsInode;
import java.util.List;

/** One inode as laid out in the bootstrap: where it goes, in what form, and what follows it. */
final class ImageInode {
    final Node node;
    /** A path naming it, for messages. */
    final String path;
    /** For directories: children and "." / "..", sorted by unsigned bytes. */
    final List<Name> names;
    final long ino;
    /** The directory whose entry made this inode (the root's parent is itself). */
    ImageInode parent;
    int nlink;
    XattrArea xattrs = XattrArea.NONE;
    long size;
    boolean extended;
    int layout;
    /** Bytes of data stored right after the inode (FLAT_INLINE tail), or 8-byte chunk indexes (CHUNK_BASED). */
    int inlineBytes;
    int chunkIndexes;
    /** Whole blocks of data in the bootstrap's plain-block area, starting at {@link #rawBlkaddr}. */
    long plainBlocks;
    long rawBlkaddr;
    long offset;
    long nid;

    ImageInode(Node node, String path, List<Name> names, long ino) {
        this.node = node;
        this.path = path;
        this.names = names;
        this.ino = ino;
    }

    int inodeSize() {
        return extended ? ErofsExtendedInode.SIZE : ErofsCompactInode.SIZE;
    }

    /** Inode and inline xattrs: the part that must not straddle a block. */
    int headSize() {
        return inodeSize() + xattrs.size();
    }

    /** Everything stored at the inode's place: inode, xattrs, then inline data or chunk indexes. */
    int recordSize() {
        if (layout == ErofsInode.LAYOUT_CHUNK_BASED) {
            return align8(headSize()) + chunkIndexes * ErofsChunkIndex.SIZE;
        }
        return headSize() + inlineBytes;
    }

    static int align8(int n) {
        return (n + 7) & ~7;
    }
}
