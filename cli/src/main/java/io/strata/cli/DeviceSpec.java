package io.strata.cli;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.device.RawImageDevice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;

/** Opens what a serve command names: a RAFS bootstrap (with its blob directory) or a raw image file. */
final class DeviceSpec {
    private DeviceSpec() {
    }

    /** Where blobs are when -D is not given: {@code blobs/} beside the bootstrap (as {@code strata build} writes it), else its directory. */
    static Path defaultBlobDir(Path bootstrap) {
        Path parent = bootstrap.toAbsolutePath().getParent();
        return Files.isDirectory(parent.resolve("blobs")) ? parent.resolve("blobs") : parent;
    }

    static BlockDevice open(CommandLine cmd, Path path, boolean raw, Path blobDir, long cacheBytes, boolean legacy)
            throws IOException {
        if (!Files.isRegularFile(path)) {
            throw new CommandLine.ParameterException(cmd, (raw ? "image" : "bootstrap") + " not found: " + path);
        }
        if (raw) {
            return RawImageDevice.open(path);
        }
        Path dir = blobDir != null ? blobDir : defaultBlobDir(path);
        if (!Files.isDirectory(dir)) {
            throw new CommandLine.ParameterException(cmd, "blob directory not found: " + dir);
        }
        return FlatDevice.open(path, new LocalBlobDirectory(dir), new FlatDeviceOptions(cacheBytes, legacy));
    }
}
