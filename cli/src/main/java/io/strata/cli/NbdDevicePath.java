package io.strata.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Checks that {@code attach} was given an nbd block device: a block special file whose major number
 * is the nbd driver's, 43 ({@code NBD_MAJOR}, include/uapi/linux/major.h). Anything else (a regular
 * file, /dev/null, a disk, a loop device) would receive nbd ioctls meant for another driver, or
 * fail with an errno that explains nothing.
 */
final class NbdDevicePath {
    static final int NBD_MAJOR = 43;
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;

    private NbdDevicePath() {
    }

    /** Null when {@code path} is an nbd device, else the one-line reason it is not. */
    static String whyNot(Path path) throws IOException {
        int mode = (Integer) Files.getAttribute(path, "unix:mode");
        if ((mode & S_IFMT) != S_IFBLK) {
            return path + " is not a block device (expected /dev/nbdN)";
        }
        long rdev = (Long) Files.getAttribute(path, "unix:rdev");
        long major = ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL); // glibc's gnu_dev_major
        if (major != NBD_MAJOR) {
            return path + " is a block device of major " + major + ", not an nbd device (major " + NBD_MAJOR + ", /dev/nbdN)";
        }
        return null;
    }
}
