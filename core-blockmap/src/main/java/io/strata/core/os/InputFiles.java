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
