package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.net.Proxy;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The client's small pure parts: retry delays, proxy rules, the latency histogram, index choice, the bootstrap tar. */
class ClientPartsTest {
    @TempDir
    Path tmp;

    @Test
    void onlyThisMachinesAddressesGoPlainHttpUnlessNamedInsecure() {
        RegistryClient client = new RegistryClient(RegistryOptions.defaults().withInsecureRegistries(java.util.Set.of("lab.example:5000")));
        for (String local : new String[] {"localhost:5000", "127.0.0.1:5000", "127.255.0.9", "[::1]:5000", "localhost"}) {
            assertTrue(client.plainHttp(local), local);
        }
        for (String remote : new String[] {"127.example.com", "127.0.0.1.nip.io:5000", "127.0.0.256", "1270.0.0.1",
            "registry.example.com", "lab.example:5001", "[::2]:5000"}) {
            assertFalse(client.plainHttp(remote), remote);
        }
        assertTrue(client.plainHttp("lab.example:5000"));
    }

    @Test
    void credentialsAreFoundPerRepositoryAndAskedForAgainAfterAWhile() throws Exception {
        java.util.List<String> asked = new java.util.ArrayList<>();
        RegistryHost host = new RegistryHost("r.example", URI.create("https://r.example/"), repository -> {
            asked.add(repository);
            return java.util.Optional.of(new Credentials("user-" + asked.size(), "p", "test"));
        }, 1);
        assertEquals("user-1", host.credentials("repository:team/app:pull").orElseThrow().username());
        assertEquals("user-1", host.credentials("repository:team/app:pull,push").orElseThrow().username());
        // A push with a cross-repository mount: the target's credentials (the scope's first repository).
        assertEquals("user-2", host.credentials("repository:other/x:pull,push repository:team/app:pull").orElseThrow().username());
        assertEquals(java.util.List.of("team/app", "other/x"), asked);
        host.credentialsTtlNanos = 0; // a renewed login or helper token is picked up once the reuse time passed
        assertEquals("user-3", host.credentials("repository:team/app:pull").orElseThrow().username());
        // A lookup that fails once found some before: those stay, the read goes on.
        RegistryHost failing = new RegistryHost("f.example", URI.create("https://f.example/"), repository -> {
            asked.add("f:" + repository);
            if (asked.size() > 4) {
                throw new RegistryException("the helper broke");
            }
            return java.util.Optional.of(new Credentials("kept", "p", "test"));
        }, 1);
        assertEquals("kept", failing.credentials("repository:a:pull").orElseThrow().username());
        failing.credentialsTtlNanos = 0;
        assertEquals("kept", failing.credentials("repository:a:pull").orElseThrow().username());
        assertEquals(5, asked.size());

        // Many threads asking at once for a repository not looked up yet: one lookup (a helper may prompt).
        java.util.concurrent.atomic.AtomicInteger lookups = new java.util.concurrent.atomic.AtomicInteger();
        java.util.List<Thread> askers = new java.util.concurrent.CopyOnWriteArrayList<>();
        RegistryHost slow = new RegistryHost("s.example", URI.create("https://s.example/"), repository -> {
            lookups.incrementAndGet();
            // The lookup runs until the other askers wait behind it (or 10 s pass: then they did not,
            // and ran lookups of their own, which the count below shows).
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
            while (System.nanoTime() < deadline && !(askers.size() == 4 && askers.stream()
                    .filter(t -> t != Thread.currentThread()).allMatch(t -> t.getState() == Thread.State.BLOCKED))) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
            return java.util.Optional.of(new Credentials("once", "p", "test"));
        }, 1);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            java.util.List<java.util.concurrent.Future<String>> users = new java.util.ArrayList<>();
            for (int i = 0; i < 4; i++) {
                users.add(pool.submit(() -> {
                    askers.add(Thread.currentThread());
                    return slow.credentials("repository:x:pull").orElseThrow().username();
                }));
            }
            for (java.util.concurrent.Future<String> u : users) {
                assertEquals("once", u.get(30, java.util.concurrent.TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(1, lookups.get());

        assertEquals("", RegistryHost.repositoryOf(null));
        assertEquals("", RegistryHost.repositoryOf("registry:catalog:*"));
        assertEquals("a/b", RegistryHost.repositoryOf("repository:a/b:pull"));
    }

    @Test
    void retryDelaysGrowWithJitterAndHonourRetryAfter() {
        RetryPolicy p = new RetryPolicy(5, Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofSeconds(3));
        for (int i = 0; i < 200; i++) {
            long d1 = p.delayMillis(1, -1);
            long d3 = p.delayMillis(3, -1);
            long d9 = p.delayMillis(9, -1);
            assertTrue(d1 >= 50 && d1 <= 100, "" + d1);
            assertTrue(d3 >= 200 && d3 <= 400, "" + d3);
            assertTrue(d9 >= 500 && d9 <= 1000, "" + d9);
        }
        assertEquals(2000, p.delayMillis(1, 2000));
        assertEquals(3000, p.delayMillis(1, 60_000), "Retry-After is capped");
        for (int s : new int[] {408, 429, 500, 502, 503, 504, 599}) {
            assertTrue(RetryPolicy.retryable(s), "" + s);
        }
        for (int s : new int[] {200, 206, 400, 401, 403, 404, 416, 501}) {
            assertFalse(RetryPolicy.retryable(s), "" + s);
        }
        assertThrows(IllegalArgumentException.class, () -> RetryPolicy.DEFAULT.withMaxAttempts(0));
    }

    @Test
    void proxyVariablesAndNoProxyRules() {
        assertNull(EnvProxySelector.fromEnvironment(Map.of("NO_PROXY", "x")));
        EnvProxySelector s = EnvProxySelector.fromEnvironment(Map.of(
                "HTTPS_PROXY", "http://proxy.example:3128", "http_proxy", "p2.example",
                "NO_PROXY", "internal.example, .corp.example,*.lab.example,10.0.0.1,reg.example:5000"));
        assertEquals("proxy.example:3128", s.select(URI.create("https://registry.example/v2/")).get(0).address().toString()
                .replace("/<unresolved>", ""));
        assertEquals("p2.example:80", s.select(URI.create("http://registry.example/v2/")).get(0).address().toString()
                .replace("/<unresolved>", ""));
        for (String direct : new String[] {"https://internal.example/", "https://a.internal.example/", "https://x.corp.example/",
                "https://corp.example/", "https://y.lab.example/", "http://10.0.0.1/", "http://reg.example:5000/"}) {
            assertEquals(Proxy.NO_PROXY, s.select(URI.create(direct)).get(0), direct);
        }
        for (String proxied : new String[] {"https://notinternal.example/", "http://reg.example:5001/", "https://127.0.0.1/"}) {
            assertEquals(Proxy.Type.HTTP, s.select(URI.create(proxied)).get(0).type(), proxied);
        }
        EnvProxySelector all = EnvProxySelector.fromEnvironment(Map.of("HTTPS_PROXY", "http://p:1", "no_proxy", "*"));
        assertEquals(Proxy.NO_PROXY, all.select(URI.create("https://anything/")).get(0));
        IllegalArgumentException creds = assertThrows(IllegalArgumentException.class,
                () -> EnvProxySelector.fromEnvironment(Map.of("HTTPS_PROXY", "http://user:secret@p:1")));
        assertFalse(creds.getMessage().contains("secret"));
    }

    @Test
    void latencyPercentilesFromTheFixedHistogram() {
        RegistryMetrics m = new RegistryMetrics("r");
        assertEquals(0, m.p50Micros());
        for (int i = 0; i < 98; i++) {
            m.latencyNanos(1_000_000); // 1 ms
        }
        m.latencyNanos(200_000_000);
        m.latencyNanos(200_000_000);
        long p50 = m.p50Micros();
        long p99 = m.p99Micros();
        assertTrue(p50 >= 1000 && p50 < 1200, "p50 " + p50);
        assertTrue(p99 >= 200_000 && p99 < 240_000, "p99 " + p99);
        m.request();
        m.bytes(10);
        assertTrue(m.summary().startsWith("registry=r requests=1 bytes=10 retries=0 errors=0 p50=1.1ms p99="), m.summary());
    }

    /** Slow answers (a throttled or stalled registry) are reported as seconds, not as Long.MAX_VALUE microseconds. */
    @Test
    void slowLatenciesKeepTheirSize() {
        RegistryMetrics m = new RegistryMetrics("r");
        m.latencyNanos(5_000_000_000L); // 5 s: a request waiting out a deadline
        long p99 = m.p99Micros();
        assertTrue(p99 >= 5_000_000 && p99 < 6_000_000, "p99 " + p99);
        assertTrue(m.summary().endsWith(" p50=" + p99 / 1000 + "ms p99=" + p99 / 1000 + "ms"), m.summary());
        m.latencyNanos(3_600_000_000_000L); // an hour: past the last bound, reported as it is
        m.latencyNanos(3_600_000_000_000L);
        assertEquals(3_600_000_000L, m.p99Micros());
        assertTrue(m.summary().endsWith(" p99=3600000ms"), m.summary());
    }

    @Test
    void indexChoosesTheNydusManifestForThisPlatform() throws Exception {
        ObjectMapper json = new ObjectMapper();
        String arch = ManifestResolver.goArch(System.getProperty("os.arch"));
        String other = arch.equals("amd64") ? "arm64" : "amd64";
        String d1 = "sha256:" + "1".repeat(64);
        String d2 = "sha256:" + "2".repeat(64);
        String d3 = "sha256:" + "3".repeat(64);
        ImageReference ref = ImageReference.parse("h.example/r:t");
        String byArtifact = "{\"manifests\":[{\"digest\":\"" + d1 + "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch + "\"}},"
                + "{\"digest\":\"" + d2 + "\",\"artifactType\":\"" + MediaTypes.NYDUS_MANIFEST_ARTIFACT
                + "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + other + "\"}},"
                + "{\"digest\":\"" + d3 + "\",\"artifactType\":\"" + MediaTypes.NYDUS_MANIFEST_ARTIFACT
                + "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch + "\"}}]}";
        assertEquals(d3, ManifestResolver.chooseFromIndex(ref, json.readTree(byArtifact)));
        String byFeature = "{\"manifests\":[{\"digest\":\"" + d1 + "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch + "\"}},"
                + "{\"digest\":\"" + d2 + "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch
                + "\",\"os.features\":[\"nydus.remoteimage.v1\"]}}]}";
        assertEquals(d2, ManifestResolver.chooseFromIndex(ref, json.readTree(byFeature)));
        String plain = "{\"manifests\":[{\"digest\":\"" + d1 + "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch + "\"}}]}";
        RegistryException e = assertThrows(RegistryException.class, () -> ManifestResolver.chooseFromIndex(ref, json.readTree(plain)));
        assertTrue(e.getMessage().contains("is not a Nydus image"), e.getMessage());
        String wrongArch = "{\"manifests\":[{\"digest\":\"" + d2 + "\",\"artifactType\":\"" + MediaTypes.NYDUS_MANIFEST_ARTIFACT
                + "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"" + other + "\"}}]}";
        RegistryException e2 = assertThrows(RegistryException.class, () -> ManifestResolver.chooseFromIndex(ref, json.readTree(wrongArch)));
        assertTrue(e2.getMessage().contains("no Nydus manifest for linux/" + arch + " (it has linux/" + other + ")"), e2.getMessage());
    }

    @Test
    void bootstrapLayerIsReproducibleAndRoundTrips() throws Exception {
        Path boot = tmp.resolve("bootstrap");
        byte[] data = new byte[300_000];
        new java.util.Random(2).nextBytes(data);
        Files.write(boot, data);
        ByteArrayOutputStream a = new ByteArrayOutputStream();
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        String diffA = BootstrapLayer.write(boot, a);
        Files.setLastModifiedTime(boot, java.nio.file.attribute.FileTime.fromMillis(12345));
        String diffB = BootstrapLayer.write(boot, b);
        assertEquals(diffA, diffB);
        assertTrue(java.util.Arrays.equals(a.toByteArray(), b.toByteArray()), "same bootstrap, same layer bytes");
        Path layer = tmp.resolve("layer.tar.gz");
        Files.write(layer, a.toByteArray());
        Path out = tmp.resolve("out");
        BootstrapLayer.extract(layer, out, "test layer");
        assertTrue(java.util.Arrays.equals(data, Files.readAllBytes(out)));
        // Truncated gzip: a one-line error.
        Path cut = tmp.resolve("cut.tar.gz");
        Files.write(cut, java.util.Arrays.copyOf(a.toByteArray(), 1000));
        RegistryException e = assertThrows(RegistryException.class, () -> BootstrapLayer.extract(cut, tmp.resolve("o2"), "cut layer"));
        assertTrue(e.getMessage().startsWith("cut layer is not a gzip tar"), e.getMessage());
    }
}
