package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The registry client's two HTTP clients ({@link HttpClients}): a plain-HTTP registry is served
 * without the JDK's TLS set-up ever being made, and an {@code https://} URL still goes through the
 * client with the system trust store, which refuses a certificate it does not trust. Real peers on
 * 127.0.0.1: a registry (com.sun.net.httpserver) and an HTTPS object store with a self-signed
 * certificate made by the JDK's keytool.
 */
@Timeout(60)
class TlsSplitTest {
    private final byte[] blob = new byte[50_000];
    private HttpServer registry;
    private HttpsServer storage;

    @AfterEach
    void stop() {
        if (registry != null) {
            registry.stop(0);
        }
        if (storage != null) {
            storage.stop(0);
        }
    }

    /** A registry on 127.0.0.1 that answers a blob GET with the blob, or with a redirect to {@code location}. */
    private ImageReference registry(String location) throws IOException {
        registry = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        registry.createContext("/", ex -> {
            try (ex) {
                try (InputStream in = ex.getRequestBody()) {
                    in.readAllBytes();
                }
                if (location != null) {
                    ex.getResponseHeaders().set("Location", location);
                    ex.sendResponseHeaders(307, -1);
                } else {
                    ex.sendResponseHeaders(200, blob.length);
                    ex.getResponseBody().write(blob);
                }
            }
        });
        registry.start();
        return ImageReference.parse("127.0.0.1:" + registry.getAddress().getPort() + "/test/repo:v1");
    }

    private static RegistryOptions options() {
        return RegistryOptions.defaults().withEnvironment(Map.of())
                .withRetry(RetryPolicy.DEFAULT.withMaxAttempts(1))
                .withTimeouts(Duration.ofSeconds(10), Duration.ofSeconds(10), Duration.ofSeconds(20));
    }

    @Test
    void aPlainHttpRegistryIsReadWithoutAnyTlsSetUp() throws Exception {
        new Random(5).nextBytes(blob);
        RegistryClient client = new RegistryClient(options());
        RangeFetcher f = client.blob(registry(null), Digests.sha256(blob), blob.length);
        ByteBuffer dst = ByteBuffer.allocate(blob.length);
        f.fetch(0, dst);
        assertArrayEquals(blob, dst.array());
        assertFalse(client.tlsClientBuilt(), "a plain-HTTP registry made the client build its TLS context");
    }

    @Test
    void anHttpsRedirectGoesThroughTheVerifyingClientAndAnUntrustedCertificateIsRefused(@TempDir Path dir) throws Exception {
        new Random(6).nextBytes(blob);
        AtomicInteger storageRequests = new AtomicInteger();
        storage = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        storage.setHttpsConfigurator(new HttpsConfigurator(selfSigned(dir)));
        storage.createContext("/", ex -> {
            try (ex) {
                storageRequests.incrementAndGet();
                ex.sendResponseHeaders(200, blob.length);
                ex.getResponseBody().write(blob);
            }
        });
        storage.start();
        RegistryClient client = new RegistryClient(options());
        ImageReference repo = registry("https://localhost:" + storage.getAddress().getPort() + "/blob");
        RangeFetcher f = client.blob(repo, Digests.sha256(blob), blob.length);
        IOException e = assertThrows(IOException.class, () -> f.fetch(0, ByteBuffer.allocate(blob.length)));
        assertTrue(client.tlsClientBuilt(), "the https:// URL did not go through the TLS client");
        assertTrue(causes(e).matches("(?s).*(PKIX|certificat|SSLHandshake).*"),
                "not refused for its certificate: " + causes(e));
        assertEquals(0, storageRequests.get(), "the storage served a request over a connection the client should not have trusted");
    }

    @Test
    void thePlainClientsContextMakesNoTlsConnection() {
        SSLContext none = new HttpClients.NoTls();
        assertThrows(IllegalStateException.class, none::createSSLEngine);
        assertThrows(IllegalStateException.class, () -> none.createSSLEngine("localhost", 443));
        assertThrows(IllegalStateException.class, none::getSocketFactory);
        assertThrows(IllegalStateException.class, () -> none.init(null, null, null));
    }

    private static String causes(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            b.append(c.getClass().getName()).append(": ").append(c.getMessage()).append(" / ");
        }
        return b.toString();
    }

    /** A server context with a fresh self-signed certificate for localhost (keytool, a JDK tool). */
    private static SSLContext selfSigned(Path dir) throws Exception {
        Path ks = dir.resolve("server.p12");
        String keytool = Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
        Process p = new ProcessBuilder(List.of(keytool, "-genkeypair", "-alias", "server", "-keyalg", "EC", "-groupname", "secp256r1",
                "-dname", "CN=localhost", "-ext", "san=dns:localhost,ip:127.0.0.1", "-validity", "2", "-storetype", "PKCS12",
                "-keystore", ks.toString(), "-storepass", "changeit", "-keypass", "changeit"))
                .redirectErrorStream(true).redirectOutput(dir.resolve("keytool.log").toFile()).start();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("keytool did not finish in 30 s");
        }
        if (p.exitValue() != 0) {
            throw new IOException("keytool failed: " + Files.readString(dir.resolve("keytool.log")));
        }
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(ks)) {
            store.load(in, "changeit".toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(store, "changeit".toCharArray());
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }
}
