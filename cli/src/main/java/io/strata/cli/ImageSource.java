package io.strata.cli;

import io.strata.core.blob.BlobSource;
import io.strata.core.blob.LocalBlobDirectory;
import io.strata.registry.ImageReference;
import io.strata.registry.RegistryClient;
import io.strata.registry.RegistryException;
import io.strata.registry.RegistryUnreachableException;
import io.strata.registry.ResolvedImage;
import io.strata.registry.cache.RemoteBlobSource;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import picocli.CommandLine;

/**
 * Turns the image argument of a command into a bootstrap file and the source of its data blobs.
 *
 * <p>An argument is a <b>reference</b> when it starts with {@code docker://}, or when no file or
 * directory of that name exists and its first path component names a registry host: it contains a
 * '.' or a ':' or is {@code localhost} ({@link ImageReference#looksLikeReference}, the grammar of
 * distribution's reference package). Anything else is a local bootstrap path, as before; so
 * {@code ./localhost:5000/x} or an existing file always means the file.
 *
 * <p>A reference is resolved to its Nydus manifest; the bootstrap layer is fetched, its digest
 * checked and {@code image.boot} unpacked to {@code CACHE_DIR/bootstraps/<layer digest>/bootstrap}
 * (content-addressed, so reused as is); the data blobs are read lazily through a
 * {@link RemoteBlobSource} over {@code CACHE_DIR/blobs}. What a reference resolved to is remembered
 * in {@code CACHE_DIR/refs/}, so that with the registry unreachable (no HTTP answer at all) a warm
 * cache still serves the image last resolved for that reference, with a warning.
 */
final class ImageSource {
    /** A bootstrap and where its blobs come from; {@code remote} is null for a local image. */
    record Opened(Path bootstrap, BlobSource blobs, RemoteBlobSource remote) {
    }

    private ImageSource() {
    }

    /** Whether a command-line image argument is a registry reference rather than a local path (see the class comment). */
    static boolean isReference(String arg) {
        if (arg.startsWith(ImageReference.DOCKER_SCHEME)) {
            return true;
        }
        try {
            if (Files.exists(Paths.get(arg))) {
                return false;
            }
        } catch (InvalidPathException e) {
            return false;
        }
        return ImageReference.looksLikeReference(arg);
    }

