package io.strata.registry;

import static io.strata.registry.TestHttpServers.port;
import static io.strata.registry.TestHttpServers.send;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Registries and object stores that answer badly, as small HTTP servers on 127.0.0.1 (com.sun.net.httpserver):
 * a signed URL that expires with a status other than 401/403 or whose host goes away, Harbor's Basic
 * challenge to a token it stopped accepting, a bootstrap layer whose body never ends or which unpacks
 * past what the core opens, numbers too long for a long in Content-Range, and which failures count as
 * "no answer" (the only ones a server may fall back to its last resolution on).
 */
class HostileRegistryTest {
    @TempDir
    Path tmp;
    private final byte[] blob = new byte[100_000];
    private String digest;
    private final TestHttpServers http = new TestHttpServers();

    @BeforeEach
    void blob() {
        new Random(11).nextBytes(blob);
        digest = Digests.sha256(blob);
    }

    @AfterEach
    void stop() {
        http.close();
    }

    private HttpServer server(AtomicInteger requests, TestHttpServers.Handler h) throws IOException {
        return http.start(exchange -> {
            requests.incrementAndGet();
            h.handle(exchange);
        });
    }

    private void serveRange(HttpExchange ex) throws IOException {
        TestHttpServers.serveRange(ex, blob);
    }

    private static ImageReference repo(HttpServer registry) {
        return ImageReference.parse("127.0.0.1:" + port(registry) + "/test/repo:v1");
    }

