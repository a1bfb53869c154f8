package io.strata.registry;

import static io.strata.registry.TestHttpServers.port;
import static io.strata.registry.TestHttpServers.send;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Redirects, retries, deadlines, proxies and the concurrency bound, against small HTTP servers the
 * test runs on 127.0.0.1 (real HTTP peers, com.sun.net.httpserver): an object store on another host
 * name that must never see Authorization, a registry answering 429 with Retry-After, 5xx bursts, a
 * response slower than the deadline, a server that ignores Range, a forward proxy from HTTP_PROXY.
 * Fault injection through a proxy in front of the real registry is the end-to-end tests' job.
 */
class RedirectRetryTest {

    private final byte[] blob = new byte[200_000];
    private String digest;
    private final TestHttpServers http = new TestHttpServers();

    /** One request a server saw. */
    record Seen(String method, String path, String authorization, String range, String host) {
    }

    @BeforeEach
    void blob() {
        new Random(3).nextBytes(blob);
        digest = Digests.sha256(blob);
    }

    @AfterEach
    void stop() {
        http.close();
    }

    private HttpServer server(List<Seen> seen, TestHttpServers.Handler h) throws IOException {
        return http.start(exchange -> {
            seen.add(new Seen(exchange.getRequestMethod(), exchange.getRequestURI().toString(),
                    exchange.getRequestHeaders().getFirst("Authorization"), exchange.getRequestHeaders().getFirst("Range"),
                    exchange.getRequestHeaders().getFirst("Host")));
            h.handle(exchange);
        });
    }

    private static final String BOB = "Basic " + Base64.getEncoder().encodeToString("bob:hunter2".getBytes(StandardCharsets.UTF_8));

    /** A registry that asks for bob's Basic credentials, then redirects every request to {@code location}. */
    private HttpServer bobsRegistryRedirecting(List<Seen> seen, int status, java.util.function.Supplier<String> location) throws IOException {
        return server(seen, ex -> {
            if (!BOB.equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                ex.getResponseHeaders().set("WWW-Authenticate", "Basic realm=\"test\"");
                send(ex, 401, new byte[0]);
                return;
            }
            ex.getResponseHeaders().set("Location", location.get());
            send(ex, status, new byte[0]);
        });
    }

    private void serveRange(HttpExchange ex) throws IOException {
        TestHttpServers.serveRange(ex, blob);
    }

    private ImageReference repo(HttpServer registry) {
        return ImageReference.parse("127.0.0.1:" + port(registry) + "/test/repo:v1");
    }

