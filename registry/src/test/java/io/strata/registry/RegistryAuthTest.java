package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.testing.RegistryFixture;
import io.strata.registry.testing.TokenRealm;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Authentication against the real registry: htpasswd (Basic) with --creds and with auth files, and
 * distribution's silly auth (Bearer challenge) with a token realm run by the test. Every test runs
 * with the client's log (stderr, debug for the client) captured and checks that no password, no
 * base64 credentials and no token ever appear in it or in an exception message.
 */
class RegistryAuthTest {
    private static final String USER = "alice";
    private static final String PASSWORD = "pa55-w0rd:with-colon";

    @TempDir
    Path tmp;

    private PrintStream originalErr;
    private final ByteArrayOutputStream captured = new ByteArrayOutputStream();
    private final List<String> messages = new ArrayList<>();

    @BeforeEach
    void captureLog() {
        RegistryFixture.requireTools();
        originalErr = System.err;
        PrintStream tee = new PrintStream(new OutputStream() {
            @Override
            public void write(int b) {
                captured.write(b);
                originalErr.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                captured.write(b, off, len);
                originalErr.write(b, off, len);
            }
        }, true, StandardCharsets.UTF_8);
        System.setErr(tee);
    }

    @AfterEach
    void noSecretsInTheLog() {
        System.setErr(originalErr);
        String log = captured.toString(StandardCharsets.UTF_8) + String.join("\n", messages);
        String b64 = Base64.getEncoder().encodeToString((USER + ":" + PASSWORD).getBytes(StandardCharsets.UTF_8));
        assertTrue(log.contains(" auth (realm "), "the client's debug lines were captured: " + log);
        for (String secret : List.of(PASSWORD, "pa55-w0rd", b64, "strata-test-token-", "wrong-password")) {
            assertFalse(log.contains(secret), "a secret in the log or a message: " + secret);
        }
    }

    private RegistryException expectFailure(org.junit.jupiter.api.function.Executable e) {
        RegistryException ex = assertThrows(RegistryException.class, e);
        messages.add(ex.getMessage());
        messages.add(String.valueOf(ex));
        assertFalse(ex.getMessage().contains("\n"), ex.getMessage());
        return ex;
    }