    private static RegistryClient client(int tries) {
        return new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withRetry(new RetryPolicy(tries, Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofSeconds(1))));
    }

    private void assertRange(RangeFetcher f, int position, int length) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(length);
        f.fetch(position, dst);
        assertArrayEquals(Arrays.copyOfRange(blob, position, position + length), dst.array());
    }

    @Test
    void aCachedRedirectThatFailsWithAnyStatusIsAskedForAgain() throws Exception {
        // GCS answers an expired signature with 400, some CDNs with 404 or 410, a broken store with 5xx.
        for (int expiredStatus : new int[] {400, 404, 410, 500}) {
            AtomicInteger generation = new AtomicInteger(1);
            AtomicInteger storageRequests = new AtomicInteger();
            AtomicInteger registryRequests = new AtomicInteger();
            HttpServer storage = server(storageRequests, ex -> {
                if (!("sig=" + generation.get()).equals(ex.getRequestURI().getQuery())) {
                    send(ex, expiredStatus, "<Error>expired</Error>".getBytes(StandardCharsets.UTF_8));
                    return;
                }
                serveRange(ex);
            });
            HttpServer registry = server(registryRequests, ex -> {
                ex.getResponseHeaders().set("Location", "http://localhost:" + port(storage) + "/b?sig=" + generation.get());
                send(ex, 307, new byte[0]);
            });
            RangeFetcher f = client(1).blob(repo(registry), digest);
            assertRange(f, 0, 1000);
            assertRange(f, 2000, 1000);
            assertEquals(1, registryRequests.get(), "the second read went straight to the cached redirect");
            generation.incrementAndGet();
            assertRange(f, 5000, 3000);
            assertEquals(2, registryRequests.get(), "HTTP " + expiredStatus + " from the cached URL sent the read back to the registry");
            assertRange(f, 9000, 100);
            assertEquals(2, registryRequests.get(), "the new redirect is the cached one now");
            assertEquals(5, storageRequests.get());
        }
    }

    @Test
    void aCachedRedirectWhoseHostIsGoneIsAskedForAgain() throws Exception {
        AtomicInteger storageRequests = new AtomicInteger();
        AtomicInteger registryRequests = new AtomicInteger();
        HttpServer first = server(storageRequests, this::serveRange);
        HttpServer second = server(storageRequests, this::serveRange);
        HttpServer[] current = {first};
        HttpServer registry = server(registryRequests, ex -> {
            ex.getResponseHeaders().set("Location", "http://localhost:" + port(current[0]) + "/b");
            send(ex, 307, new byte[0]);
        });
        RangeFetcher f = client(1).blob(repo(registry), digest);
        assertRange(f, 0, 1000);
        current[0] = second;
        first.stop(0); // connection refused from now on
        assertRange(f, 1000, 1000);
        assertEquals(2, registryRequests.get());
        assertEquals(2, storageRequests.get());
    }

    @Test
    void harborsBasicChallengeToAStaleTokenLeadsToANewToken() throws Exception {
        AtomicInteger tokensIssued = new AtomicInteger();
        AtomicInteger valid = new AtomicInteger(1); // tokens numbered below this are refused
        AtomicInteger tokenRequests = new AtomicInteger();
        HttpServer realm = server(tokenRequests, ex -> {
            int n = tokensIssued.incrementAndGet();
            ex.getResponseHeaders().set("Content-Type", "application/json");
            send(ex, 200, ("{\"token\":\"harbor-tok-" + n + "\",\"expires_in\":1800}").getBytes(StandardCharsets.UTF_8));
        });
        AtomicInteger registryRequests = new AtomicInteger();
        HttpServer registry = server(registryRequests, ex -> {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            if (auth == null) {
                ex.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"http://127.0.0.1:" + port(realm)
                        + "/service/token\",service=\"harbor-registry\",scope=\"repository:test/repo:pull\"");
                send(ex, 401, new byte[0]);
                return;
            }
            int n = auth.startsWith("Bearer harbor-tok-") ? Integer.parseInt(auth.substring("Bearer harbor-tok-".length())) : -1;
            if (n < valid.get()) {
                // What Harbor (v2auth) answers any Authorization it refuses.
                ex.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"harbor\"");
                send(ex, 401, new byte[0]);
                return;
            }
            serveRange(ex);
        });
        RangeFetcher f = client(1).blob(repo(registry), digest);
        assertRange(f, 0, 1000);
        assertEquals(1, tokensIssued.get());
        valid.set(2); // harbor-tok-1 is refused from now on, though it has 30 minutes to run
        assertRange(f, 1000, 1000);
        assertEquals(2, tokensIssued.get(), "a new token was fetched");
        int before = registryRequests.get();
        assertRange(f, 2000, 1000);
        assertEquals(before + 1, registryRequests.get(), "the new token is used directly");
        assertEquals(2, tokensIssued.get());
    }

    @Test
    void oversizedManifestsAndTokenAnswersAreRefusedNamingWhatWasTooLarge() throws Exception {
        HttpServer bigManifest = server(new AtomicInteger(), ex -> {
            ex.getResponseHeaders().set("Content-Type", MediaTypes.OCI_MANIFEST);
            send(ex, 200, new byte[ManifestResolver.MAX_MANIFEST_BYTES + 1]);
        });
        RegistryException m = assertThrows(RegistryException.class, () -> client(1).resolve(repo(bigManifest)));
        assertTrue(m.getMessage().contains("/test/repo:v1: the manifest is larger than " + ManifestResolver.MAX_MANIFEST_BYTES),
                m.getMessage());

        HttpServer bigToken = server(new AtomicInteger(), ex -> send(ex, 200, new byte[RegistryClient.MAX_TOKEN_ANSWER + 1]));
        HttpServer registry = server(new AtomicInteger(), ex -> {
            ex.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"http://127.0.0.1:" + port(bigToken) + "/token\"");
            send(ex, 401, new byte[0]);
        });
        RegistryException t = assertThrows(RegistryException.class, () -> client(1).resolve(repo(registry)));
        assertTrue(t.getMessage().contains("the answer of the token service at 127.0.0.1 is larger than "
                + RegistryClient.MAX_TOKEN_ANSWER), t.getMessage());
    }

    @Test
    void aTokenThatDoesNotCoverTheRepositoryIsAccessDeniedNotWrongCredentials() throws Exception {
        // Docker Hub's answer for a repository that does not exist or is private: the token service
        // issues a token (it accepts the credentials), the registry refuses it as insufficient_scope.
        HttpServer realm = server(new AtomicInteger(), ex -> send(ex, 200, "{\"token\":\"t\"}".getBytes(StandardCharsets.UTF_8)));
        String challenge = "Bearer realm=\"http://127.0.0.1:" + port(realm) + "/token\",service=\"registry.test\"";
        HttpServer registry = server(new AtomicInteger(), ex -> {
            boolean withToken = ex.getRequestHeaders().getFirst("Authorization") != null;
            ex.getResponseHeaders().set("WWW-Authenticate", withToken
                    ? challenge + ",scope=\"repository:test/repo:pull\",error=\"insufficient_scope\"" : challenge);
            send(ex, 401, new byte[0]);
        });
        RegistryException anonymous = assertThrows(RegistryException.class, () -> client(1).resolve(repo(registry)));
        assertTrue(anonymous.getMessage().contains("access denied to GET http://127.0.0.1:" + port(registry)
                + "/v2/test/repo/manifests/v1 for anonymous (the token it was issued does not cover repository:test/repo:pull,"
                + " insufficient_scope): the repository may not exist"), anonymous.getMessage());
        RegistryClient withCreds = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withCredentials(Credentials.parse("bob:hunter2", "--creds")));
        RegistryException user = assertThrows(RegistryException.class, () -> withCreds.resolve(repo(registry)));
        assertTrue(user.getMessage().contains("for user 'bob' (from --creds)"), user.getMessage());
        assertTrue(user.getMessage().contains("the repository may not exist, or this user may not pull from it"), user.getMessage());
        assertFalse(user.getMessage().contains("refused the credentials"), user.getMessage());
    }

    @Test
    void aBootstrapLayerLongerThanItsManifestSaysStopsEarly() throws Exception {
        AtomicLong sent = new AtomicLong();
        AtomicInteger requests = new AtomicInteger();
        HttpServer registry = server(requests, ex -> {
            // 200 with a chunked body that never ends (until the client hangs up).
            ex.sendResponseHeaders(200, 0);
            byte[] junk = new byte[64 * 1024];
            try (OutputStream out = ex.getResponseBody()) {
                while (sent.get() < (1L << 30)) {
                    out.write(junk);
                    sent.addAndGet(junk.length);
                }
            } catch (IOException hungUp) {
                // the client cancelled: what the test wants
            }
        });
        Path target = tmp.resolve("layer");
        RegistryException e = assertThrows(RegistryException.class,
                () -> client(1).downloadBlob(repo(registry), digest, 5957, target));
        assertTrue(e.getMessage().contains("more than the 5957 bytes the manifest gives it"), e.getMessage());
        assertTrue(sent.get() < (256L << 20), "the server got to send " + sent.get() + " bytes");
        assertTrue(!Files.exists(target) || Files.size(target) <= 5957, "no more than the manifest's size was written");

        // A Content-Length that disagrees with the manifest: refused before the body.
        HttpServer lying = server(requests, ex -> send(ex, 200, new byte[20_000]));
        RegistryException lie = assertThrows(RegistryException.class,
                () -> client(1).downloadBlob(repo(lying), digest, 5957, tmp.resolve("layer2")));
        assertTrue(lie.getMessage().contains("sends 20000 bytes, the manifest says 5957"), lie.getMessage());
    }

    @Test
    void aBootstrapThatWouldUnpackPastTwoGibIsRefusedBeforeUnpacking() throws Exception {
        // A tar header for a 3 GiB image/image.boot followed by a little data: the header alone decides.
        TarArchiveEntry e = new TarArchiveEntry(MediaTypes.BOOTSTRAP_ENTRY);
        e.setSize(3L << 30);
        byte[] header = new byte[512];
        e.writeEntryHeader(header);
        ByteArrayOutputStream gz = new ByteArrayOutputStream();
        try (GZIPOutputStream out = new GZIPOutputStream(gz)) {
            out.write(header);
            out.write(new byte[1 << 20]);
        }
        Path layer = tmp.resolve("bomb.tar.gz");
        Files.write(layer, gz.toByteArray());
        Path out = tmp.resolve("bootstrap");
        RegistryException ex = assertThrows(RegistryException.class, () -> BootstrapLayer.extract(layer, out, "bomb layer"));
        assertTrue(ex.getMessage().contains("bootstraps over 2 GiB are not supported"), ex.getMessage());
        assertFalse(Files.exists(out), "nothing was unpacked");
    }

    @Test
    void contentRangeNumbersTooLongForALongAreABadAnswerNotACrash() throws Exception {
        AtomicInteger requests = new AtomicInteger();
        HttpServer partial = server(requests, ex -> {
            ex.getResponseHeaders().set("Content-Range", "bytes 0-9/99999999999999999999999");
            send(ex, 206, Arrays.copyOfRange(blob, 0, 10));
        });
        RegistryException e = assertThrows(RegistryException.class, () -> client(2).blob(repo(partial), digest).fetch(0, ByteBuffer.allocate(10)));
        assertTrue(e.getMessage().contains("206 without a valid Content-Range"), e.getMessage());
        HttpServer unsatisfied = server(requests, ex -> {
            ex.getResponseHeaders().set("Content-Range", "bytes */99999999999999999999999");
            send(ex, 416, new byte[0]);
        });
        RegistryException past = assertThrows(RegistryException.class,
                () -> client(1).blob(repo(unsatisfied), digest).fetch(5, ByteBuffer.allocate(10)));
        assertEquals(416, past.status(), past.getMessage());
        // Retry-After: 10^16 seconds would wrap to a negative wait if multiplied as it came; it is a day (the
        // retry policy then caps the wait itself).
        long huge = RegistryClient.retryAfterMillis(java.net.http.HttpHeaders.of(Map.of("Retry-After", List.of("10000000000000000")), (a, b) -> true));
        assertEquals(java.util.concurrent.TimeUnit.DAYS.toMillis(1), huge);
    }

    @Test
    void onlyARegistryThatNeverAnsweredIsUnreachable() throws Exception {
        int closedPort;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = s.getLocalPort();
        }
        ImageReference nobody = ImageReference.parse("127.0.0.1:" + closedPort + "/test/repo:v1");
        RegistryException refused = assertThrows(RegistryException.class, () -> client(2).resolve(nobody));
        assertInstanceOf(RegistryUnreachableException.class, refused, refused.getMessage());
        // The JDK's ConnectException has no message: the error says what happened, not its class name.
        assertTrue(refused.getMessage().contains("could not connect"), refused.getMessage());

        // A registry that answers with a manifest that is not a Nydus image: believed, not "unreachable".
        String layer = "sha256:" + "ab".repeat(32);
        String config = "sha256:" + "cd".repeat(32);
        byte[] manifest = ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + config + "\",\"size\":2},"
                + "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" + layer + "\",\"size\":10}]}")
                .getBytes(StandardCharsets.UTF_8);
        AtomicInteger requests = new AtomicInteger();
        HttpServer plainOci = server(requests, ex -> {
            ex.getResponseHeaders().set("Content-Type", "application/vnd.oci.image.manifest.v1+json");
            ex.getResponseHeaders().set("Docker-Content-Digest", Digests.sha256(manifest));
            send(ex, 200, manifest);
        });
        RegistryException answered = assertThrows(RegistryException.class, () -> client(1).resolve(repo(plainOci)));
        assertFalse(answered instanceof RegistryUnreachableException, answered.getMessage());
        assertTrue(answered.getMessage().contains("is not a Nydus image"), answered.getMessage());
    }
}
