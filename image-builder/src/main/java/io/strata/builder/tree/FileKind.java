package io.strata.builder.tree;

import io.strata.core.image.ErofsDirent;
import io.strata.core.image.ErofsInode;

/** The kinds of file an image holds, with their {@code S_IFMT} bits and EROFS directory-entry type. */
public enum FileKind {
    REGULAR(ErofsInode.S_IFREG, ErofsDirent.FT_REG_FILE),
    DIRECTORY(ErofsInode.S_IFDIR, ErofsDirent.FT_DIR),
    SYMLINK(ErofsInode.S_IFLNK, ErofsDirent.FT_SYMLINK),
    CHAR_DEVICE(ErofsInode.S_IFCHR, ErofsDirent.FT_CHRDEV),
    BLOCK_DEVICE(ErofsInode.S_IFBLK, ErofsDirent.FT_BLKDEV),
    FIFO(ErofsInode.S_IFIFO, ErofsDirent.FT_FIFO),
    SOCKET(ErofsInode.S_IFSOCK, ErofsDirent.FT_SOCK);

    public final int typeBits;
    public final int direntType;

    FileKind(int typeBits, int direntType) {
        this.typeBits = typeBits;
        this.direntType = direntType;
    }

    public boolean isDevice() {
        return this == CHAR_DEVICE || this == BLOCK_DEVICE;
    }
}
