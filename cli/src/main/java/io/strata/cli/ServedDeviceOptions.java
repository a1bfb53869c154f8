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
    @Option(names = "--raw", paramLabel = "IMAGE", description = "Serve a plain image file (any disk or filesystem image) or a block device instead of a RAFS image.")
    Path raw;

    @Option(names = {"-D", "--blob-dir"}, paramLabel = "BLOBDIR", description = "Directory of blob files (default: blobs/ beside the bootstrap, else its directory).")
    Path blobDir;

    @Option(names = "--cache-size", paramLabel = "SIZE", converter = SizeConverter.class, defaultValue = "256M",
            description = "Decompressed-chunk cache per RAFS image (default: ${DEFAULT-VALUE}).")
    long cacheSize;

    @Option(names = "--legacy-kernel", description = "Serve RAFS images with a rewritten bootstrap for kernels 5.15-6.3.")
    boolean legacyKernel;

    @CommandLine.Mixin
    RemoteImageOptions registry;

    @Option(names = "--prefetch", paramLabel = "MODE", defaultValue = "table",
            description = "For an image given by reference: fill the disk cache in the background, behind the reads: 'table' "
                    + "the files of the image's prefetch table, 'all' then every chunk (the device then survives losing the registry), "
                    + "'none' nothing (default: ${DEFAULT-VALUE}).")
    String prefetch;

    /** The prefetchers started (one per image given by reference). */
    final java.util.List<io.strata.registry.prefetch.Prefetcher> prefetchers = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** The remote blob sources opened so far (one per image given by reference), for the metrics line. */
    final java.util.List<io.strata.registry.cache.RemoteBlobSource> remotes = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** Whether BOOTSTRAP or --raw names a device (a command may allow neither, e.g. with --export). */
    boolean given(String bootstrap) {
        return bootstrap != null || raw != null;
    }

    /** Opens BOOTSTRAP or --raw IMAGE; exactly one must be given. */
    BlockDevice open(CommandLine cmd, String bootstrap) throws IOException {
        if ((bootstrap == null) == (raw == null)) {
            throw new CommandLine.ParameterException(cmd, "give BOOTSTRAP or --raw IMAGE (one of them)");
        }
        return bootstrap != null ? open(cmd, bootstrap, false) : open(cmd, raw.toString(), true);
    }

    /**
     * Opens a named image: a RAFS bootstrap (blobs from -D), an image reference (see
     * {@link ImageSource}) or, with {@code isRaw}, a plain file.
     */
    BlockDevice open(CommandLine cmd, String image, boolean isRaw) throws IOException {
        if (isRaw) {
            return DeviceSpec.openRaw(cmd, java.nio.file.Paths.get(image));
        }
        io.strata.registry.prefetch.PrefetchMode mode;
        try {
            mode = io.strata.registry.prefetch.PrefetchMode.parse(prefetch);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, e.getMessage());
        }
        ImageSource.Opened opened = ImageSource.open(cmd, image, blobDir, registry);
        io.strata.core.device.FlatDeviceOptions deviceOptions = new io.strata.core.device.FlatDeviceOptions(cacheSize, legacyKernel);
        if (opened.remote() == null) {
            return io.strata.core.device.FlatDevice.open(opened.bootstrap(), opened.blobs(), deviceOptions);
        }
        remotes.add(opened.remote());
        RemoteImageDevice remote = RemoteImageDevice.open(opened, mode, registry.registry.connections, deviceOptions, null);
        io.strata.registry.prefetch.Prefetcher prefetcher = remote.prefetcher();
        prefetchers.add(prefetcher);
        io.strata.core.device.FlatDevice device = remote.device();
        remoteOf.put(device, new RemoteParts(opened.remote(), prefetcher));
        return device;
    }

    /** The remote source and prefetch of each device opened by reference, to report them under the device's export. */
    private final java.util.Map<BlockDevice, RemoteParts> remoteOf = java.util.Collections.synchronizedMap(new java.util.IdentityHashMap<>());

    private record RemoteParts(io.strata.registry.cache.RemoteBlobSource source, io.strata.registry.prefetch.Prefetcher prefetcher) {
    }

    /**
     * Registers the metrics of {@code device} served as {@code export} when it was opened by
     * reference (its disk cache and prefetch), and once the registry client's; nothing for a local image.
     */
    void registerMetrics(io.strata.cli.metrics.ServedMetrics served, String export, BlockDevice device) {
        RemoteParts r = remoteOf.get(device);
        if (r == null) {
            return;
        }
        served.addRemoteImage(export, r.source().counters(), r.prefetcher().progress());
        if (!registryMetricsRegistered) {
            registryMetricsRegistered = true;
            served.addRegistryClient(registry::clientIfMade);
        }
    }

    private boolean registryMetricsRegistered;

    /**
     * The registry part of the metrics line: per registry its requests, bytes, retries, errors and
     * fetch latency, then the disk cache's hits and misses summed over the remote images; "" when
     * every image is local.
     */
    String registryMetrics() {
        io.strata.registry.RegistryClient client = registry.clientIfMade();
        if (client == null || remotes.isEmpty()) {
            return "";
        }
        StringBuilder b = new StringBuilder(MetricsLine.registryFields(client));
        long hits = 0;
        long misses = 0;
        long discarded = 0;
        for (io.strata.registry.cache.RemoteBlobSource r : remotes) {
            hits += r.counters().hits();
            misses += r.counters().misses();
            discarded += r.counters().discarded();
        }
        b.append("; disk cache hits=").append(hits).append(" misses=").append(misses).append(" discarded=").append(discarded);
        for (io.strata.registry.prefetch.Prefetcher p : prefetchers) {
            b.append("; ").append(p.progress());
        }
        return b.toString();
    }
}
