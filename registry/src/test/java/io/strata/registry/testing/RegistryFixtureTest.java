package io.strata.registry.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The fixture itself: each auth variant answers as distribution does, and the access log is parsed. */
class RegistryFixtureTest {
    @TempDir
    Path tmp;

    private static HttpURLConnection get(URI uri, Map<String, String> headers) throws IOException {
        HttpURLConnection c = (HttpURLConnection) uri.toURL().openConnection();
        c.setConnectTimeout(5000);
        c.setReadTimeout(10000);
        headers.forEach(c::setRequestProperty);
        c.getResponseCode();
        return c;
    }

    @Test
    void anonymousAnswersAndLogsAccessAndRestartsOnTheSamePort() throws Exception {
        try (RegistryFixture r = RegistryFixture.anonymous(tmp.resolve("reg"))) {
            assertEquals(200, get(r.baseUri().resolve("/v2/"), Map.of()).getResponseCode());
            assertEquals(404, get(r.baseUri().resolve("/v2/x/manifests/nope"), Map.of()).getResponseCode());
            int port = r.port();
            r.stop();
            assertFalse(r.isRunning());
            r.restart();
            assertEquals(port, r.port());
            assertEquals(200, get(r.baseUri().resolve("/v2/"), Map.of()).getResponseCode());
            var log = r.accessLog();
            assertTrue(log.stream().anyMatch(e -> e.path().equals("/v2/x/manifests/nope") && e.status() == 404), log::toString);
            assertTrue(log.stream().filter(e -> e.path().equals("/v2/") && e.status() == 200).count() >= 2, log::toString);
        }
    }

    @Test
    void htpasswdWantsBasicCredentials() throws Exception {
        try (RegistryFixture r = RegistryFixture.htpasswd(tmp.resolve("reg"), "alice", "s3cret")) {
            HttpURLConnection c = get(r.baseUri().resolve("/v2/"), Map.of());
            assertEquals(401, c.getResponseCode());
            assertTrue(c.getHeaderField("WWW-Authenticate").startsWith("Basic realm="), c.getHeaderField("WWW-Authenticate"));
            String good = "Basic " + Base64.getEncoder().encodeToString("alice:s3cret".getBytes(StandardCharsets.UTF_8));
            assertEquals(200, get(r.baseUri().resolve("/v2/"), Map.of("Authorization", good)).getResponseCode());
            String bad = "Basic " + Base64.getEncoder().encodeToString("alice:wrong".getBytes(StandardCharsets.UTF_8));
            assertEquals(401, get(r.baseUri().resolve("/v2/"), Map.of("Authorization", bad)).getResponseCode());
        }
    }

    @Test
    void bearerChallengesWithTheTokenRealm() throws Exception {
        try (RegistryFixture r = RegistryFixture.bearer(tmp.resolve("reg"), new TokenRealm())) {
            HttpURLConnection c = get(r.baseUri().resolve("/v2/"), Map.of());
            assertEquals(401, c.getResponseCode());
            String challenge = c.getHeaderField("WWW-Authenticate");
            assertTrue(challenge.startsWith("Bearer realm=\"" + r.tokenRealm().uri() + "\""), challenge);
            assertTrue(challenge.contains("service=\"" + TokenRealm.SERVICE + "\""), challenge);
            HttpURLConnection t = get(URI.create(r.tokenRealm().uri() + "?service=" + TokenRealm.SERVICE), Map.of());
            assertEquals(200, t.getResponseCode());
            String json = new String(t.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(json.contains("\"token\":\"strata-test-token-1\""), json);
            assertEquals(200, get(r.baseUri().resolve("/v2/"), Map.of("Authorization", "Bearer strata-test-token-1")).getResponseCode());
            assertEquals(1, r.tokenRealm().tokensIssued());
        }
    }
}
