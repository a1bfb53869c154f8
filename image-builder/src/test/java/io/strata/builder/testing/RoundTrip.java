package io.strata.builder.testing;

import io.strata.builder.BuildListener;
import io.strata.builder.BuildOptions;
import io.strata.builder.BuildResult;
import io.strata.builder.ImageBuilder;
import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.export.DeviceExporter;
import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Build, compose with the core's FlatDevice (the reader every image goes through), export, mount
 * with the kernel's EROFS, and hand the mounted tree to a check.
 */
public final class RoundTrip {
    /** A check run while the image is mounted. */
    @FunctionalInterface
    public interface MountedCheck {
        void check(Path mounted) throws Exception;
    }

    /** Warnings a build printed. */
    public static final class Warnings implements BuildListener {
        public final List<String> messages = new ArrayList<>();

        @Override
        public void progress(long done, long total) {
        }

        @Override
        public void warning(String message) {
            messages.add(message);
        }
    }

    private RoundTrip() {
    }

    public static BuildResult build(Path source, Path out, BuildOptions options) throws IOException {
        return ImageBuilder.build(source, out, options, BuildListener.SILENT);
    }

    /** Exports the built image in {@code out} to {@code file} (flat layout, or legacy-kernel). */
    public static Path export(Path out, Path file, boolean legacy) throws IOException {
        try (FlatDevice dev = FlatDevice.open(out.resolve("bootstrap"), new LocalBlobDirectory(out.resolve("blobs")),
                FlatDeviceOptions.defaults().withLegacyKernel(legacy))) {
            DeviceExporter.export(dev, file, null, (d, t) -> { });
        }
        return file;
    }

    public static void mounted(Path deviceFile, Path mountPoint, MountedCheck check) throws Exception {
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(deviceFile, mountPoint)) {
            check.check(m.path());
        }
    }
}
