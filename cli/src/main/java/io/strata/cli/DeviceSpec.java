package io.strata.cli;

import io.strata.core.device.BlockDevice;
import io.strata.core.device.RawImageDevice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;

/** Where a bootstrap's blobs are by default, and opening a raw image file (RAFS images: {@link ImageSource}). */
final class DeviceSpec {
    private DeviceSpec() {
    }

    /** Where blobs are when -D is not given: {@code blobs/} beside the bootstrap (as {@code strata build} writes it), else its directory. */
    static Path defaultBlobDir(Path bootstrap) {
        Path parent = bootstrap.toAbsolutePath().getParent();
        return Files.isDirectory(parent.resolve("blobs")) ? parent.resolve("blobs") : parent;
    }

    static BlockDevice openRaw(CommandLine cmd, Path path) throws IOException {
        String why = notARawImage(path);
        if (why != null) {
            throw new CommandLine.ParameterException(cmd, why.equals(NOT_FOUND) ? "raw image not found: " + path
                    : "raw image " + path + " " + why);
        }
        return RawImageDevice.open(path);
    }

    private static final String NOT_FOUND = "not found";

    /** The file type bits of st_mode (stat(2)). */
    private static final int S_IFMT = 0170000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFBLK = 0060000;

    /**
     * Why {@code path} cannot be served as a raw image, or null: a regular file or a block device (a
     * loop device, a logical volume, a disk, as qemu-nbd serves them; the JDK sizes a block device
     * with BLKGETSIZE64). A FIFO would block the open for ever, a character device has no size.
     */
    static String notARawImage(Path path) {
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
            case 0040000 -> "is a directory";
            case 0010000 -> "is a FIFO";
            case 0140000 -> "is a socket";
            case 0020000 -> "is a character device, not a block device";
            default -> "is not a regular file or a block device";
        };
    }
}