    private void assertRange(RangeFetcher f, int position, int length) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(length);
        f.fetch(position, dst);
        assertArrayEquals(Arrays.copyOfRange(blob, position, position + length), dst.array());
    }

    @Test
    void redirectToAnotherHostNeverCarriesAuthorizationAndIsCachedUntilItExpires() throws Exception {
        List<Seen> storageSeen = Collections.synchronizedList(new ArrayList<>());
        List<Seen> registrySeen = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger generation = new AtomicInteger(1);
        HttpServer storage = server(storageSeen, ex -> {
            String q = ex.getRequestURI().getQuery();
            if (!("sig=" + generation.get()).equals(q)) {
                send(ex, 403, "signature expired".getBytes(StandardCharsets.UTF_8));
                return;
            }
            serveRange(ex);
        });
        String basic = BOB;
        // "localhost" is another origin than "127.0.0.1" (same machine, different host name).
        HttpServer registry = bobsRegistryRedirecting(registrySeen, 307,
                () -> "http://localhost:" + port(storage) + "/storage/blob?sig=" + generation.get());
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withCredentials(Credentials.parse("bob:hunter2", "--creds")));
        RangeFetcher f = client.blob(repo(registry), digest);
        assertRange(f, 0, 1000);
        assertRange(f, 5000, 20000);
        assertEquals(2, storageSeen.size());
        int registryRequests = registrySeen.size();
        assertEquals(2, registryRequests, "a 401, then the authenticated request that was redirected; the second read went straight to storage");
        // The signed URL expires: the storage says 403, the client asks the registry again.
        generation.incrementAndGet();
        assertRange(f, 100_000, 99_999);
        assertEquals(registryRequests + 1, registrySeen.size());
        assertEquals(4, storageSeen.size(), storageSeen::toString);
        for (Seen s : storageSeen) {
            assertNull(s.authorization(), "the storage host saw Authorization: " + s);
        }
        assertTrue(registrySeen.stream().skip(1).allMatch(s -> basic.equals(s.authorization())), registrySeen::toString);
    }

    @Test
    void aManifestRedirectedToAnotherHostIsFollowedWithoutAuthorization() throws Exception {
        // Registries behind a CDN (and distribution with a redirecting storage middleware) answer a
        // manifest GET with a redirect too, not only blob GETs.
        String bootstrap = "sha256:" + "ab".repeat(32);
        byte[] manifest = ("{\"schemaVersion\":2,\"mediaType\":\"" + MediaTypes.OCI_MANIFEST + "\",\"layers\":[{\"mediaType\":\""
                + MediaTypes.OCI_LAYER_TAR_GZIP + "\",\"digest\":\"" + bootstrap + "\",\"size\":10,\"annotations\":{\""
                + MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP + "\":\"true\"}}]}").getBytes(StandardCharsets.UTF_8);
        List<Seen> storageSeen = Collections.synchronizedList(new ArrayList<>());
        List<Seen> registrySeen = Collections.synchronizedList(new ArrayList<>());
        HttpServer storage = server(storageSeen, ex -> {
            ex.getResponseHeaders().set("Content-Type", MediaTypes.OCI_MANIFEST);
            send(ex, 200, manifest);
        });
        HttpServer registry = bobsRegistryRedirecting(registrySeen, 302, () -> "http://localhost:" + port(storage) + "/cdn/manifest?sig=1");
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withCredentials(Credentials.parse("bob:hunter2", "--creds")));
        ResolvedImage image = client.resolve(repo(registry));
        assertEquals(bootstrap, image.bootstrap().digest());
        assertEquals(Digests.sha256(manifest), image.manifestDigest());
        assertEquals(1, storageSeen.size(), storageSeen::toString);
        assertNull(storageSeen.get(0).authorization(), "the storage host saw Authorization");
    }

    /**
     * A redirect target (a CDN edge) holding a cut-short copy answers 416 past its cut and 206s that
     * name its own total: the blob's size stays the manifest's, the read asks the registry again and
     * goes where it sends it now; before, every read past the cut failed until restart.
     */
    @Test
    void aRedirectTargetWithACutShortCopyIsLeftForTheRegistry() throws Exception {
        byte[] whole = new byte[100_000];
        new Random(1).nextBytes(whole);
        String digest = Digests.sha256(whole);
        byte[] partial = Arrays.copyOf(whole, 50_000);
        HttpServer stale = http.start(ex -> {
            String r = ex.getRequestHeaders().getFirst("Range");
            int first = Integer.parseInt(r.substring(6, r.indexOf('-')));
            if (first >= partial.length) {
                ex.getResponseHeaders().set("Content-Range", "bytes */" + partial.length);
                send(ex, 416, new byte[0]);
            } else {
                TestHttpServers.serveRange(ex, partial);
            }
        });
        HttpServer good = http.start(ex -> TestHttpServers.serveRange(ex, whole));
        AtomicInteger registryRequests = new AtomicInteger();
        HttpServer[] edge = {stale};
        HttpServer registry = http.start(ex -> {
            registryRequests.incrementAndGet();
            ex.getResponseHeaders().set("Location", "http://localhost:" + port(edge[0]) + "/b");
            send(ex, 307, new byte[0]);
        });
        RegistryClient c = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withRetry(new RetryPolicy(3, Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofSeconds(1))));
        RangeFetcher f = c.blob(ImageReference.parse("127.0.0.1:" + port(registry) + "/test/repo:v1"), digest, whole.length);
        // Inside the stale copy, but its Content-Range says 50000 bytes: refused, the registry asked again (same edge).
        RegistryException refused = assertThrows(RegistryException.class, () -> f.fetch(0, ByteBuffer.allocate(1000)));
        assertTrue(refused.getMessage().contains("blob of 50000 bytes; its manifest says 100000"), refused.getMessage());
        assertEquals(100_000, f.size(), "the manifest's size stays");
        edge[0] = good; // the registry sends clients to a healthy edge now
        int before = registryRequests.get();
        ByteBuffer got = ByteBuffer.allocate(1000);
        f.fetch(60_000, got);
        assertArrayEquals(Arrays.copyOfRange(whole, 60_000, 61_000), got.array());
        assertEquals(before + 1, registryRequests.get(), "asked the registry again once");
        ByteBuffer next = ByteBuffer.allocate(1000);
        f.fetch(0, next);
        assertArrayEquals(Arrays.copyOf(whole, 1000), next.array());
        assertEquals(before + 1, registryRequests.get(), "the new redirect is remembered");
        assertEquals(100_000, f.size());
    }

    @Test
    void retryAfterIsHonouredOn429() throws Exception {
        List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger n = new AtomicInteger();
        HttpServer registry = server(seen, ex -> {
            if (n.incrementAndGet() <= 2) {
                ex.getResponseHeaders().set("Retry-After", "1");
                send(ex, 429, "slow down".getBytes(StandardCharsets.UTF_8));
                return;
            }
            serveRange(ex);
        });
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of()));
        long t0 = System.nanoTime();
        assertRange(client.blob(repo(registry), digest), 10, 100);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms >= 1900, "two Retry-After: 1 waits took only " + ms + " ms");
        assertEquals(3, seen.size());
        RegistryMetrics m = client.metrics(repo(registry).registry());
        assertEquals(2, m.retries(), m.summary());
        assertEquals(3, m.requests(), m.summary());
    }

    @Test
    void serverErrorsAreRetriedWithinBoundsAnd501IsNot() throws Exception {
        List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger status = new AtomicInteger(503);
        HttpServer registry = server(seen, ex -> send(ex, status.get(), "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"busy\"}]}"
                .getBytes(StandardCharsets.UTF_8)));
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withRetry(new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(50), Duration.ofSeconds(1))));
        RangeFetcher f = client.blob(repo(registry), digest);
        RegistryException e = assertThrows(RegistryException.class, () -> f.fetch(0, ByteBuffer.allocate(10)));
        assertTrue(e.getMessage().contains("HTTP 503 (UNAVAILABLE: busy) (gave up after 3 tries)"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        assertEquals(3, seen.size());
        status.set(501);
        RegistryException e501 = assertThrows(RegistryException.class, () -> f.fetch(0, ByteBuffer.allocate(10)));
        assertEquals(501, e501.status());
        assertEquals(4, seen.size(), "501 is not retried");
        status.set(500);
        seen.clear();
        assertThrows(RegistryException.class, () -> f.fetch(0, ByteBuffer.allocate(10)));
        assertEquals(3, seen.size());
    }

    @Test
    void aResponseSlowerThanTheDeadlineFailsTheReadInTime() throws Exception {
        List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
        HttpServer registry = server(seen, ex -> {
            // Headers at once, then a body that stalls (a slowloris registry or a dying connection).
            byte[] part = Arrays.copyOfRange(blob, 0, 10);
            ex.getResponseHeaders().set("Content-Range", "bytes 0-99/" + blob.length);
            ex.sendResponseHeaders(206, 100);
            ex.getResponseBody().write(part);
            ex.getResponseBody().flush();
            Thread.sleep(10_000);
        });
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withTimeouts(Duration.ofSeconds(1), Duration.ofMillis(300), Duration.ofMillis(1500)));
        ByteBuffer dst = ByteBuffer.allocate(100);
        long t0 = System.nanoTime();
        RegistryException e = assertThrows(RegistryException.class, () -> client.blob(repo(registry), digest).fetch(0, dst));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms < 3000, "the read took " + ms + " ms, past its 1.5 s deadline");
        assertTrue(seen.size() >= 2, "the stalled try was abandoned and tried again: " + seen.size());
        assertTrue(e.getMessage().contains("gave up") || e.getMessage().contains("deadline"), e.getMessage());
        assertEquals(0, dst.position(), "a failed read leaves the buffer's position");
    }

    @Test
    void aServerThatIgnoresRangeIsReadBySkipping() throws Exception {
        List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
        HttpServer registry = server(seen, ex -> send(ex, 200, blob));
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of()));
        RangeFetcher f = client.blob(repo(registry), digest);
        assertRange(f, 12345, 5000);
        assertRange(f, 0, blob.length);
        assertEquals(blob.length, f.size());
        RegistryException past = assertThrows(RegistryException.class, () -> f.fetch(blob.length - 10, ByteBuffer.allocate(20)));
        assertEquals(416, past.status());
    }

    @Test
    void aWrongContentRangeIsNeverUsed() throws Exception {
        List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
        HttpServer registry = server(seen, ex -> {
            ex.getResponseHeaders().set("Content-Range", "bytes 0-9/" + blob.length);
            send(ex, 206, Arrays.copyOfRange(blob, 0, 10));
        });
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withRetry(new RetryPolicy(2, Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofSeconds(1))));
        ByteBuffer dst = ByteBuffer.allocate(10);
        RegistryException e = assertThrows(RegistryException.class, () -> client.blob(repo(registry), digest).fetch(50, dst));
        assertTrue(e.getMessage().contains("asked for bytes 50-59, got Content-Range bytes 0-9/"), e.getMessage());
        assertEquals(2, seen.size());
        assertArrayEquals(new byte[10], dst.array(), "no byte of the wrong range was written");
    }

    @Test
    void concurrencyPerRegistryIsBounded() throws Exception {
        List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger inFlight = new AtomicInteger();
        AtomicInteger maxInFlight = new AtomicInteger();
        HttpServer registry = server(seen, ex -> {
            int now = inFlight.incrementAndGet();
            maxInFlight.accumulateAndGet(now, Math::max);
            try {
                Thread.sleep(50);
                serveRange(ex);
            } finally {
                inFlight.decrementAndGet();
            }
        });
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of()).withMaxConcurrency(3));
        RangeFetcher f = client.blob(repo(registry), digest);
        ExecutorService pool = Executors.newFixedThreadPool(12);
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 12; t++) {
                int at = t * 1000;
                fs.add(pool.submit(() -> {
                    for (int i = 0; i < 3; i++) {
                        assertRange(f, at + i, 500);
                    }
                    return null;
                }));
            }
            for (Future<?> fu : fs) {
                fu.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(36, seen.size());
        assertTrue(maxInFlight.get() <= 3, "in flight at once: " + maxInFlight.get());
        assertTrue(maxInFlight.get() >= 2, "the bound was never reached (" + maxInFlight.get() + "): the test proves nothing");
    }

    @Test
    void httpProxyFromTheEnvironmentAndNoProxy() throws Exception {
        List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
        // A forward proxy that answers for the registry itself: what matters is that the request came through it.
        HttpServer proxy = server(seen, this::serveRange);
        ImageReference ref = ImageReference.parse("registry.invalid:5000/test/repo:v1");
        RegistryOptions base = RegistryOptions.defaults().withInsecureRegistries(Set.of("registry.invalid:5000"))
                .withRetry(RetryPolicy.DEFAULT.withMaxAttempts(1));
        RegistryClient proxied = new RegistryClient(base.withEnvironment(Map.of("HTTP_PROXY", "http://127.0.0.1:" + port(proxy))));
        assertRange(proxied.blob(ref, digest), 7, 70);
        assertEquals(1, seen.size());
        assertEquals("registry.invalid:5000", seen.get(0).host());
        assertTrue(seen.get(0).path().startsWith("http://registry.invalid:5000/v2/test/repo/blobs/"), seen.get(0).path());

        RegistryClient bypassed = new RegistryClient(base.withEnvironment(Map.of(
                "http_proxy", "http://127.0.0.1:" + port(proxy), "NO_PROXY", "localhost,.invalid")));
        assertThrows(RegistryException.class, () -> bypassed.blob(ref, digest).fetch(0, ByteBuffer.allocate(1)));
        assertEquals(1, seen.size(), "NO_PROXY sent it direct (and registry.invalid does not resolve)");
    }
}
