package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import io.strata.registry.testing.RegistryFixture;
import io.strata.registry.testing.TokenRealm;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Registry faults that need a registry with credentials, end to end through bin/strata: blobs
 * redirected to another host (which must never see Authorization), a Bearer token that expires
 * in the middle of a long read, a registry that stalls forever (the read fails with EIO within the
 * deadline and the server goes on serving), and a push that fails part way (no tag; the next push
 * completes and skips what is there). The registry is Debian's docker-registry with htpasswd (or
 * Bearer) auth; faults come from {@link FaultProxy} in front of it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RegistryFaultsIT {
    private static final String USER = "alice";
    private static final String PASSWORD = "s3cret-pw";
    private static final String CREDS = USER + ":" + PASSWORD;
    private static final String REPO = "strata/faults";

    @TempDir
    static Path shared;

    RegistryFixture registry;
    Path image;
    Path localExport;
    long blobBytes;

    @BeforeAll
    void buildAndPush() throws Exception {
        RegistryFixture.requireTools();
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        HostTools.requireTool("qemu-io", "qemu-utils");
        BuiltImage built = BuiltImage.buildAndExport(shared);
        image = built.image();
        localExport = built.localExport();
        blobBytes = built.blobBytes();
        registry = RegistryFixture.htpasswd(shared.resolve("registry"), USER, PASSWORD);
        StrataProcess.Run p = StrataProcess.run(shared, "push", image.toString(), registry.reference(REPO + ":v1"), "--creds", CREDS);
        assertEquals(0, p.code(), p.err());
    }

    @AfterAll
    void stopRegistry() {
        if (registry != null) {
            registry.close();
        }
    }

    /** serve nbd REF with its own cache directory and no prefetch: only the test's reads reach the registry. */
    private static StrataProcess.Server serve(Path tmp, String name, String reference, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("--prefetch", "none"));
        args.addAll(List.of(extra));
        return StrataProcess.serveReference(tmp, name, reference, tmp.resolve(name + "-cache"), args.toArray(String[]::new));
    }

    /** nbdcopy of the whole device; returns how long it took. */
    private long copyAndCompare(Path tmp, String name, StrataProcess.Server s) throws Exception {
        Path copy = tmp.resolve(name + ".raw");
        long start = System.nanoTime();
        HostTools.Outcome o = HostTools.execute(List.of("nbdcopy", StrataProcess.nbdUri(tmp, name), copy.toString()));
        long took = System.nanoTime() - start;
        assertEquals(0, o.exitCode(), o.output() + "\nserver log:\n" + s.log());
        assertEquals(-1, Files.mismatch(localExport, copy), "the device served from the registry equals the local export");
        return took;
    }

    /**
     * The registry hands every blob to an object store on another port with a 302 (the proxy turns
     * the registry's authorized answers into redirects): every byte arrives right, the object store
     * served the range reads, and not one request to it carried Authorization, while the registry
     * itself only answers with the credentials.
     */
    @Test
    void blobsRedirectedToAnotherHostArriveAndThatHostNeverSeesAuthorization(@TempDir Path tmp) throws Exception {
        try (ObjectStore store = new ObjectStore(registry.storageDir()); FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            proxy.redirectBlobs(store::uri);
            try (StrataProcess.Server s = serve(tmp, "redirect", proxy.registry() + "/" + REPO + ":v1", "--creds", CREDS)) {
                copyAndCompare(tmp, "redirect", s);
            }
            List<ObjectStore.Seen> seen = store.seen();
            assertTrue(proxy.redirects() > 0, "the registry redirected blob reads");
            assertTrue(seen.stream().anyMatch(r -> r.range() != null), "range reads went to the object store: " + seen);
            assertTrue(seen.stream().allMatch(r -> r.authorization() == null), "no Authorization to the other host: " + seen);
        }
        // The registry does require the credentials: the same blobs without them are refused.
        HttpResponse<Void> anonymous = HttpClient.newHttpClient().send(HttpRequest.newBuilder(registry.baseUri()
                .resolve("/v2/" + REPO + "/manifests/v1")).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.discarding());
        assertEquals(401, anonymous.statusCode());
    }

    /**
     * A Bearer token that lives 1 s, checked by the proxy as a real registry checks tokens, and a
     * read throttled to take several seconds: the copy is right and new tokens were fetched while it ran.
     */
    @Test
    void aTokenThatExpiresDuringALongReadIsRenewed(@TempDir Path tmp) throws Exception {
        TokenRealm realm = new TokenRealm().expiresIn(1);
        // The image as pushed, without another push: a copy of the first registry's storage.
        copyTree(registry.storageDir(), tmp.resolve("bearer/storage"));
        try (RegistryFixture bearer = RegistryFixture.bearer(tmp.resolve("bearer"), realm);
                FaultProxy proxy = new FaultProxy(bearer.baseUri())) {
            proxy.refuseExpiredTokens(realm, "Bearer realm=\"" + realm.uri() + "\",service=\"" + TokenRealm.SERVICE
                    + "\",scope=\"repository:" + REPO + ":pull\"");
            try (StrataProcess.Server s = serve(tmp, "token", proxy.registry() + "/" + REPO + ":v1")) {
                // About 4 s for the blobs: several token lifetimes.
                proxy.throttle(blobBytes / 4);
                int before = realm.tokensIssued();
                long took = copyAndCompare(tmp, "token", s);
                int fetched = realm.tokensIssued() - before;
                assertTrue(took > TimeUnit.SECONDS.toNanos(2), "the read spans token lifetimes: " + took / 1_000_000 + " ms");
                assertTrue(fetched >= 2, fetched + " tokens fetched during a " + took / 1_000_000 + " ms read (expired and refused: "
                        + proxy.expiredRefused() + ")\n" + s.log());
            }
        }
    }

    /**
     * A forced remove of a daemon's export while its client waits on a read the registry stalls: the
     * connection cannot end before the read's deadline (20 s here), past the remove's 10 s wait. The
     * remove still succeeds at once for clients (the export is gone; HTTP 202), and the device, whose
     * cache memory that read is using, is closed as soon as the read has ended, not leaked.
     */
    @Test
    void aForcedRemoveDuringAStalledReadClosesTheDeviceOnceTheReadEnds(@TempDir Path tmp) throws Exception {
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            Path control = tmp.resolve("control.sock");
            Path nbd = tmp.resolve("nbd.sock");
            try (StrataProcess.Server daemon = StrataProcess.start(tmp, "daemon", "serve", "--control", control.toString(),
                    "--socket", nbd.toString(), "--cache-dir", tmp.resolve("cache").toString(), "--metrics-interval", "0",
                    "--prefetch", "none", "--creds", CREDS, "--registry-deadline", "20")) {
                daemon.awaitLog("control: listening on");
                StrataProcess.Run add = StrataProcess.run(tmp, "ctl", "--control", control.toString(), "add", "nbd", "stalled",
                        proxy.registry() + "/" + REPO + ":v1");
                assertEquals(0, add.code(), add.err() + daemon.log());
                proxy.inject(FaultProxy.Fault.STALL_FOREVER, 1);
                long offset = (Files.size(localExport) / 2) & ~0xfffffL;
                java.util.concurrent.CompletableFuture<HostTools.Outcome> read = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                    try {
                        return HostTools.execute(List.of("qemu-io", "-r", "-f", "raw", "nbd+unix:///stalled?socket=" + nbd,
                                "-c", "read -q " + offset + " 1M"));
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                assertTrue(proxy.awaitFaultsApplied(1, Duration.ofSeconds(30)), "the read never reached the stalled registry: " + daemon.log());
                assertEquals(1, proxy.faultsApplied());

                StrataProcess.Run removed = StrataProcess.run(tmp, "ctl", "--control", control.toString(), "remove", "stalled", "--force");
                assertEquals(0, removed.code(), removed.err() + daemon.log());
                assertTrue(removed.out().contains("removed 'stalled'; its device is closing"), removed.out());
                StrataProcess.Run list = StrataProcess.run(tmp, "ctl", "--control", control.toString(), "list");
                assertFalse(list.out().contains("stalled"), "the removed export is still listed: " + list.out());
                daemon.awaitLog("export 'stalled' removed; 1 client(s) still finishing a read");
                // The read ends at its deadline; then the device goes.
                daemon.awaitLog(java.util.regex.Pattern.compile("export 'stalled': its last client ended; device closed"), 60);
                HostTools.Outcome client = read.get(60, TimeUnit.SECONDS);
                assertTrue(client.exitCode() != 0, "the disconnected client's read failed: " + client.output());
                assertTrue(daemon.process.isAlive());
            }
        }
    }

    /**
     * The same for a vhost-user export: its session is still in a load the registry stalls when the
     * forced remove stops it. The remove answers at once that the device is closing (it said
     * "removed" as if all were done), and the device closes when the load has ended.
     */
    @Test
    void aForcedRemoveOfAVhostUserExportInAStalledReadSaysItsDeviceIsClosing(@TempDir Path tmp) throws Exception {
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            Path control = tmp.resolve("control.sock");
            Path vhost = tmp.resolve("vm.sock");
            try (StrataProcess.Server daemon = StrataProcess.start(tmp, "daemon", "serve", "--control", control.toString(),
                    "--cache-dir", tmp.resolve("cache").toString(), "--metrics-interval", "0",
                    "--prefetch", "none", "--creds", CREDS, "--registry-deadline", "20")) {
                daemon.awaitLog("control: listening on");
                StrataProcess.Run add = StrataProcess.run(tmp, "ctl", "--control", control.toString(), "add", "vhost-user",
                        vhost.toString(), proxy.registry() + "/" + REPO + ":v1");
                assertEquals(0, add.code(), add.err() + daemon.log());
                proxy.inject(FaultProxy.Fault.STALL_FOREVER, 1);
                long offset = (Files.size(localExport) / 2) & ~0xfffffL;
                try (io.strata.vhost.OneVhostRead read = new io.strata.vhost.OneVhostRead(vhost, offset)) {
                    assertTrue(proxy.awaitFaultsApplied(1, Duration.ofSeconds(30)), "the read never reached the stalled registry: " + daemon.log());

                    StrataProcess.Run removed = StrataProcess.run(tmp, "ctl", "--control", control.toString(), "remove", vhost.toString(), "--force");
                    assertEquals(0, removed.code(), removed.err() + daemon.log());
                    assertTrue(removed.out().contains("removed '" + vhost + "'; its device is closing"), removed.out());
                    daemon.awaitLog("removed; its vhost-user session is still finishing a read");
                    // The load ends at its deadline; then the session, then the device.
                    daemon.awaitLog(java.util.regex.Pattern.compile("its vhost-user session ended; device closed"), 60);
                    assertTrue(daemon.process.isAlive());
                }
            }
        }
    }

    /**
     * A registry that stalls forever: a read through {@code --registry-deadline 3} fails with EIO
     * within the deadline and a margin, and the same read afterwards is answered right.
     */
    @Test
    void aStalledRegistryFailsThatReadWithEioWithinTheDeadlineAndTheServerGoesOn(@TempDir Path tmp) throws Exception {
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            try (StrataProcess.Server s = serve(tmp, "stall", proxy.registry() + "/" + REPO + ":v1", "--creds", CREDS,
                    "--registry-deadline", "3")) {
                proxy.inject(FaultProxy.Fault.STALL_FOREVER, 1);
                // 1 MiB from the middle of the device: file data, so chunks from the registry.
                long offset = (Files.size(localExport) / 2) & ~0xfffffL;
                long start = System.nanoTime();
                HostTools.Outcome first = HostTools.execute(List.of("qemu-io", "-r", "-f", "raw", StrataProcess.nbdUri(tmp, "stall"),
                        "-c", "read -q " + offset + " 1M"));
                double seconds = (System.nanoTime() - start) / 1e9;
                assertEquals(1, proxy.faultsApplied(), "the read met the stall: " + first.output());
                assertTrue(first.exitCode() != 0 && first.output().contains("Input/output error"), "EIO: " + first.output() + s.log());
                assertTrue(seconds < 3 + 7, "failed after " + seconds + " s, deadline 3 s");
                // The server goes on: the whole device, that range included, is read right.
                copyAndCompare(tmp, "stall", s);
                assertTrue(s.process.isAlive());
            }
        }
    }

    /**
     * A push whose blob uploads fail, then one whose manifest PUT fails: each exits 1 with one error
     * line and leaves no tag; a push without faults then completes, skipping every blob already there.
     */
    @Test
    void aFailedPushLeavesNoTagAndTheNextPushSkipsWhatIsThere(@TempDir Path tmp) throws Exception {
        String repo = "strata/pushfail";
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            String ref = proxy.registry() + "/" + repo + ":v1";
            proxy.injectOn("PUT", "/blobs/uploads/", FaultProxy.Fault.STATUS_500, Integer.MAX_VALUE);
            assertPushFails(tmp, ref, "HTTP 500");
            assertEquals(404, manifestStatus(repo, "v1"), "no tag after a failed blob upload");

            proxy.clearRules();
            proxy.injectOn("PUT", "/manifests/", FaultProxy.Fault.RESET_NOW, Integer.MAX_VALUE);
            assertPushFails(tmp, ref, "/manifests/v1");
            assertEquals(404, manifestStatus(repo, "v1"), "no tag after a failed manifest PUT");

            proxy.clearRules();
            StrataProcess.Run ok = StrataProcess.run(tmp, "push", image.toString(), ref, "--creds", CREDS);
            assertEquals(0, ok.code(), ok.err());
            assertFalse(ok.err().contains(": uploaded"), "every layer was already there: " + ok.err());
            assertTrue(ok.err().contains("0 blobs uploaded"), ok.err());
            assertEquals(200, manifestStatus(repo, "v1"));
        }
    }

    /**
     * A registry that refuses a cross-repository mount (Harbor answers 401 when the token may not pull
     * from the source; others 500) still gets the image: the blob is uploaded instead, and the other
     * blobs are not offered as mounts again. Before, the push failed ("refused the credentials").
     * --from takes a whole reference on the same registry, and refuses another registry's (exit 2).
     */
    @Test
    void aMountTheRegistryRefusesBecomesAnUpload(@TempDir Path tmp) throws Exception {
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            String from = proxy.registry() + "/" + REPO;
            int applied = 0;
            for (FaultProxy.Fault refusal : List.of(FaultProxy.Fault.UNAUTHORIZED_401, FaultProxy.Fault.STATUS_500)) {
                String repo = "strata/mount-" + refusal.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
                proxy.clearRules();
                proxy.injectOn("POST", "mount=", refusal, Integer.MAX_VALUE);
                StrataProcess.Run r = StrataProcess.run(tmp, "push", image.toString(), proxy.registry() + "/" + repo + ":v1",
                        "--from", from, "--creds", CREDS);
                assertEquals(0, r.code(), r.err());
                assertEquals(1, r.err().lines().filter(l -> l.contains("failed") && l.contains("uploading instead")).count(), r.err());
                assertTrue(r.err().contains("0 mounted"), r.err());
                // One blob's mount (401: tried again once with fresh credentials), none for the others.
                int mounts = proxy.faultsApplied() - applied;
                applied = proxy.faultsApplied();
                assertTrue(mounts >= 1 && mounts <= 2, mounts + " refused mounts: " + r.err());
                assertEquals(200, manifestStatus(repo, "v1"), r.err());
                assertFalse(r.err().contains(PASSWORD), r.err());
            }
            StrataProcess.Run elsewhere = StrataProcess.run(tmp, "push", image.toString(), proxy.registry() + "/strata/x:v1",
                    "--from", "registry.example.com/strata/faults", "--creds", CREDS);
            assertEquals(2, elsewhere.code(), elsewhere.err());
            assertTrue(elsewhere.err().contains("same registry"), elsewhere.err());
        }
    }

    /**
     * A blob upload answered 429 with Retry-After waits what the registry asked before its next try,
     * not the client's own short backoff (which re-sent the whole blob within a fraction of a second).
     */
    @Test
    void anUploadAnswered429WaitsItsRetryAfter(@TempDir Path tmp) throws Exception {
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            proxy.injectOn("PUT", "/blobs/uploads/", FaultProxy.Fault.TOO_MANY_429, 1);
            StrataProcess.Run r = StrataProcess.run(tmp, "push", image.toString(), proxy.registry() + "/strata/ratelimited:v1",
                    "--creds", CREDS);
            assertEquals(0, r.code(), r.err());
            assertEquals(1, proxy.faultsApplied(), r.err());
            assertTrue(r.err().contains("HTTP 429") && r.err().contains("starting it again in 1000 ms"), r.err());
        }
    }

    /**
     * push and export stopped by SIGTERM while the registry stalls them: neither leaves its temporary
     * files behind (push's directory under java.io.tmpdir, export's {@code .NAME.*.partial} beside its
     * output). Before, the JVM ran its shutdown hooks, not the commands' finally blocks, and both stayed.
     */
    @Test
    void aPushOrExportStoppedByASignalLeavesNoTemporaryFiles(@TempDir Path tmp) throws Exception {
        Path javaTmp = Files.createDirectories(tmp.resolve("java-tmp"));
        Map<String, String> env = Map.of("STRATA_JAVA_OPTS", "-Djava.io.tmpdir=" + javaTmp);
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            proxy.injectOn("POST", "/blobs/uploads/", FaultProxy.Fault.STALL_FOREVER, Integer.MAX_VALUE);
            try (StrataProcess.Server push = StrataProcess.start(tmp, "push", env, "push", image.toString(),
                    proxy.registry() + "/strata/stopped:v1", "--creds", CREDS)) {
                assertTrue(proxy.awaitFaultsApplied(1, Duration.ofSeconds(60)), "the upload never reached the stall: " + push.log());
                assertEquals(1, listing(javaTmp).size(), "push's temporary directory while it uploads: " + listing(javaTmp));
                assertStoppedBySigterm(push);
                assertEquals(List.of(), listing(javaTmp), "left behind by the stopped push");
            }

            proxy.clearRules();
            proxy.inject(FaultProxy.Fault.STALL_FOREVER, 1);
            Path outDir = Files.createDirectories(tmp.resolve("out"));
            try (StrataProcess.Server export = StrataProcess.start(tmp, "export", env, "export",
                    proxy.registry() + "/" + REPO + ":v1", "--creds", CREDS, "--cache-dir", tmp.resolve("cache").toString(),
                    "-o", outDir.resolve("disk.raw").toString())) {
                assertTrue(proxy.awaitFaultsApplied(2, Duration.ofSeconds(60)), "the export never reached the stall: " + export.log());
                assertTrue(listing(outDir).stream().anyMatch(n -> n.startsWith(".disk.raw.") && n.endsWith(".partial")),
                        "export's partial file while it reads: " + listing(outDir));
                assertStoppedBySigterm(export);
                assertEquals(List.of(), listing(outDir), "left behind by the stopped export");
            }
        }
    }

    private static List<String> listing(Path dir) throws java.io.IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** SIGTERM, then the JVM's exit status for it (128 + 15) within 30 s. */
    private static void assertStoppedBySigterm(StrataProcess.Server s) throws Exception {
        assertTrue(s.process.isAlive(), "ended before the signal: " + s.log());
        s.process.destroy();
        assertTrue(s.process.waitFor(30, TimeUnit.SECONDS), "still running 30 s after SIGTERM: " + s.log());
        assertEquals(143, s.process.exitValue(), s.log());
    }

    private static void copyTree(Path from, Path to) throws java.io.IOException {
        try (Stream<Path> all = Files.walk(from)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }

    private void assertPushFails(Path tmp, String ref, String why) throws Exception {
        StrataProcess.Run r = StrataProcess.run(tmp, "push", image.toString(), ref, "--creds", CREDS, "--registry-retries", "2");
        assertEquals(1, r.code(), r.err());
        List<String> errors = r.err().lines().filter(l -> !l.startsWith("push: ")).toList();
        assertEquals(1, errors.size(), r.err());
        assertTrue(errors.get(0).startsWith("strata push: ") && errors.get(0).contains(why), r.err());
        assertFalse(r.err().contains(PASSWORD), r.err());
    }

    /** The registry's own answer (not through the proxy) to GET of a manifest by tag. */
    private int manifestStatus(String repo, String tag) throws Exception {
        String basic = "Basic " + Base64.getEncoder().encodeToString(CREDS.getBytes(StandardCharsets.UTF_8));
        HttpRequest get = HttpRequest.newBuilder(URI.create(registry.baseUri() + "/v2/" + repo + "/manifests/" + tag))
                .header("Authorization", basic)
                .header("Accept", "application/vnd.oci.image.manifest.v1+json")
                .timeout(Duration.ofSeconds(10)).build();
        return HttpClient.newHttpClient().send(get, HttpResponse.BodyHandlers.discarding()).statusCode();
    }
}
