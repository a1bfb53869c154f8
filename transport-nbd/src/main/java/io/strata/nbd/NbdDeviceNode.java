package io.strata.nbd;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * An nbd block device node ({@code /dev/nbdN}) and what the kernel says of it under
 * {@code /sys/dev/block/MAJOR:MINOR}: {@code size} in 512-byte sectors, {@code pid} while a process
 * serves it (created by {@code nbd_start_device}, at NBD_DO_IT), {@code partition} for a partition.
 */
public final class NbdDeviceNode {
    /** {@code NBD_MAJOR}, include/uapi/linux/major.h. */
    static final int NBD_MAJOR = 43;
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;

    private NbdDeviceNode() {
    }

    /**
     * Null when {@code path} is a whole nbd device, else the one-line reason it is not. Anything else
     * (a regular file, /dev/null, a disk, a loop device) would receive nbd ioctls meant for another
     * driver; a partition (/dev/nbd0p1) would configure its whole disk, which the kernel's ioctls act on.
     */
    public static String whyNot(Path path) throws IOException {
        if (!Files.exists(path)) {
            return path + " does not exist (is the nbd module loaded? modprobe nbd)";
        }
        int mode = (Integer) Files.getAttribute(path, "unix:mode");
        if ((mode & S_IFMT) != S_IFBLK) {
            return path + " is not a block device (expected /dev/nbdN)";
        }
        long rdev = (Long) Files.getAttribute(path, "unix:rdev");
        if (major(rdev) != NBD_MAJOR) {
            return path + " is a block device of major " + major(rdev) + ", not an nbd device (major " + NBD_MAJOR + ", /dev/nbdN)";
        }
        if (Files.exists(sysfs(rdev).resolve("partition"))) {
            return path + " is a partition of an nbd device: give the whole device (/dev/nbdN)";
        }
        return null;
    }

    /** {@code /sys/dev/block/MAJOR:MINOR} of the device node {@code path}. */
    static Path sysfs(Path path) throws IOException {
        return sysfs((Long) Files.getAttribute(path, "unix:rdev"));
    }

    private static Path sysfs(long rdev) {
        return Path.of("/sys/dev/block", major(rdev) + ":" + minor(rdev));
    }

    /** The process (thread) serving the device, from its {@code pid} file; empty when none does. */
    static OptionalLong servedBy(Path sysfs) {
        try {
            return OptionalLong.of(Long.parseLong(Files.readString(sysfs.resolve("pid")).trim()));
        } catch (IOException | NumberFormatException noneOrGone) {
            return OptionalLong.empty();
        }
    }

    /** The device's size in 512-byte sectors as the block layer has it (0 before NBD_DO_IT applies it). */
    static long sectors(Path sysfs) {
        try {
            return Long.parseLong(Files.readString(sysfs.resolve("size")).trim());
        } catch (IOException | NumberFormatException unreadable) {
            return 0;
        }
    }

    // glibc's gnu_dev_major / gnu_dev_minor.
    private static long major(long rdev) {
        return ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL);
    }

    private static long minor(long rdev) {
        return (rdev & 0xff) | ((rdev >>> 12) & ~0xffL);
    }
}
