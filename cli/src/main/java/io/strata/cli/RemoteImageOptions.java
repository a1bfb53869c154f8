package io.strata.cli;

import io.strata.registry.RegistryClient;
import io.strata.registry.cache.BlobCacheDirectory;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The options of every command that accepts an image reference instead of a bootstrap path
 * (inspect, export, serve nbd, serve vhost-user, attach): the registry options
 * ({@link RegistryCliOptions}, shared with push) and where the persistent cache lives. Holds the
 * command's one {@link RegistryClient} and blob cache, made on first use (a command given only local
 * paths makes neither).
 */
final class RemoteImageOptions {
    @CommandLine.Mixin
    RegistryCliOptions registry;

    // $CACHE_DIRECTORY is what systemd sets for a unit's CacheDirectory= (systemd.exec(5)): each
    // unit then caches in its own directory without repeating it in ExecStart.
    @Option(names = "--cache-dir", paramLabel = "DIR", defaultValue = "${env:CACHE_DIRECTORY:-/var/cache/strata}",
            description = "Persistent cache of images given by reference: blobs/ (fetched chunks), bootstraps/ and refs/ "
                    + "(default: $CACHE_DIRECTORY, which systemd sets for CacheDirectory=, else /var/cache/strata; here ${DEFAULT-VALUE}).")
    Path cacheDir;

    @Option(names = "--cache-max", paramLabel = "SIZE", converter = SizeConverter.class,
            description = "Bound on the blob cache's disk use; whole blobs not in use are evicted, least recently used first (default: unbounded).")
    Long cacheMax;

    private RegistryClient client;
    private BlobCacheDirectory blobCache;

    /**
     * Refuses bad registry options at start (one line, exit 2), as every other option is,
     * even when every image given is a local path and they would go unused: a typo in a unit file
     * is then found when it is written, not at the first image by reference.
     */
    void check(CommandLine cmd) {
        registry.options(cmd);
    }

    /** The process's registry client, made on first use from these options. */
    synchronized RegistryClient client(CommandLine cmd) {
        if (client == null) {
            client = registry.client(cmd);
        }
        return client;
    }

    /** The blob cache under {@code --cache-dir}, made (with its directory) on first use. */
    synchronized BlobCacheDirectory blobCache(CommandLine cmd) throws IOException {
        if (blobCache == null) {
            try {
                blobCache = new BlobCacheDirectory(cacheDir.resolve("blobs"), cacheMax == null ? BlobCacheDirectory.UNBOUNDED : cacheMax);
            } catch (java.nio.file.AccessDeniedException e) {
                throw new IOException("cannot create the cache directory " + e.getFile() + ": permission denied (give --cache-dir DIR)");
            }
        }
        return blobCache;
    }

    /** The client, if one was made, for the metrics line. */
    synchronized RegistryClient clientIfMade() {
        return client;
    }
}
