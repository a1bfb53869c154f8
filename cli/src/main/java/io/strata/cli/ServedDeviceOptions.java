package io.strata.cli;

import io.strata.core.device.BlockDevice;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The options every serving command shares (serve nbd, serve vhost-user, attach): a RAFS image given
 * as BOOTSTRAP (a positional parameter of the command) or a plain image with {@code --raw}, where the
 * blobs are, the cache bound, and the legacy-kernel layout.
 */
final class ServedDeviceOptions {
    @Option(names = "--raw", paramLabel = "IMAGE", description = "Serve a plain image file (any disk or filesystem image) instead of a RAFS image.")
    Path raw;

    @Option(names = {"-D", "--blob-dir"}, paramLabel = "BLOBDIR", description = "Directory of blob files (default: blobs/ beside the bootstrap, else its directory).")
    Path blobDir;

    @Option(names = "--cache-size", paramLabel = "SIZE", converter = SizeConverter.class, defaultValue = "256M",
            description = "Decompressed-chunk cache per RAFS image (default: ${DEFAULT-VALUE}).")
    long cacheSize;

    @Option(names = "--legacy-kernel", description = "Serve RAFS images with a rewritten bootstrap for kernels 5.15-6.3.")
    boolean legacyKernel;

    /** Whether BOOTSTRAP or --raw names a device (a command may allow neither, e.g. with --export). */
    boolean given(Path bootstrap) {
        return bootstrap != null || raw != null;
    }

    /** Opens BOOTSTRAP or --raw IMAGE; exactly one must be given. */
    BlockDevice open(CommandLine cmd, Path bootstrap) throws IOException {
        if ((bootstrap == null) == (raw == null)) {
            throw new CommandLine.ParameterException(cmd, "give BOOTSTRAP or --raw IMAGE (one of them)");
        }
        return open(cmd, bootstrap != null ? bootstrap : raw, raw != null);
    }

    /** Opens a named image: a RAFS bootstrap (blobs from -D) or, with {@code isRaw}, a plain file. */
    BlockDevice open(CommandLine cmd, Path path, boolean isRaw) throws IOException {
        return DeviceSpec.open(cmd, path, isRaw, blobDir, cacheSize, legacyKernel);
    }
}
