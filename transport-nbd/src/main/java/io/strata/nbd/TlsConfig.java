package io.strata.nbd;

import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * The server's TLS policy and credentials: the mode ({@link TlsMode}), an X.509 certificate chain and
 * its key, and optionally a CA that every client must present a certificate signed by. Built once at
 * start; each STARTTLS gets a fresh {@link SSLEngine} from it.
 */
public final class TlsConfig {
    /** TLS 1.2 and later only: the NBD spec requires 1.2 and says older versions must not be on by default. */
    private static final List<String> PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");
    private static final TlsConfig OFF = new TlsConfig(TlsMode.OFF, null, false);

    private final TlsMode mode;
    private final SSLContext context;
    private final boolean verifyPeer;
    private final String[] protocols;

    private TlsConfig(TlsMode mode, SSLContext context, boolean verifyPeer) {
        this.mode = mode;
        this.context = context;
        this.verifyPeer = verifyPeer;
        this.protocols = context == null ? new String[0]
                : Arrays.stream(context.getSupportedSSLParameters().getProtocols()).filter(PROTOCOLS::contains).toArray(String[]::new);
    }

    /** No TLS: STARTTLS is answered NBD_REP_ERR_UNSUP. */
    public static TlsConfig off() {
        return OFF;
    }

    /**
     * Loads PEM credentials for {@code mode} ON or REQUIRE: {@code certChain} (leaf first), its
     * private {@code key}, and {@code clientCa} (or null): when given, a client must present a
     * certificate that chains to one of its certificates, or its handshake fails.
     */
    public static TlsConfig load(TlsMode mode, Path certChain, Path key, Path clientCa) throws TlsSetupException {
        if (mode == TlsMode.OFF) {
            throw new IllegalArgumentException("TLS mode OFF takes no credentials");
        }
        List<X509Certificate> chain = PemFiles.certificates(certChain, "certificate file");
        PrivateKey privateKey = PemFiles.privateKey(key, "key file");
        PemFiles.checkPair(privateKey, chain.get(0), key, certChain);
        PemFiles.checkValidNow(chain.get(0), certChain);
        try {
            char[] password = new char[0]; // the in-memory key store never leaves this method
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry("server", privateKey, password, chain.toArray(new Certificate[0]));
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, password);
            TrustManager[] trust = null;
            if (clientCa != null) {
                KeyStore cas = KeyStore.getInstance("PKCS12");
                cas.load(null, null);
                int i = 0;
                for (X509Certificate ca : PemFiles.certificates(clientCa, "CA file")) {
                    cas.setCertificateEntry("ca" + i++, ca);
                }
                TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                tmf.init(cas);
                trust = tmf.getTrustManagers();
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), trust, null);
            TlsConfig config = new TlsConfig(mode, context, clientCa != null);
            config.newEngine(); // fails here, at start, rather than at the first client
            return config;
        } catch (GeneralSecurityException | java.io.IOException | IllegalArgumentException e) {
            throw new TlsSetupException("TLS setup with " + certChain + " and " + key + " failed: " + e.getMessage(), e);
        }
    }

    public TlsMode mode() {
        return mode;
    }

    /** True when clients may (ON) or must (REQUIRE) upgrade with STARTTLS. */
    public boolean enabled() {
        return mode != TlsMode.OFF;
    }

    boolean required() {
        return mode == TlsMode.REQUIRE;
    }

    /** A server-side engine for one connection. */
    SSLEngine newEngine() {
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        engine.setNeedClientAuth(verifyPeer);
        engine.setEnabledProtocols(protocols);
        return engine;
    }
}
