package io.strata.registry;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.RafsImage;
import io.strata.core.os.ExitCleanup;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Uploads a {@code strata build} output (IMAGE_DIR/bootstrap + IMAGE_DIR/blobs/&lt;id&gt;) as a Nydus
 * image laid out as nydus-snapshotter's converter lays one out (design.md section 9): one layer per
 * data blob ({@value MediaTypes#NYDUS_BLOB}, annotated nydus-blob), in blob-table order, then the
 * bootstrap as a gzip tar holding image/image.boot (annotated nydus-bootstrap and nydus-fs-version 6),
 * an OCI image config (a Nydus blob's diff_id is its own digest; the bootstrap layer's is the sha256
 * of its uncompressed tar), and the manifest.
 *
 * <p>Blobs the repository already has are not sent again (HEAD); with a source repository they are
 * mounted across repositories ({@code POST uploads/?mount=&from=}); the rest go as one POST (upload
 * session) and one PUT with the digest. A failed push never leaves a tag pointing at a partial image:
 * the manifest goes last, after a HEAD has confirmed every blob it names.
 */
public final class ImagePusher {
    /** Blobs at least this large get progress lines while they upload. */
    static final long PROGRESS_MIN_BYTES = 8L << 20;

    private final RegistryClient client;
    private final Consumer<String> progress;

    /** {@code progress} receives human-readable lines (which blob is uploaded, mounted, skipped; percentages). */
    public ImagePusher(RegistryClient client, Consumer<String> progress) {
        this.client = client;
        this.progress = progress;
    }

    /** What was pushed. */
    public record Result(ImageReference reference, String manifestDigest, int blobsUploaded, int blobsSkipped,
            int blobsMounted, long bytesUploaded) {
    }

    public Result push(Path imageDir, ImageReference target, Optional<String> fromRepository) throws IOException {
        Path bootstrap = imageDir.resolve("bootstrap");
        if (!Files.isRegularFile(bootstrap)) {
            throw new RegistryException(imageDir + " is not a strata build output: no bootstrap file");
        }
        List<BlobTableEntry> table = RafsImage.open(bootstrap).blobs();
        List<Path> blobFiles = new ArrayList<>();
        for (BlobTableEntry b : table) {
            Path f = imageDir.resolve("blobs").resolve(b.blobId());
            if (!Files.isRegularFile(f)) {
                throw new RegistryException(imageDir + ": blob " + b.blobId() + " named by the bootstrap is missing from blobs/");
            }
            String digest = Digests.sha256(f);
            if (!digest.equals("sha256:" + b.blobId())) {
                throw new RegistryException(imageDir + ": blobs/" + b.blobId() + " does not match its id (its sha256 is " + digest + ")");
            }
            blobFiles.add(f);
        }
        Path tmpDir = Files.createTempDirectory("strata-push");
        try (ExitCleanup onSignal = ExitCleanup.register("push", () -> ExitCleanup.deleteQuietly(tmpDir))) {
            Path layer = tmpDir.resolve("bootstrap.tar.gz");
            String diffId;
            try (OutputStream out = Files.newOutputStream(layer)) {
                diffId = BootstrapLayer.write(bootstrap, out);
            }
            String layerDigest = Digests.sha256(layer);
            long layerSize = Files.size(layer);

            var json = RegistryClient.json();
            ArrayNode diffIds = json.createArrayNode();
            ArrayNode layers = json.createArrayNode();
            for (Path f : blobFiles) {
                String d = "sha256:" + f.getFileName();
                diffIds.add(d);
                ObjectNode l = layers.addObject();
                l.put("mediaType", MediaTypes.NYDUS_BLOB);
                l.put("digest", d);
                l.put("size", Files.size(f));
                l.putObject("annotations").put(MediaTypes.ANNOTATION_NYDUS_BLOB, "true");
            }
            diffIds.add(diffId);
            ObjectNode bl = layers.addObject();
            bl.put("mediaType", MediaTypes.OCI_LAYER_TAR_GZIP);
            bl.put("digest", layerDigest);
            bl.put("size", layerSize);
            ObjectNode ann = bl.putObject("annotations");
            ann.put(MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP, "true");
            ann.put(MediaTypes.ANNOTATION_NYDUS_FS_VERSION, "6");

            ObjectNode config = json.createObjectNode();
            config.put("architecture", ManifestResolver.goArch(System.getProperty("os.arch", "")));
            config.put("os", "linux");
            config.putObject("config");
            ObjectNode rootfs = config.putObject("rootfs");
            rootfs.put("type", "layers");
            rootfs.set("diff_ids", diffIds);
            byte[] configBytes = json.writeValueAsBytes(config);
            String configDigest = Digests.sha256(configBytes);

            ObjectNode manifest = json.createObjectNode();
            manifest.put("schemaVersion", 2);
            manifest.put("mediaType", MediaTypes.OCI_MANIFEST);
            ObjectNode cfg = manifest.putObject("config");
            cfg.put("mediaType", MediaTypes.OCI_CONFIG);
            cfg.put("digest", configDigest);
            cfg.put("size", configBytes.length);
            manifest.set("layers", layers);
            byte[] manifestBytes = json.writeValueAsBytes(manifest);
            String manifestDigest = Digests.sha256(manifestBytes);

            Counts counts = new Counts();
            RegistryHost host = client.host(target.registry());
            String scope = RegistryClient.pushScope(target)
                    + fromRepository.map(r -> " repository:" + r + ":pull").orElse("");
            for (Path f : blobFiles) {
                ensureBlob(host, target, scope, fromRepository, "sha256:" + f.getFileName(), Files.size(f),
                        () -> publisherOf(f), "blob " + f.getFileName(), counts);
            }
            ensureBlob(host, target, scope, fromRepository, layerDigest, layerSize, () -> publisherOf(layer), "bootstrap layer", counts);
            ensureBlob(host, target, scope, fromRepository, configDigest, configBytes.length,
                    () -> HttpRequest.BodyPublishers.ofByteArray(configBytes), "image config", counts);

            // Every blob the manifest names must be there before the manifest (and so the tag) exists.
            for (Path f : blobFiles) {
                confirm(host, target, scope, "sha256:" + f.getFileName(), Files.size(f));
            }
            confirm(host, target, scope, layerDigest, layerSize);
            confirm(host, target, scope, configDigest, configBytes.length);

            putManifest(host, target, scope, manifestBytes, manifestDigest);
            // Blobs, not layers: the image config is one too.
            progress.accept("pushed " + target + "@" + manifestDigest + ": " + counts.uploaded + " blobs uploaded ("
                    + counts.bytes + " bytes), " + counts.skipped + " already there, " + counts.mounted + " mounted");
            return new Result(target.withDigest(manifestDigest), manifestDigest, counts.uploaded, counts.skipped, counts.mounted,
                    counts.bytes);
        } finally {
            try (var s = Files.list(tmpDir)) {
                for (Path p : (Iterable<Path>) s::iterator) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(tmpDir);
        }
    }

    private static final class Counts {
        int uploaded;
        int skipped;
        int mounted;
        long bytes;
        /** The registry refused a cross-repository mount: the other blobs are uploaded without asking. */
        boolean mountRefused;
    }

    /** A PUT the registry answered with an error status, with its Retry-After (-1: none) for the next try. */
    private static final class UploadRefused extends RegistryException {
        private static final long serialVersionUID = 1L;
        final transient long retryAfterMillis;

        UploadRefused(RegistryException e, long retryAfterMillis) {
            super(e.getMessage(), e.status(), e.getCause());
            this.retryAfterMillis = retryAfterMillis;
        }
    }

    private URI blobUri(RegistryHost host, ImageReference repo, String digest) {
        return host.resolve("/v2/" + repo.repository() + "/blobs/" + digest);
    }

    /** HEAD: 200 (or a redirect to storage) means the repository has it. */
    private boolean exists(RegistryHost host, ImageReference repo, String scope, String digest) throws IOException {
        HttpCall<Void> call = new HttpCall<>("HEAD", blobUri(host, repo, digest), HttpCall::discard).scope(scope);
        HttpCall.Reply<Void> r = client.send(host, call);
        if (r.status() == 200 || r.status() == 307 || r.status() == 302) {
            return true;
        }
        if (r.status() == 404) {
            return false;
        }
        throw client.statusError(call, r, repo + ": checking for " + digest);
    }

    private void ensureBlob(RegistryHost host, ImageReference repo, String scope, Optional<String> from, String digest,
            long size, Supplier<HttpRequest.BodyPublisher> body, String what, Counts counts) throws IOException {
        if (exists(host, repo, scope, digest)) {
            progress.accept(what + ": already in " + repo.repository());
            counts.skipped++;
            return;
        }
        URI session = null;
        if (from.isPresent() && !from.get().equals(repo.repository()) && !counts.mountRefused) {
            URI mount = host.resolve("/v2/" + repo.repository() + "/blobs/uploads/?mount=" + enc(digest) + "&from=" + enc(from.get()));
            HttpCall<Void> call = new HttpCall<>("POST", mount, HttpCall::discard).scope(scope).noRetry();
            String refusal;
            try {
                HttpCall.Reply<Void> r = client.send(host, call);
                if (r.status() == 201) {
                    progress.accept(what + ": mounted from " + from.get());
                    counts.mounted++;
                    return;
                }
                refusal = r.status() == 202 ? null : "HTTP " + r.status() + client.errorDetail(r.errorBody());
                if (refusal == null) {
                    session = location(host, call, r);
                }
            } catch (java.io.InterruptedIOException e) {
                throw e;
            } catch (IOException e) {
                refusal = e.getMessage();
            }
            if (refusal != null) {
                // A mount only saves an upload: a registry that refuses it (Harbor answers 401 when the
                // token may not pull from the source; some answer 404 or 5xx) still takes the blob the
                // usual way, as containerd and skopeo fall back. Later blobs do not try again.
                progress.accept(what + ": mounting from " + from.get() + " failed (" + refusal + "); uploading instead");
                counts.mountRefused = true;
            }
        }
        RetryPolicy policy = client.options().retry();
        for (int attempt = 1; ; attempt++) {
            try {
                if (session == null) {
                    session = startUpload(host, repo, scope);
                }
                upload(host, repo, scope, session, digest, size, body, what);
                counts.uploaded++;
                counts.bytes += size;
                return;
            } catch (RegistryException e) {
                boolean transientFailure = e.status() == 0 || RetryPolicy.retryable(e.status());
                if (!transientFailure || attempt >= policy.maxAttempts()) {
                    throw e;
                }
                long delay = policy.delayMillis(attempt, e instanceof UploadRefused u ? u.retryAfterMillis : -1);
                progress.accept(what + ": upload failed (" + e.getMessage() + "); starting it again in " + delay + " ms");
                session = null;
                try {
                    Thread.sleep(delay);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted");
                }
            }
        }
    }

    private URI startUpload(RegistryHost host, ImageReference repo, String scope) throws IOException {
        HttpCall<Void> call = new HttpCall<>("POST", host.resolve("/v2/" + repo.repository() + "/blobs/uploads/"), HttpCall::discard)
                .scope(scope);
        HttpCall.Reply<Void> r = client.send(host, call);
        if (r.status() != 202) {
            throw client.statusError(call, r, repo + ": starting an upload");
        }
        return location(host, call, r);
    }

    private URI location(RegistryHost host, HttpCall<?> call, HttpCall.Reply<?> r) throws RegistryException {
        String loc = r.headers().firstValue("Location").orElseThrow(
                () -> new RegistryException(HttpCall.describe(call.method, call.uri) + ": upload session without a Location"));
        try {
            return r.uri().resolve(loc.trim());
        } catch (IllegalArgumentException e) {
            throw new RegistryException(HttpCall.describe(call.method, call.uri) + ": upload Location is not a URL");
        }
    }

    private void upload(RegistryHost host, ImageReference repo, String scope, URI session, String digest, long size,
            Supplier<HttpRequest.BodyPublisher> body, String what) throws IOException {
        String s = session.toString();
        URI put = URI.create(s + (s.contains("?") ? "&" : "?") + "digest=" + enc(digest));
        Supplier<HttpRequest.BodyPublisher> counted = size >= PROGRESS_MIN_BYTES
                ? () -> withProgress(body.get(), size, what, progress) : body;
        HttpCall<Void> call = new HttpCall<>("PUT", put, HttpCall::discard)
                .scope(scope)
                .header("Content-Type", "application/octet-stream")
                .publisher(counted)
                .wholeTransfer()
                .noRetry(); // a broken upload session is not resumed: ensureBlob starts a new one
        HttpCall.Reply<Void> r = client.send(host, call);
        if (r.status() != 201) {
            RegistryException e = client.statusError(call, r, repo + ": uploading " + what + " (" + digest + ")");
            throw new UploadRefused(e, RegistryClient.retryAfterMillis(r.headers()));
        }
        progress.accept(what + ": uploaded (" + size + " bytes)");
    }

    private void confirm(RegistryHost host, ImageReference repo, String scope, String digest, long size) throws IOException {
        HttpCall<Void> call = new HttpCall<>("HEAD", blobUri(host, repo, digest), HttpCall::discard).scope(scope);
        HttpCall.Reply<Void> r = client.send(host, call);
        if (r.status() == 307 || r.status() == 302) {
            return;
        }
        if (r.status() != 200) {
            throw new RegistryException(repo + ": blob " + digest + " is not in the registry after its upload (HEAD answered "
                    + r.status() + "); the manifest was not pushed", r.status());
        }
        long len = r.headers().firstValueAsLong("Content-Length").orElse(size);
        if (len != size) {
            throw new RegistryException(repo + ": blob " + digest + " has " + len + " bytes in the registry, " + size
                    + " here; the manifest was not pushed");
        }
    }

    private void putManifest(RegistryHost host, ImageReference target, String scope, byte[] manifest, String digest)
            throws IOException {
        String reference = target.tag().orElse(digest);
        if (target.digest().isPresent() && target.tag().isEmpty() && !target.digest().get().equals(digest)) {
            throw new RegistryException(target + ": pushing by digest needs the manifest's own digest " + digest);
        }
        URI uri = host.resolve("/v2/" + target.repository() + "/manifests/" + reference);
        HttpCall<Void> call = new HttpCall<>("PUT", uri, HttpCall::discard)
                .scope(scope)
                .header("Content-Type", MediaTypes.OCI_MANIFEST)
                .publisher(() -> HttpRequest.BodyPublishers.ofByteArray(manifest));
        HttpCall.Reply<Void> r = client.send(host, call);
        if (r.status() != 201 && r.status() != 200) {
            throw client.statusError(call, r, target + ": pushing the manifest");
        }
        Optional<String> echoed = r.headers().firstValue("Docker-Content-Digest");
        if (echoed.isPresent() && !echoed.get().equals(digest)) {
            throw new RegistryException(target + ": the registry stored the manifest as " + echoed.get() + ", not " + digest);
        }
    }

    private static HttpRequest.BodyPublisher publisherOf(Path file) {
        try {
            return HttpRequest.BodyPublishers.ofFile(file);
        } catch (java.io.FileNotFoundException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    /** {@code body}, reporting every 10 % of a large upload as the HTTP client takes it. */
    private static HttpRequest.BodyPublisher withProgress(HttpRequest.BodyPublisher body, long size, String what,
            Consumer<String> progress) {
        long[] sentAndReported = new long[2];
        return Bodies.observing(body, item -> {
            long sent = sentAndReported[0] += item.remaining();
            int tenth = (int) (sent * 10 / Math.max(1, size));
            if (tenth > sentAndReported[1] && tenth < 10) {
                sentAndReported[1] = tenth;
                progress.accept(String.format(Locale.ROOT, "%s: %d%% (%d of %d MiB)", what, tenth * 10, sent >> 20, size >> 20));
            }
        }, () -> { });
    }
}