    /** Opens a local bootstrap (blobs from {@code blobDir}, or beside it) or a reference. */
    static Opened open(CommandLine cmd, String arg, Path blobDir, RemoteImageOptions registry) throws IOException {
        if (isReference(arg)) {
            ImageReference ref;
            try {
                ref = ImageReference.parse(arg);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cmd, e.getMessage());
            }
            if (blobDir != null) {
                throw new CommandLine.ParameterException(cmd, "--blob-dir is for a local bootstrap, not a reference (" + arg + ")");
            }
            return openRemote(cmd, ref, registry);
        }
        Path bootstrap = Paths.get(arg);
        if (Files.isDirectory(bootstrap) && Files.isRegularFile(bootstrap.resolve("bootstrap"))) {
            throw new CommandLine.ParameterException(cmd, arg + " is a directory: give its bootstrap (" + bootstrap.resolve("bootstrap") + ")");
        }
        if (Files.exists(bootstrap) && !Files.isRegularFile(bootstrap)) {
            throw new CommandLine.ParameterException(cmd, arg + " is not a bootstrap file (" + (Files.isDirectory(bootstrap)
                    ? "a directory" : "not a regular file") + ")");
        }
        if (!Files.isRegularFile(bootstrap)) {
            int slash = arg.indexOf('/');
            // HOST/REPO with an upper-case or dot-less host reads as a path: say why it is not a reference.
            boolean maybeReference = slash > 0 && !arg.startsWith(".") && bootstrap.getParent() != null
                    && !Files.isDirectory(bootstrap.getParent());
            throw new CommandLine.ParameterException(cmd, "bootstrap not found: " + arg + (maybeReference ? " (nor an image reference: a registry host has a '.', a ':PORT' or is localhost,"
                    + " and repository names are lower case)" : ""));
        }
        Path dir = blobDir != null ? blobDir : DeviceSpec.defaultBlobDir(bootstrap);
        if (!Files.isDirectory(dir)) {
            throw new CommandLine.ParameterException(cmd, "blob directory not found: " + dir);
        }
        return new Opened(bootstrap, new LocalBlobDirectory(dir), null);
    }

    private static Opened openRemote(CommandLine cmd, ImageReference ref, RemoteImageOptions options) throws IOException {
        warmUpWhileResolving();
        long started = System.nanoTime();
        RegistryClient client = options.client(cmd);
        Path cacheDir = options.cacheDir;
        Path refFile = cacheDir.resolve("refs").resolve(fileName(ref.toString()) + ".properties");
        ResolvedImage image;
        try {
            image = client.resolve(ref);
        } catch (RegistryException e) {
            // Only "no answer at all" (connection refused, DNS, deadline) falls back; a registry that
            // answers "unknown tag", "not authorized" or a manifest that is not a Nydus image is believed.
            if (!(e instanceof RegistryUnreachableException) || !Files.isRegularFile(refFile)) {
                throw e;
            }
            image = load(ref, refFile);
            CommandLoggers.serve().warn("{}: registry unreachable ({}); using the image last resolved for it, {}",
                    ref, e.getMessage(), image.manifestDigest());
        }
        long resolved = System.nanoTime();
        Path bootDir = cacheDir.resolve("bootstraps").resolve(image.bootstrap().blobId());
        Path bootstrap = RegistryClient.cachedBootstrap(bootDir).orElse(null);
        boolean cached = bootstrap != null;
        if (!cached) {
            // fetchBootstrap verifies the layer's digest and moves the unpacked file into place atomically.
            bootstrap = client.fetchBootstrap(image, bootDir);
        }
        long fetched = System.nanoTime();
        // Where a remote start's time goes (time to first byte): the process's own start, the
        // manifest resolution, the bootstrap layer.
        long sinceStart = ProcessHandle.current().info().startInstant()
                .map(t -> java.time.Duration.between(t, java.time.Instant.now()).toMillis()).orElse(-1L);
        CommandLoggers.serve().info("{}: resolved in {} ms, bootstrap layer ({} bytes) {} in {} ms; {} ms after the process started",
                ref, (resolved - started) / 1_000_000, image.bootstrap().size(), cached ? "cached" : "fetched and unpacked",
                (fetched - resolved) / 1_000_000, sinceStart);
        saveIfPossible(image, refFile);
        Map<String, Long> sizes = new HashMap<>();
        for (ResolvedImage.Layer l : image.blobs()) {
            sizes.put(l.blobId(), l.size());
        }
        ImageReference pinned = image.reference();
        RemoteBlobSource remote = new RemoteBlobSource(options.blobCache(cmd),
                id -> client.blob(pinned, "sha256:" + id, sizes.getOrDefault(id, -1L)),
                pinned.registry() + "/" + pinned.repository());
        return new Opened(bootstrap, remote, remote);
    }

    /**
     * While the registry answers (round trips: manifest, bootstrap layer), initialises on daemon
     * threads what the resolution and the first NBD read would otherwise pay for in turn: the JSON
     * reader of the manifest (jackson-core's parser and the tree nodes), the I/O buffers and the zstd
     * library (a native library unpacked and loaded on first use). The main thread meanwhile builds the HTTP client and sends the manifest request. Best
     * effort: a failure here shows again, with its real context, where the code is used.
     */
    private static void warmUpWhileResolving() {
        // Two threads beside the main one: on a busy machine each runnable thread gets its share of the CPU.
        Thread json = new Thread(() -> {
            try {
                RegistryClient.prepareJson();
            } catch (java.io.IOException | RuntimeException | LinkageError e) {
                // Best effort, see above.
            }
        }, "strata-warm-up-json");
        json.setDaemon(true);
        json.start();
        Thread t = new Thread(() -> {
            try {
                io.strata.core.buffer.NativeBuffer.allocate(4096).close();
            } catch (RuntimeException | LinkageError e) {
                // Best effort, see above.
            }
            try {
                new com.github.luben.zstd.ZstdDecompressCtx().close();
            } catch (RuntimeException | LinkageError e) {
                // Best effort, see above.
            }
        }, "strata-warm-up");
        t.setDaemon(true);
        t.start();
    }

    /** A file name for a reference: its text with everything but [A-Za-z0-9._-] replaced. */
    private static String fileName(String ref) {
        return ref.replaceAll("[^A-Za-z0-9._-]", "_");
    }

    /**
     * Records the resolution for a later start without the registry. Best effort: a cache disk that
     * is full or not writable costs that fallback, not this start (it failed every start of an
     * image whose bootstrap and blobs were all cached).
     */
    private static void saveIfPossible(ResolvedImage image, Path file) {
        try {
            save(image, file);
        } catch (IOException e) {
            CommandLoggers.serve().warn("{}: cannot record the resolved image in {} ({}); a start without the registry will not find it",
                    image.reference(), file, Main.describe(e));
        }
    }

    private static void save(ResolvedImage image, Path file) throws IOException {
        Properties p = new Properties();
        p.setProperty("manifest", image.manifestDigest());
        p.setProperty("bootstrap", image.bootstrap().digest() + " " + image.bootstrap().size());
        for (int i = 0; i < image.blobs().size(); i++) {
            ResolvedImage.Layer l = image.blobs().get(i);
            p.setProperty("blob." + i, l.digest() + " " + l.size());
        }
        io.strata.registry.cache.OwnerOnly.directories(file.getParent());
        Path tmp = Files.createTempFile(file.getParent(), "ref", ".tmp");
        try {
            try (OutputStream out = Files.newOutputStream(tmp)) {
                p.store(out, null);
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static ResolvedImage load(ImageReference ref, Path file) throws IOException {
        Properties p = new Properties();
        try (InputStream in = Files.newInputStream(file)) {
            p.load(in);
        }
        try {
            List<ResolvedImage.Layer> blobs = new ArrayList<>();
            for (int i = 0; p.containsKey("blob." + i); i++) {
                blobs.add(layer(p.getProperty("blob." + i)));
            }
            String manifest = p.getProperty("manifest");
            return new ResolvedImage(ref.withDigest(manifest), manifest, blobs, layer(p.getProperty("bootstrap")));
        } catch (RuntimeException e) {
            throw new IOException(file + ": unreadable saved resolution of " + ref + " (" + e.getMessage() + ")");
        }
    }

    private static ResolvedImage.Layer layer(String value) {
        String[] parts = value.split(" ");
        return new ResolvedImage.Layer(parts[0], Long.parseLong(parts[1]));
    }
}
