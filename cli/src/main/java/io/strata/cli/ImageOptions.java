package io.strata.cli;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The options every command that opens a RAFS image shares: bootstrap, blob directory, cache, layout. */
public final class ImageOptions {
    @Parameters(index = "0", paramLabel = "BOOTSTRAP", description = "The RAFS v6 bootstrap (meta blob).")
    Path bootstrap;

    @Option(names = {"-D", "--blob-dir"}, paramLabel = "BLOBDIR",
            description = "Directory holding the data blobs, each named by its blob id (default: the bootstrap's "
                    + "blobs/ subdirectory, as 'strata build' writes it, if there is one; else the bootstrap's directory).")
    Path blobDir;

    @Option(names = "--cache-size", paramLabel = "SIZE", converter = SizeConverter.class,
            description = "Bound on decompressed-chunk memory (default: ${DEFAULT-VALUE}).", defaultValue = "256M")
    long cacheSize;

    @Option(names = "--legacy-kernel",
            description = "Serve a rewritten bootstrap with absolute chunk addresses and no device table, for kernels 5.15-6.3.")
    boolean legacyKernel;

    FlatDevice open(CommandLine cmd) throws IOException {
        if (!Files.isRegularFile(bootstrap)) {
            throw new CommandLine.ParameterException(cmd, "bootstrap not found: " + bootstrap);
        }
        Path dir = blobDir != null ? blobDir : DeviceSpec.defaultBlobDir(bootstrap);
        if (!Files.isDirectory(dir)) {
            throw new CommandLine.ParameterException(cmd, "blob directory not found: " + dir);
        }
        return FlatDevice.open(bootstrap, new LocalBlobDirectory(dir), new FlatDeviceOptions(cacheSize, legacyKernel));
    }
}
