package io.strata.registry;

import java.net.URI;
import java.net.http.HttpClient;
import java.security.SecureRandom;
import java.util.function.Supplier;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLContextSpi;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocketFactory;
import javax.net.ssl.SSLSessionContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManager;

/**
 * The JDK {@link HttpClient}s of one {@link RegistryClient}: one for {@code https://} URLs, one for
 * plain {@code http://} ones, each built on its first request.
 *
 * <p>Why two: the JDK builds an HttpClient's TLS context when the client is built, whether or not it
 * ever speaks TLS ({@code SSLContext.getDefault()}: the JSSE provider, its cipher suites and the
 * system trust store; 0.4-0.6 s of CPU in a cold JVM on a 2-core machine, most of a plain-HTTP
 * registry's time to resolve an image; docs/benchmarks.md, "Start-up"). A registry on loopback or
 * named with {@code --insecure-registry} is spoken to over plain HTTP, so its client is given a
 * context that cannot make a TLS connection at all ({@link NoTls}): an {@code https://} URL (a
 * redirect to object storage, a token realm) can only go through the TLS client, which is built, as
 * before, with the system's default context (its trust store, certificate and host name checks).
 */
final class HttpClients {
    private final Supplier<HttpClient.Builder> builder;
    private volatile HttpClient tls;
    private volatile HttpClient plain;

    /** {@code builder} gives a new builder with the settings both clients share (version, redirects, timeouts, proxy). */
    HttpClients(Supplier<HttpClient.Builder> builder) {
        this.builder = builder;
    }

    /** The client for this URL's scheme: plain for {@code http}, TLS for anything else. */
    HttpClient forUri(URI uri) {
        return "http".equalsIgnoreCase(uri.getScheme()) ? plain() : tls();
    }

    /** Whether the TLS client (and so the JDK's default TLS context) has been built. */
    boolean tlsBuilt() {
        return tls != null;
    }

    private HttpClient tls() {
        HttpClient c = tls;
        if (c == null) {
            synchronized (this) {
                c = tls;
                if (c == null) {
                    c = builder.get().build(); // no sslContext given: SSLContext.getDefault()
                    tls = c;
                }
            }
        }
        return c;
    }

    private HttpClient plain() {
        HttpClient c = plain;
        if (c == null) {
            synchronized (this) {
                c = plain;
                if (c == null) {
                    // Both given, so the client asks the context for nothing at all.
                    c = builder.get().sslContext(new NoTls()).sslParameters(new SSLParameters()).build();
                    plain = c;
                }
            }
        }
        return c;
    }

    /**
     * A TLS context that refuses to make TLS connections: the plain-HTTP client's, so that it never
     * loads the JDK's TLS machinery and can never be (mis)used for an {@code https://} URL.
     */
    static final class NoTls extends SSLContext {
        NoTls() {
            super(new Spi(), null, "none");
        }

        private static final class Spi extends SSLContextSpi {
            private static IllegalStateException refused() {
                return new IllegalStateException("the plain-HTTP registry client makes no TLS connections");
            }

            @Override
            protected void engineInit(KeyManager[] km, TrustManager[] tm, SecureRandom random) {
                throw refused();
            }

            @Override
            protected SSLSocketFactory engineGetSocketFactory() {
                throw refused();
            }

            @Override
            protected SSLServerSocketFactory engineGetServerSocketFactory() {
                throw refused();
            }

            @Override
            protected SSLEngine engineCreateSSLEngine() {
                throw refused();
            }

            @Override
            protected SSLEngine engineCreateSSLEngine(String host, int port) {
                throw refused();
            }

            @Override
            protected SSLSessionContext engineGetServerSessionContext() {
                throw refused();
            }

            @Override
            protected SSLSessionContext engineGetClientSessionContext() {
                throw refused();
            }

            @Override
            protected SSLParameters engineGetDefaultSSLParameters() {
                return new SSLParameters();
            }

            @Override
            protected SSLParameters engineGetSupportedSSLParameters() {
                return new SSLParameters();
            }
        }
    }
}
