package io.strata.nbd;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * X.509 credentials made by certtool (gnutls-bin), as a user would make them: a CA, a server
 * certificate for localhost and 127.0.0.1 (RSA, so certtool writes a PKCS#1 key), a client
 * certificate (EC, a SEC1 key), and a second CA that signed none of them. Client directories follow
 * the layout libnbd's {@code tls-certificates} and QEMU's {@code tls-creds-x509 dir=} both read:
 * ca-cert.pem, and optionally client-cert.pem and client-key.pem.
 */
final class TlsCertificates {
    final Path dir;
    final Path caCert;
    final Path serverCert;
    final Path serverKey;
    final Path clientCert;
    final Path clientKey;
    final Path otherCaCert;

    TlsCertificates(Path dir) throws IOException {
        HostTools.requireTool("certtool", "gnutls-bin");
        this.dir = Files.createDirectories(dir);
        Path caKey = dir.resolve("ca-key.pem");
        caCert = dir.resolve("ca-cert.pem");
        selfSigned("Strata test CA", caKey, caCert);
        serverKey = dir.resolve("server-key.pem");
        serverCert = dir.resolve("server-cert.pem");
        certtool("--generate-privkey", "--key-type=rsa", "--bits=2048", "--outfile", serverKey.toString());
        signed(serverKey, serverCert, caKey, caCert, "cn = \"localhost\"\ndns_name = \"localhost\"\nip_address = \"127.0.0.1\"\n"
                + "tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n");
        clientKey = dir.resolve("client-key.pem");
        clientCert = dir.resolve("client-cert.pem");
        certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", clientKey.toString());
        signed(clientKey, clientCert, caKey, caCert, "cn = \"strata-test-client\"\ntls_www_client\nsigning_key\nexpiration_days = 2\n");
        otherCaCert = dir.resolve("other-ca-cert.pem");
        selfSigned("Some other CA", dir.resolve("other-ca-key.pem"), otherCaCert);
    }

    /**
     * A server certificate for {@link #serverKey} valid only from {@code activation} to {@code expiration}
     * (certtool's "YYYY-MM-DD hh:mm:ss"), signed by the CA.
     */
    Path serverCertValid(String name, String activation, String expiration) throws IOException {
        Path cert = dir.resolve(name);
        signed(serverKey, cert, dir.resolve("ca-key.pem"), caCert, "cn = \"localhost\"\ndns_name = \"localhost\"\ntls_www_server\n"
                + "activation_date = \"" + activation + "\"\nexpiration_date = \"" + expiration + "\"\n");
        return cert;
    }

    /** A client credentials directory trusting our CA, with a client certificate for a new RSA key. */
    Path rsaClientDir(String name) throws IOException {
        Path d = Files.createDirectories(dir.resolve(name));
        Files.copy(caCert, d.resolve("ca-cert.pem"));
        certtool("--generate-privkey", "--key-type=rsa", "--bits=2048", "--outfile", d.resolve("client-key.pem").toString());
        signed(d.resolve("client-key.pem"), d.resolve("client-cert.pem"), dir.resolve("ca-key.pem"), caCert,
                "cn = \"strata-test-rsa-client\"\ntls_www_client\nsigning_key\nexpiration_days = 2\n");
        return d;
    }

    /** A client credentials directory trusting our CA (or {@code wrongCa}), with or without a client certificate. */
    Path clientDir(String name, boolean withClientCert, boolean wrongCa) throws IOException {
        Path d = Files.createDirectories(dir.resolve(name));
        Files.copy(wrongCa ? otherCaCert : caCert, d.resolve("ca-cert.pem"));
        if (withClientCert) {
            Files.copy(clientCert, d.resolve("client-cert.pem"));
            Files.copy(clientKey, d.resolve("client-key.pem"));
        }
        return d;
    }

    private void selfSigned(String cn, Path key, Path cert) throws IOException {
        certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key.toString());
        Path t = template("cn = \"" + cn + "\"\nca\ncert_signing_key\nexpiration_days = 2\n");
        certtool("--generate-self-signed", "--load-privkey", key.toString(), "--template", t.toString(), "--outfile", cert.toString());
    }

    private void signed(Path key, Path cert, Path caKey, Path caCert, String template) throws IOException {
        Path t = template(template);
        certtool("--generate-certificate", "--load-privkey", key.toString(), "--load-ca-certificate", caCert.toString(),
                "--load-ca-privkey", caKey.toString(), "--template", t.toString(), "--outfile", cert.toString());
    }

    private Path template(String text) throws IOException {
        Path t = Files.createTempFile(dir, "template", ".cfg");
        Files.writeString(t, text);
        return t;
    }

    private static void certtool(String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add("certtool");
        command.addAll(List.of(args));
        HostTools.run(command);
    }
}
