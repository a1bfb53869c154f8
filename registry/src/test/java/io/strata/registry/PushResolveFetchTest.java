package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.HostTools;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.testing.OciLayouts;
import io.strata.registry.testing.RegistryFixture;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Push, resolve, bootstrap fetch and range reads against the real registry (Debian's docker-registry),
 * with skopeo as the independent client that checks what was pushed.
 */
class PushResolveFetchTest {
    @TempDir
    static Path shared;

    static RegistryFixture registry;
    static SyntheticImage.Written image;
    static RegistryClient client;
    static ImagePusher.Result pushed;
    static final List<String> progress = new ArrayList<>();

    @BeforeAll
    static void pushOnce() throws Exception {
        RegistryFixture.requireTools();
        OciLayouts.requireSkopeo();
        registry = RegistryFixture.anonymous(shared.resolve("registry"));
        Random r = new Random(9);
        image = SyntheticImage.write(shared.resolve("image"), List.of(
                SyntheticImage.uniformBlob(r, 24, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3),
                SyntheticImage.uniformBlob(r, 6, 65536, Compression.LZ4_BLOCK, DigestAlgorithm.SHA256)));
        client = new RegistryClient(RegistryOptions.defaults());
        pushed = new ImagePusher(client, progress::add)
                .push(shared.resolve("image"), ImageReference.parse(registry.reference("strata/demo:v1")), Optional.empty());
    }

    @AfterAll
    static void stop() {
        if (registry != null) {
            registry.close();
        }
    }

    private static JsonNode skopeoInspect(String repoAndTag, boolean config) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("skopeo", "inspect", "--tls-verify=false", "--raw"));
        if (config) {
            cmd.add("--config");
        }
        cmd.add("docker://" + registry.reference(repoAndTag));
        return new ObjectMapper().readTree(HostTools.run(cmd));
    }

    @Test
    void skopeoSeesTheNydusLayout() throws Exception {
        JsonNode m = skopeoInspect("strata/demo:v1", false);
        assertEquals(MediaTypes.OCI_MANIFEST, m.path("mediaType").asText());
        assertEquals(MediaTypes.OCI_CONFIG, m.path("config").path("mediaType").asText());
        JsonNode layers = m.path("layers");
        assertEquals(3, layers.size(), m::toString);
        for (int i = 0; i < 2; i++) {
            JsonNode l = layers.get(i);
            assertEquals(MediaTypes.NYDUS_BLOB, l.path("mediaType").asText());
            assertEquals("sha256:" + image.blobIds().get(i), l.path("digest").asText());
            assertEquals(Files.size(image.blobPath(i)), l.path("size").asLong());
            assertEquals("true", l.path("annotations").path(MediaTypes.ANNOTATION_NYDUS_BLOB).asText());
        }
        JsonNode boot = layers.get(2);
        assertEquals(MediaTypes.OCI_LAYER_TAR_GZIP, boot.path("mediaType").asText());
        assertEquals("true", boot.path("annotations").path(MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP).asText());
        assertEquals("6", boot.path("annotations").path(MediaTypes.ANNOTATION_NYDUS_FS_VERSION).asText());

        JsonNode config = skopeoInspect("strata/demo:v1", true);
        JsonNode diffIds = config.path("rootfs").path("diff_ids");
        assertEquals("layers", config.path("rootfs").path("type").asText());
        assertEquals(3, diffIds.size());
        assertEquals("sha256:" + image.blobIds().get(0), diffIds.get(0).asText(), "a Nydus blob's diff_id is its own digest");
        assertEquals("sha256:" + image.blobIds().get(1), diffIds.get(1).asText());
        // The bootstrap layer's diff_id is the sha256 of its uncompressed tar.
        Path layer = shared.resolve("boot-layer.tar.gz");
        client.downloadBlob(pushed.reference(), boot.path("digest").asText(), boot.path("size").asLong(), layer);
        Path tar = shared.resolve("boot-layer.tar");
        HostTools.run(List.of("sh", "-c", "gzip -dc < '" + layer + "' > '" + tar + "'"));
        assertEquals(Digests.sha256(tar), diffIds.get(2).asText());
        // and the tar is what nydus-snapshotter looks for: image/image.boot
        String listing = HostTools.run(List.of("tar", "-tvf", tar.toString()));
        assertTrue(listing.contains("image/image.boot"), listing);
        JsonNode summary = new ObjectMapper().readTree(HostTools.run(List.of("skopeo", "inspect", "--tls-verify=false",
                "docker://" + registry.reference("strata/demo:v1"))));
        assertEquals(pushed.manifestDigest(), summary.path("Digest").asText());
    }

    @Test
    void resolveAndFetchBootstrapRoundTripByteExact() throws Exception {
        ResolvedImage resolved = client.resolve(ImageReference.parse("docker://" + registry.reference("strata/demo:v1")));
        assertEquals(pushed.manifestDigest(), resolved.manifestDigest());
        assertEquals(Optional.of(pushed.manifestDigest()), resolved.reference().digest());
        assertEquals(2, resolved.blobs().size());
        for (int i = 0; i < 2; i++) {
            assertEquals(image.blobIds().get(i), resolved.blobs().get(i).blobId());
            assertEquals(Files.size(image.blobPath(i)), resolved.blobs().get(i).size());
        }
        Path dir = shared.resolve("fetched");
        Path boot = client.fetchBootstrap(resolved, dir);
        assertArrayEquals(Files.readAllBytes(image.bootstrap()), Files.readAllBytes(boot));
        assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(boot)));
        // Reused while it is what was unpacked; a copy damaged since (one byte, or cut short) is not.
        assertEquals(Optional.of(boot), RegistryClient.cachedBootstrap(dir));
        byte[] bytes = Files.readAllBytes(boot);
        bytes[bytes.length / 2] ^= 1;
        Files.write(boot, bytes);
        assertEquals(Optional.empty(), RegistryClient.cachedBootstrap(dir));
        Files.write(boot, java.util.Arrays.copyOf(bytes, 1024));
        assertEquals(Optional.empty(), RegistryClient.cachedBootstrap(dir));
        assertArrayEquals(Files.readAllBytes(image.bootstrap()), Files.readAllBytes(client.fetchBootstrap(resolved, dir)));
        assertEquals(Optional.of(boot), RegistryClient.cachedBootstrap(dir));
        // By digest too.
        ResolvedImage byDigest = client.resolve(ImageReference.parse(registry.reference("strata/demo@" + pushed.manifestDigest())));
        assertEquals(resolved.blobs(), byDigest.blobs());
    }

    @Test
    void pushIsReproducibleAndSkipsWhatTheRegistryHas() throws Exception {
        List<String> lines = new ArrayList<>();
        ImagePusher.Result again = new ImagePusher(client, lines::add)
                .push(shared.resolve("image"), ImageReference.parse(registry.reference("strata/demo:v2")), Optional.empty());
        assertEquals(pushed.manifestDigest(), again.manifestDigest(), "same build, same manifest");
        assertEquals(0, again.blobsUploaded(), lines::toString);
        assertEquals(4, again.blobsSkipped(), lines::toString);
        // Another repository, mounting from the first: nothing is uploaded again.
        List<String> mountLines = new ArrayList<>();
        ImagePusher.Result mounted = new ImagePusher(client, mountLines::add)
                .push(shared.resolve("image"), ImageReference.parse(registry.reference("other/demo:v1")), Optional.of("strata/demo"));
        assertEquals(4, mounted.blobsMounted(), mountLines::toString);
        assertEquals(0, mounted.blobsUploaded(), mountLines::toString);
        long mountPosts = registry.accessLog().stream()
                .filter(e -> e.method().equals("POST") && e.path().contains("/v2/other/demo/blobs/uploads/?mount=") && e.status() == 201)
                .count();
        assertEquals(4, mountPosts);
        assertEquals(pushed.manifestDigest(), client.resolve(ImageReference.parse(registry.reference("other/demo:v1"))).manifestDigest());
    }

    @Test
    void rangeReadsReturnTheRightBytes() throws Exception {
        byte[] blob = Files.readAllBytes(image.blobPath(0));
        ImageReference repo = ImageReference.parse(registry.reference("strata/demo:v1"));
        RangeFetcher f = client.blob(repo, "sha256:" + image.blobIds().get(0));
        assertEquals(blob.length, f.size());
        Random r = new Random(1);
        long before = registry.accessLog().stream().filter(RegistryFixture.AccessLogEntry::isRangeRead).count();
        int reads = 0;
        for (int[] range : new int[][] {{0, 1}, {0, 4096}, {blob.length - 1, 1}, {blob.length - 5000, 5000}, {12345, 70000}}) {
            ByteBuffer dst = ByteBuffer.allocate(range[1] + 10).position(5);
            dst.limit(5 + range[1]);
            f.fetch(range[0], dst);
            reads++;
            assertEquals(dst.limit(), dst.position());
            byte[] got = new byte[range[1]];
            dst.position(5);
            dst.get(got);
            byte[] want = java.util.Arrays.copyOfRange(blob, range[0], range[0] + range[1]);
            assertArrayEquals(want, got, "range " + range[0] + "+" + range[1]);
        }
        for (int i = 0; i < 20; i++) {
            int pos = r.nextInt(blob.length);
            int len = 1 + r.nextInt(Math.min(100_000, blob.length - pos));
            ByteBuffer dst = ByteBuffer.allocateDirect(len);
            f.fetch(pos, dst);
            reads++;
            byte[] got = new byte[len];
            dst.flip().get(got);
            assertArrayEquals(java.util.Arrays.copyOfRange(blob, pos, pos + len), got);
        }
        // The registry's own log shows one 206 per read.
        var log = registry.accessLog();
        long after = log.stream().filter(RegistryFixture.AccessLogEntry::isRangeRead).count();
        assertTrue(after - before >= reads, "range reads in the access log: " + (after - before) + " for " + reads + " reads");

        // Past the end: 416 from the registry (a read starting at the end), and a read running past it.
        RegistryException atEnd = assertThrows(RegistryException.class, () -> f.fetch(blob.length, ByteBuffer.allocate(10)));
        assertEquals(416, atEnd.status(), atEnd::getMessage);
        assertTrue(atEnd.getMessage().contains("past the end"), atEnd.getMessage());
        RegistryException across = assertThrows(RegistryException.class, () -> f.fetch(blob.length - 5, ByteBuffer.allocate(10)));
        assertEquals(416, across.status(), () -> { var sw = new java.io.StringWriter(); across.printStackTrace(new java.io.PrintWriter(sw)); return sw.toString(); });
        assertTrue(registry.accessLog().stream().anyMatch(e -> e.status() == 416), "the registry answered 416");

        // Size found from the Content-Range total when the manifest's size is not given.
        RangeFetcher unknown = client.blob(repo, "sha256:" + image.blobIds().get(1));
        assertEquals(Files.size(image.blobPath(1)), unknown.size());
        // An unknown blob: one-line 404.
        RangeFetcher missing = client.blob(repo, "sha256:" + "0".repeat(64));
        RegistryException nf = assertThrows(RegistryException.class, () -> missing.fetch(0, ByteBuffer.allocate(1)));
        assertEquals(404, nf.status());
        assertFalse(nf.getMessage().contains("\n"));
        RegistryMetrics m = client.metrics(registry.registry());
        assertTrue(m.requests() >= reads && m.bytes() > 0 && m.p50Micros() > 0 && m.p99Micros() >= m.p50Micros(), m.summary());
    }

    @Test
    void aPlainOciImageIsRefusedInOneLine() throws Exception {
        byte[] layer = OciLayouts.gzipTarWithFile("hello.txt", "hello".getBytes(StandardCharsets.UTF_8));
        OciLayouts.pushWithSkopeo(shared.resolve("plain-layout"), registry, "plain/image:v1",
                List.of(new OciLayouts.Layer(MediaTypes.OCI_LAYER_TAR_GZIP, layer, Map.of())));
        RegistryException e = assertThrows(RegistryException.class,
                () -> client.resolve(ImageReference.parse(registry.reference("plain/image:v1"))));
        assertTrue(e.getMessage().contains("is not a Nydus image"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void aBootstrapLayerThatIsNotAGzipTarIsRefusedInOneLine() throws Exception {
        byte[] notGzip = "this is not a gzip tar".getBytes(StandardCharsets.UTF_8);
        OciLayouts.pushWithSkopeo(shared.resolve("bad-boot-layout"), registry, "bad/boot:v1", List.of(
                new OciLayouts.Layer(MediaTypes.OCI_LAYER_TAR_GZIP, notGzip, Map.of(
                        MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP, "true", MediaTypes.ANNOTATION_NYDUS_FS_VERSION, "6"))));
        ResolvedImage resolved = client.resolve(ImageReference.parse(registry.reference("bad/boot:v1")));
        RegistryException e = assertThrows(RegistryException.class, () -> client.fetchBootstrap(resolved, shared.resolve("bad-boot")));
        assertTrue(e.getMessage().contains("is not a gzip tar"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        // A gzip tar without image/image.boot.
        OciLayouts.pushWithSkopeo(shared.resolve("no-boot-layout"), registry, "bad/noboot:v1", List.of(
                new OciLayouts.Layer(MediaTypes.OCI_LAYER_TAR_GZIP, OciLayouts.gzipTarWithFile("other", new byte[10]), Map.of(
                        MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP, "true"))));
        ResolvedImage noBoot = client.resolve(ImageReference.parse(registry.reference("bad/noboot:v1")));
        RegistryException e2 = assertThrows(RegistryException.class, () -> client.fetchBootstrap(noBoot, shared.resolve("no-boot")));
        assertTrue(e2.getMessage().contains("holds no image/image.boot"), e2.getMessage());
    }

    @Test
    void aBootstrapWhoseBytesDoNotMatchTheirDigestIsRefused() throws Exception {
        // Push a copy, then damage the bootstrap layer in the registry's own storage, as a bad disk or
        // a lying cache would: the client must notice and refuse it.
        Path copy = shared.resolve("image-copy");
        Random r = new Random(77);
        SyntheticImage.write(copy, List.of(SyntheticImage.uniformBlob(r, 2, 4096, Compression.NONE, DigestAlgorithm.BLAKE3)));
        ImagePusher.Result p = new ImagePusher(client, s -> { })
                .push(copy, ImageReference.parse(registry.reference("damaged/image:v1")), Optional.empty());
        ResolvedImage resolved = client.resolve(p.reference());
        String hex = resolved.bootstrap().blobId();
        Path data = registry.storageDir().resolve("docker/registry/v2/blobs/sha256/" + hex.substring(0, 2) + "/" + hex + "/data");
        byte[] bytes = Files.readAllBytes(data);
        bytes[bytes.length / 2] ^= 0x55;
        Files.write(data, bytes);
        RegistryException e = assertThrows(RegistryException.class, () -> client.fetchBootstrap(resolved, shared.resolve("damaged")));
        assertTrue(e.getMessage().contains("does not match its digest"), e.getMessage());
        assertFalse(Files.exists(shared.resolve("damaged/bootstrap")), "nothing is left behind");
    }

    @Test
    void largeUploadsReportProgress() throws Exception {
        Path big = shared.resolve("image-big");
        // 9 MiB stored uncompressed: above the 8 MiB progress threshold.
        SyntheticImage.write(big, List.of(SyntheticImage.uniformBlob(new Random(11), 144, 65536, Compression.NONE,
                DigestAlgorithm.BLAKE3)));
        List<String> lines = new ArrayList<>();
        ImagePusher.Result r = new ImagePusher(client, lines::add)
                .push(big, ImageReference.parse(registry.reference("big/image:v1")), Optional.empty());
        assertEquals(3, r.blobsUploaded());
        for (int pct = 10; pct <= 90; pct += 10) {
            String want = ": " + pct + "% (";
            assertTrue(lines.stream().anyMatch(l -> l.startsWith("blob ") && l.contains(want)), want + " in " + lines);
        }
    }

    @Test
    void unknownTagDigestAndHostAreOneLineErrors() throws Exception {
        RegistryException tag = assertThrows(RegistryException.class,
                () -> client.resolve(ImageReference.parse(registry.reference("strata/demo:nope"))));
        assertTrue(tag.getMessage().contains("no such image"), tag.getMessage());
        RegistryException digest = assertThrows(RegistryException.class,
                () -> client.resolve(ImageReference.parse(registry.reference("strata/demo@sha256:" + "ab".repeat(32)))));
        assertTrue(digest.getMessage().contains("no such image"), digest.getMessage());
        RegistryClient quick = new RegistryClient(RegistryOptions.defaults().withRetry(RetryPolicy.DEFAULT.withMaxAttempts(2))
                .withInsecureRegistries(java.util.Set.of("no-such-host.invalid:5000")));
        RegistryException host = assertThrows(RegistryException.class,
                () -> quick.resolve(ImageReference.parse("no-such-host.invalid:5000/x/y:z")));
        assertTrue(host.getMessage().contains("no-such-host.invalid"), host.getMessage());
        for (RegistryException e : List.of(tag, digest, host)) {
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
    }
}
