package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Server credentials in the forms openssl and certtool write them load, and each kind of bad file
 * is refused with one line naming it. The keys and certificates come from the tools themselves.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PemFilesTest {
    @TempDir
    Path tmp;

    @Test
    void keysInEveryFormTheToolsWriteLoadAndMatchTheirCertificates() throws Exception {
        HostTools.requireTool("openssl", "openssl");
        TlsCertificates certs = new TlsCertificates(tmp.resolve("pki"));
        // certtool: PKCS#1 RSA (the server's) and SEC1 EC (the client's).
        assertTrue(Files.readString(certs.serverKey).contains("BEGIN RSA PRIVATE KEY"));
        assertTrue(Files.readString(certs.clientKey).contains("BEGIN EC PRIVATE KEY"));
        TlsConfig.load(TlsMode.ON, certs.serverCert, certs.serverKey, null);
        TlsConfig.load(TlsMode.REQUIRE, certs.clientCert, certs.clientKey, certs.caCert);
        // openssl: PKCS#8 RSA, EC and Ed25519; and SEC1 with an EC PARAMETERS block before it.
        for (List<String> gen : List.of(
                List.of("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
                List.of("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"),
                List.of("openssl", "genpkey", "-algorithm", "ED25519"),
                List.of("openssl", "ecparam", "-name", "prime256v1", "-genkey"))) {
            Path key = tmp.resolve("key-" + Math.abs(gen.hashCode()) + ".pem");
            Files.writeString(key, HostTools.run(gen));
            Path cert = tmp.resolve("cert-" + Math.abs(gen.hashCode()) + ".pem");
            HostTools.run(List.of("openssl", "req", "-x509", "-key", key.toString(), "-subj", "/CN=localhost", "-days", "1",
                    "-out", cert.toString()));
            TlsConfig c = TlsConfig.load(TlsMode.ON, cert, key, null);
            assertEquals(TlsMode.ON, c.mode(), gen.toString());
        }
    }

    @Test
    void badCredentialsAreRefusedWithOneLineNamingTheFile() throws Exception {
        HostTools.requireTool("openssl", "openssl");
        TlsCertificates certs = new TlsCertificates(tmp.resolve("pki"));
        Path missing = tmp.resolve("missing.pem");
        assertRefused("no such file", missing.toString(), () -> TlsConfig.load(TlsMode.ON, missing, certs.serverKey, null));
        assertRefused("no such file", missing.toString(), () -> TlsConfig.load(TlsMode.ON, certs.serverCert, missing, null));
        assertRefused("not a regular file", tmp.toString(), () -> TlsConfig.load(TlsMode.ON, certs.serverCert, tmp, null));
        // A key that belongs to another certificate.
        assertRefused("does not belong", certs.clientKey.toString(),
                () -> TlsConfig.load(TlsMode.ON, certs.serverCert, certs.clientKey, null));
        // The files swapped: no key in the certificate file's place, no certificate in the key's.
        assertRefused("no PEM private key", certs.serverCert.toString(),
                () -> TlsConfig.load(TlsMode.ON, certs.serverCert, certs.serverCert, null));
        assertRefused("no PEM certificate", certs.serverKey.toString(),
                () -> TlsConfig.load(TlsMode.ON, certs.serverKey, certs.serverKey, null));
        // Encrypted keys, PKCS#8 and openssl's legacy PEM encryption.
        Path encrypted = tmp.resolve("encrypted.pem");
        Files.writeString(encrypted, HostTools.run(List.of("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-aes-256-cbc", "-pass", "pass:secret")));
        assertRefused("encrypted", encrypted.toString(), () -> TlsConfig.load(TlsMode.ON, certs.serverCert, encrypted, null));
        Path legacy = tmp.resolve("legacy.pem");
        HostTools.run(List.of("openssl", "rsa", "-in", certs.serverKey.toString(), "-traditional", "-aes128", "-passout", "pass:x",
                "-out", legacy.toString()));
        assertRefused("encrypted", legacy.toString(), () -> TlsConfig.load(TlsMode.ON, certs.serverCert, legacy, null));
        // Garbage inside a block, and a block cut off.
        Path garbage = tmp.resolve("garbage.pem");
        Files.writeString(garbage, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        assertRefused("not a valid", garbage.toString(), () -> TlsConfig.load(TlsMode.ON, certs.serverCert, garbage, null));
        Path cut = tmp.resolve("cut.pem");
        Files.writeString(cut, Files.readString(certs.serverCert).replace("-----END CERTIFICATE-----", ""));
        assertRefused("no END line", cut.toString(), () -> TlsConfig.load(TlsMode.ON, cut, certs.serverKey, null));
        // A certificate that has expired, or is not valid yet: every handshake would fail.
        Path expired = certs.serverCertValid("expired.pem", "2020-01-01 00:00:00", "2021-01-01 00:00:00");
        assertRefused("expired on 2021-01-01", expired.toString(), () -> TlsConfig.load(TlsMode.ON, expired, certs.serverKey, null));
        Path future = certs.serverCertValid("future.pem", "2099-01-01 00:00:00", "2100-01-01 00:00:00");
        assertRefused("is not valid before 2099-01-01", future.toString(), () -> TlsConfig.load(TlsMode.ON, future, certs.serverKey, null));
        Path badCa = tmp.resolve("bad-ca.pem");
        Files.writeString(badCa, "not a certificate\n");
        assertRefused("no PEM certificate", badCa.toString(), () -> TlsConfig.load(TlsMode.ON, certs.serverCert, certs.serverKey, badCa));
    }

    interface Load {
        void run() throws Exception;
    }

    private static void assertRefused(String why, String file, Load load) {
        TlsSetupException e = assertThrows(TlsSetupException.class, load::run);
        assertTrue(e.getMessage().contains(why) && e.getMessage().contains(file), e.getMessage());
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
    }

    /** A client that sent no certificate to --tls-verify-peer: the log says so, and on JDK 24+ why gnutls 3.7 does. */
    @Test
    void aClientWithoutACertificateIsNamedAsSuchWithTheGnutlsHintOnNewerJdks() {
        String jdk = "(certificate_required) Empty client certificate chain";
        assertEquals(" (the client sent no certificate)", TlsChannel.hint(jdk, 17));
        assertTrue(TlsChannel.hint(jdk, 25).contains("give those an ECDSA key"), TlsChannel.hint(jdk, 25));
        assertEquals("", TlsChannel.hint("(bad_certificate) PKIX path building failed", 25));
        assertEquals("", TlsChannel.hint(null, 25));
    }
}
