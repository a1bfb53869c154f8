package io.strata.cli;

import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The options every command that opens a RAFS image shares: bootstrap or reference, blob directory, registry, cache, layout. */
public final class ImageOptions {
    @Parameters(index = "0", paramLabel = "IMAGE",
            description = "The RAFS v6 bootstrap (meta blob), or an image reference [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST].")
    String image;

    @CommandLine.Mixin
    RemoteImageOptions registry;

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
        ImageSource.Opened opened = ImageSource.open(cmd, image, blobDir, registry);
        return FlatDevice.open(opened.bootstrap(), opened.blobs(), new FlatDeviceOptions(cacheSize, legacyKernel));
    }
}