    private SyntheticImage.Written image() throws Exception {
        return SyntheticImage.write(tmp.resolve("image"), List.of(
                SyntheticImage.uniformBlob(new Random(5), 4, 16384, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
    }

    private static RegistryOptions options(Map<String, String> env) {
        return RegistryOptions.defaults().withEnvironment(env);
    }

    private static void readBack(RegistryClient client, ImageReference ref, SyntheticImage.Written image, Path dir) throws Exception {
        ResolvedImage resolved = client.resolve(ref);
        assertArrayEquals(Files.readAllBytes(image.bootstrap()), Files.readAllBytes(client.fetchBootstrap(resolved, dir)));
        byte[] blob = Files.readAllBytes(image.blobPath(0));
        ByteBuffer dst = ByteBuffer.allocate(1000);
        client.blob(ref, resolved.blobs().get(0).digest()).fetch(100, dst);
        assertArrayEquals(java.util.Arrays.copyOfRange(blob, 100, 1100), dst.array());
    }

    private Path authFile(String name, String key, String user, String password) throws Exception {
        Path f = tmp.resolve(name);
        Files.createDirectories(f.getParent());
        String auth = Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        Files.writeString(f, "{\"auths\":{\"" + key + "\":{\"auth\":\"" + auth + "\"}}}");
        return f;
    }

    @Test
    void basicAuthWithCredsAndWithAuthFiles() throws Exception {
        SyntheticImage.Written image = image();
        try (RegistryFixture registry = RegistryFixture.htpasswd(tmp.resolve("reg"), USER, PASSWORD)) {
            ImageReference ref = ImageReference.parse(registry.reference("private/app:v1"));
            RegistryClient withCreds = new RegistryClient(options(Map.of())
                    .withCredentials(Credentials.parse(USER + ":" + PASSWORD, "--creds")));
            new ImagePusher(withCreds, messages::add).push(tmp.resolve("image"), ref, Optional.empty());
            readBack(withCreds, ref, image, tmp.resolve("b1"));

            // $REGISTRY_AUTH_FILE (podman/skopeo's auth.json)
            Path authJson = authFile("containers/auth.json", registry.registry(), USER, PASSWORD);
            readBack(new RegistryClient(options(Map.of("REGISTRY_AUTH_FILE", authJson.toString()))), ref, image, tmp.resolve("b2"));
            // ${XDG_RUNTIME_DIR}/containers/auth.json
            readBack(new RegistryClient(options(Map.of("XDG_RUNTIME_DIR", tmp.toString()))), ref, image, tmp.resolve("b3"));
            // $DOCKER_CONFIG/config.json, the key written as a URL
            Path docker = authFile("docker/config.json", "http://" + registry.registry() + "/v1/", USER, PASSWORD);
            readBack(new RegistryClient(options(Map.of("DOCKER_CONFIG", docker.getParent().toString()))), ref, image, tmp.resolve("b4"));
            // ~/.docker/config.json
            authFile("home/.docker/config.json", registry.registry(), USER, PASSWORD);
            readBack(new RegistryClient(options(Map.of("HOME", tmp.resolve("home").toString()))), ref, image, tmp.resolve("b5"));

            // Order: the auth file comes before the docker config, so its wrong password is what is tried.
            Path wrongAuthJson = authFile("wrong/auth.json", registry.registry(), USER, "wrong-password");
            RegistryException order = expectFailure(() -> new RegistryClient(options(Map.of(
                    "REGISTRY_AUTH_FILE", wrongAuthJson.toString(), "DOCKER_CONFIG", docker.getParent().toString())))
                    .resolve(ref));
            assertTrue(order.getMessage().contains("refused the credentials of user 'alice' (from " + wrongAuthJson + ")"),
                    order.getMessage());
            assertEquals(401, order.status());

            // Wrong --creds, and none at all: clear one-line errors.
            RegistryException wrong = expectFailure(() -> new RegistryClient(options(Map.of())
                    .withCredentials(Credentials.parse(USER + ":wrong-password", "--creds"))).resolve(ref));
            assertTrue(wrong.getMessage().contains("refused the credentials of user 'alice' (from --creds)"), wrong.getMessage());
            RegistryException none = expectFailure(() -> new RegistryClient(options(Map.of())).resolve(ref));
            assertTrue(none.getMessage().contains("requires a user name and password"), none.getMessage());
            RegistryException pushNone = expectFailure(() -> new ImagePusher(new RegistryClient(options(Map.of())), s -> { })
                    .push(tmp.resolve("image"), ref.withTag("v2"), Optional.empty()));
            assertTrue(pushNone.getMessage().contains("requires a user name and password"), pushNone.getMessage());
        }
    }

    @Test
    void bearerTokenFlowOneFetchPerScope() throws Exception {
        SyntheticImage.Written image = image();
        TokenRealm realm = new TokenRealm().expiresIn(300);
        try (RegistryFixture registry = RegistryFixture.bearer(tmp.resolve("reg"), realm)) {
            ImageReference ref = ImageReference.parse(registry.reference("tokens/app:v1"));
            RegistryClient client = new RegistryClient(options(Map.of()));
            new ImagePusher(client, messages::add).push(tmp.resolve("image"), ref, Optional.empty());
            assertTrue(realm.requests().stream().allMatch(r -> r.method().equals("GET") && r.query().contains("service=strata-test")),
                    realm.requests()::toString);
            assertTrue(realm.requests().stream().anyMatch(r -> r.query().contains("scope=repository%3Atokens%2Fapp%3Apull%2Cpush")),
                    realm.requests()::toString);

            // A fresh client, 8 threads reading at once: one token fetch for the pull scope.
            RegistryClient reader = new RegistryClient(options(Map.of()));
            ResolvedImage resolved = reader.resolve(ref);
            int before = realm.tokensIssued();
            RangeFetcher blob = reader.blob(ref, resolved.blobs().get(0).digest());
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                List<Future<?>> fs = new ArrayList<>();
                for (int t = 0; t < 8; t++) {
                    int at = t * 100;
                    fs.add(pool.submit(() -> {
                        for (int i = 0; i < 5; i++) {
                            blob.fetch(at + i, ByteBuffer.allocate(100));
                        }
                        return null;
                    }));
                }
                for (Future<?> f : fs) {
                    f.get(60, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
            }
            assertEquals(before, realm.tokensIssued(), "the resolve's pull token serves every read");
            readBack(reader, ref, image, tmp.resolve("b1"));
        }
    }

    @Test
    void bearerTokensAreRefreshedBeforeTheyExpire() throws Exception {
        image();
        TokenRealm realm = new TokenRealm().expiresIn(1);
        try (RegistryFixture registry = RegistryFixture.bearer(tmp.resolve("reg"), realm)) {
            ImageReference ref = ImageReference.parse(registry.reference("short/app:v1"));
            RegistryClient client = new RegistryClient(options(Map.of()));
            new ImagePusher(client, messages::add).push(tmp.resolve("image"), ref, Optional.empty());
            ResolvedImage resolved = client.resolve(ref);
            RangeFetcher blob = client.blob(ref, resolved.blobs().get(0).digest());
            int start = realm.tokensIssued();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            int reads = 0;
            // A 1 s token is refreshed 0.75 s after it was issued: keep reading until two refreshes happened.
            while (realm.tokensIssued() < start + 2) {
                assertTrue(System.nanoTime() < deadline, "no token refresh within 20 s");
                blob.fetch(reads % 1000, ByteBuffer.allocate(10));
                reads++;
                Thread.sleep(20);
            }
            // Refreshed before expiry, the registry never had to answer 401 to a read with a token.
            long unauthorizedReads = registry.accessLog().stream()
                    .filter(e -> e.path().contains("/blobs/") && e.method().equals("GET") && e.status() == 401).count();
            assertTrue(unauthorizedReads <= 1, "reads answered 401: " + unauthorizedReads);
        }
    }

    @Test
    void tokenRealmThatOnlyTakesAPostFormAndCredentials() throws Exception {
        SyntheticImage.Written image = image();
        TokenRealm realm = new TokenRealm().refuseGet(true).useAccessTokenField(true).expiresIn(null)
                .requireCredentials(USER, PASSWORD);
        try (RegistryFixture registry = RegistryFixture.bearer(tmp.resolve("reg"), realm)) {
            ImageReference ref = ImageReference.parse(registry.reference("oauth/app:v1"));
            RegistryClient client = new RegistryClient(options(Map.of())
                    .withCredentials(Credentials.parse(USER + ":" + PASSWORD, "--creds")));
            new ImagePusher(client, messages::add).push(tmp.resolve("image"), ref, Optional.empty());
            readBack(client, ref, image, tmp.resolve("b1"));
            assertTrue(realm.requests().stream().anyMatch(r -> r.method().equals("POST") && r.body().contains("grant_type=password")
                    && r.body().contains("username=alice") && r.body().contains("service=strata-test")), "POST form fallback");
            assertTrue(realm.requests().stream().filter(r -> r.method().equals("GET"))
                    .allMatch(r -> r.authorization() != null && r.authorization().startsWith("Basic ")),
                    "the GET carried the Basic credentials");

            RegistryException wrong = expectFailure(() -> new RegistryClient(options(Map.of())
                    .withCredentials(Credentials.parse(USER + ":wrong-password", "--creds"))).resolve(ref));
            assertTrue(wrong.getMessage().contains("refused the credentials of user 'alice'"), wrong.getMessage());
            RegistryException anonymous = expectFailure(() -> new RegistryClient(options(Map.of())).resolve(ref));
            assertTrue(anonymous.getMessage().contains("refused an anonymous token"), anonymous.getMessage());
        }
    }

    @Test
    void namespacedAuthKeysAndACredentialHelperAgainstTheRealRegistry() throws Exception {
        SyntheticImage.Written image = image();
        try (RegistryFixture registry = RegistryFixture.htpasswd(tmp.resolve("reg"), USER, PASSWORD)) {
            ImageReference ref = ImageReference.parse(registry.reference("team/app:v1"));
            new ImagePusher(new RegistryClient(options(Map.of()).withCredentials(Credentials.parse(USER + ":" + PASSWORD, "--creds"))),
                    messages::add).push(tmp.resolve("image"), ref, Optional.empty());
            // The host-wide key comes first in the file and holds another account: the namespace's key wins.
            String wrong = Base64.getEncoder().encodeToString((USER + ":wrong-password").getBytes(StandardCharsets.UTF_8));
            String right = Base64.getEncoder().encodeToString((USER + ":" + PASSWORD).getBytes(StandardCharsets.UTF_8));
            Path auth = tmp.resolve("ns/auth.json");
            Files.createDirectories(auth.getParent());
            Files.writeString(auth, "{\"auths\":{\"" + registry.registry() + "\":{\"auth\":\"" + wrong + "\"},\""
                    + registry.registry() + "/team\":{\"auth\":\"" + right + "\"}}}");
            readBack(new RegistryClient(options(Map.of("REGISTRY_AUTH_FILE", auth.toString()))), ref, image, tmp.resolve("b1"));
            RegistryException other = expectFailure(() -> new RegistryClient(options(Map.of("REGISTRY_AUTH_FILE", auth.toString())))
                    .resolve(ImageReference.parse(registry.reference("elsewhere/app:v1"))));
            assertTrue(other.getMessage().contains("refused the credentials of user 'alice' (from " + auth + ")"), other.getMessage());

            // docker's credsStore: docker-credential-NAME on PATH answers for the registry.
            Path bin = Files.createDirectories(tmp.resolve("bin"));
            Path helper = bin.resolve("docker-credential-strata-test");
            Files.writeString(helper, "#!/bin/sh\nread -r url || true\n[ \"$url\" = \"" + registry.registry() + "\" ] || "
                    + "{ echo 'credentials not found in native keychain'; exit 1; }\n"
                    + "printf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$url\" '" + USER + "' '" + PASSWORD + "'\n");
            helper.toFile().setExecutable(true);
            Path docker = tmp.resolve("docker/config.json");
            Files.createDirectories(docker.getParent());
            Files.writeString(docker, "{\"auths\":{\"" + registry.registry() + "\":{}},\"credsStore\":\"strata-test\"}");
            readBack(new RegistryClient(options(Map.of("DOCKER_CONFIG", docker.getParent().toString(), "PATH", bin + ":/usr/bin:/bin"))),
                    ref, image, tmp.resolve("b2"));
        }
    }

    @Test
    void anIdentityTokenIsExchangedThroughTheRefreshTokenGrant() throws Exception {
        SyntheticImage.Written image = image();
        String identityToken = "idtok-pa55-w0rd-refresh";
        TokenRealm realm = new TokenRealm().requireRefreshToken(identityToken);
        try (RegistryFixture registry = RegistryFixture.bearer(tmp.resolve("reg"), realm)) {
            ImageReference ref = ImageReference.parse(registry.reference("azure/app:v1"));
            Path docker = tmp.resolve("docker/config.json");
            Files.createDirectories(docker.getParent());
            // What `az acr login` leaves: a placeholder user with an empty password, and the identity token.
            String placeholder = Base64.getEncoder().encodeToString("00000000-0000-0000-0000-000000000000:".getBytes(StandardCharsets.UTF_8));
            Files.writeString(docker, "{\"auths\":{\"" + registry.registry() + "\":{\"auth\":\"" + placeholder
                    + "\",\"identitytoken\":\"" + identityToken + "\"}}}");
            RegistryClient client = new RegistryClient(options(Map.of("DOCKER_CONFIG", docker.getParent().toString())));
            new ImagePusher(client, messages::add).push(tmp.resolve("image"), ref, Optional.empty());
            readBack(client, ref, image, tmp.resolve("b1"));
            assertTrue(realm.tokensIssued() >= 2, "a push and a pull token: " + realm.tokensIssued());
            assertTrue(realm.requests().stream().allMatch(r -> r.method().equals("POST") && r.authorization() == null
                    && r.body().contains("grant_type=refresh_token") && r.body().contains("service=strata-test")
                    && r.body().contains("client_id=strata")), realm.requests()::toString);
        }
    }
}
