package io.strata.core.os;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Files given as options that Strata reads whole (a prefetch list, a daemon config, TLS keys): what makes one
 * unusable before the read starts. A named FIFO would be read until something writes to it (for
 * ever, with nothing said); a pipe handed over as {@code /dev/fd/N} or {@code /dev/stdin}
 * ({@code <(...)}, a shell pipe) has a writer and is read as a file, so symbolic links are followed
 * only to refuse a directory.
 */
public final class InputFiles {
    private InputFiles() {
    }

    /** The file-type bits of st_mode (inode(7)), as {@code Files.getAttribute(path, "unix:mode")} gives them. */
    static final int S_IFMT = 0170000;
    static final int S_IFSOCK = 0140000;
    static final int S_IFREG = 0100000;
    static final int S_IFBLK = 0060000;
    static final int S_IFDIR = 0040000;
    static final int S_IFCHR = 0020000;
    static final int S_IFIFO = 0010000;

    /** What {@link #rawImageProblem} says of a path where nothing is. */
    public static final String NOT_FOUND = "not found";

    /**
     * Why {@code path} cannot be served as a raw image, or null: a regular file or a block device (a
     * loop device, a logical volume, a disk, as qemu-nbd serves them; the JDK sizes a block device
     * with BLKGETSIZE64). A FIFO would block the open for ever, a character device has no size.
     * {@link #NOT_FOUND} when nothing is there.
     */
    public static String rawImageProblem(Path path) {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode"); // follows links, as the open does
        } catch (java.nio.file.NoSuchFileException e) {
            return NOT_FOUND;
        } catch (IOException | UnsupportedOperationException e) {
            return "cannot be read: " + e.getMessage();
        }
        return switch (mode & S_IFMT) {
            case S_IFREG, S_IFBLK -> null;
            case S_IFDIR -> "is a directory";
            case S_IFIFO -> "is a FIFO";
            case S_IFSOCK -> "is a socket";
            case S_IFCHR -> "is a character device, not a block device";
            default -> "is not a regular file or a block device";
        };
    }

    /** Why {@code file} cannot be read as a file, or null (also when it is missing: the read says so). */
    public static String problem(Path file) {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (IOException missingOrUnreadable) {
            return null;
        }
        if (a.isDirectory() || a.isSymbolicLink() && Files.isDirectory(file)) {
            return "is a directory";
        }
        if (a.isOther()) {
            return "is not a regular file (a FIFO, socket or device)";
        }
        return null;
    }
}
