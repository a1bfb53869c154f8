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
        String why = io.strata.core.os.InputFiles.rawImageProblem(path);
        if (why != null) {
            throw new CommandLine.ParameterException(cmd, why.equals(io.strata.core.os.InputFiles.NOT_FOUND)
                    ? "raw image not found: " + path : "raw image " + path + " " + why);
        }
        return RawImageDevice.open(path);
    }
}
