package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.RawImageDevice;
import io.strata.core.testing.HostTools;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD over TLS with the clients people use: nbdinfo and nbdcopy (libnbd, GnuTLS, {@code nbds://}
 * URIs with a {@code tls-certificates} directory) and qemu-img ({@code tls-creds-x509}), against
 * certificates certtool made. Two servers: one requiring TLS, one also requiring a client
 * certificate signed by the CA ({@code --tls-verify-peer}). Exports: the Nydus fixture (cached
 * chunks: the memory path) and "big", a 12 MiB raw file (file regions: the path that, in plaintext,
 * is sendfile).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsClientsTest {
    Path tmp;
    TlsCertificates certs;
    Path big;
    ServerFixture required;
    ServerFixture verifying;
    Path trusting;
    Path trustingWithCert;
    Path trustingOtherCa;

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        tmp = dir;
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        certs = new TlsCertificates(dir.resolve("pki"));
        trusting = certs.clientDir("client-ca-only", false, false);
        trustingWithCert = certs.clientDir("client-with-cert", true, false);
        trustingOtherCa = certs.clientDir("client-other-ca", true, true);
        big = dir.resolve("big.raw");
        byte[] data = new byte[12 << 20];
        new Random(5).nextBytes(data);
        Files.write(big, data);
        required = new ServerFixture(Files.createDirectories(dir.resolve("required")),
                List.of(new Export("big", RawImageDevice.open(big), "12 MiB of random bytes")),
                TlsConfig.load(TlsMode.REQUIRE, certs.serverCert, certs.serverKey, null));
        verifying = new ServerFixture(Files.createDirectories(dir.resolve("verifying")), List.of(),
                TlsConfig.load(TlsMode.REQUIRE, certs.serverCert, certs.serverKey, certs.caCert));
    }

    @AfterAll
    void stop() throws Exception {
        for (ServerFixture s : new ServerFixture[] {required, verifying}) {
            if (s != null) {
                s.close();
            }
        }
    }

    static String unixTls(ServerFixture s, String export, Path clientDir) {
        return "nbds+unix:///" + export + "?socket=" + s.socket + "&tls-certificates=" + clientDir;
    }

    static String tcpTls(ServerFixture s, String export, Path clientDir) {
        return "nbds://127.0.0.1:" + s.tcp.getPort() + "/" + export + "?tls-certificates=" + clientDir;
    }

    @Test
    void nbdcopyOverTlsIsByteIdenticalToThePlainExport() throws Exception {
        Path fixtureCopy = tmp.resolve("fixture-tls.raw");
        HostTools.run(List.of("nbdcopy", "--connections=4", unixTls(required, "", trusting), fixtureCopy.toString()));
        assertEquals(-1, Files.mismatch(required.fixtureExport, fixtureCopy));
        // 1 MiB requests: past the gathering limit, so file regions go through the copy-and-encrypt path.
        Path bigCopy = tmp.resolve("big-tls.raw");
        HostTools.run(List.of("nbdcopy", "--connections=2", "--request-size=1048576", tcpTls(required, "big", trusting), bigCopy.toString()));
        assertEquals(-1, Files.mismatch(big, bigCopy));
        String info = HostTools.run(List.of("nbdinfo", tcpTls(required, "big", trusting)));
        assertTrue(info.contains("export-size: " + (12 << 20)) && info.contains("is_read_only: true"), info);
    }

    @Test
    void qemuImgReadsOverTls() throws Exception {
        HostTools.requireTool("qemu-img", "qemu-utils");
        String object = "tls-creds-x509,id=tls0,endpoint=client,dir=" + trusting;
        String source = "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + required.tcp.getPort()
                + ",export=big,tls-creds=tls0";
        Path out = tmp.resolve("big-qemu.raw");
        HostTools.run(List.of("qemu-img", "convert", "--object", object, "--image-opts", source, "-O", "raw", out.toString()));
        assertEquals(-1, Files.mismatch(big, out));
        String info = HostTools.run(List.of("qemu-img", "info", "--output=json", "--object", object, "--image-opts",
                source.replace("export=big", "export=")));
        assertTrue(info.contains("\"virtual-size\": " + Files.size(required.fixtureExport)), info);
    }

    @Test
    void requireRefusesPlaintextClients() throws Exception {
        HostTools.Outcome plain = HostTools.execute(List.of("nbdinfo", required.unixUri("")));
        assertNotEquals(0, plain.exitCode(), plain.output());
        assertTrue(plain.output().contains("TLS"), plain.output());
        try (TestClient c = new TestClient(required.unixAddress())) {
            c.greet();
            for (int option : new int[] {NbdProtocol.OPT_LIST, NbdProtocol.OPT_STRUCTURED_REPLY, NbdProtocol.OPT_INFO, NbdProtocol.OPT_GO}) {
                c.sendOption(option, option == NbdProtocol.OPT_GO || option == NbdProtocol.OPT_INFO
                        ? ByteBuffer.allocate(6).putInt(0).putShort((short) 0).flip() : ByteBuffer.allocate(0));
                assertEquals(NbdProtocol.REP_ERR_TLS_REQD, (int) (Integer) c.readOptionReply()[0], NbdProtocol.optionName(option));
            }
            // EXPORT_NAME cannot be answered with an error (spec, FORCEDTLS): the server closes the connection.
            c.sendOption(NbdProtocol.OPT_EXPORT_NAME, ByteBuffer.allocate(0));
            c.assertClosedByServer();
        }
        assertServes(required, trusting);
    }

    @Test
    void aClientTrustingAnotherCaIsRefusedAndTheServerKeepsServing() throws Exception {
        // Over TCP: libnbd checks the server's certificate against the host name it connected to,
        // and over a unix socket (no host name) it skips the check altogether.
        HostTools.Outcome wrong = HostTools.execute(List.of("nbdinfo", tcpTls(required, "", trustingOtherCa)));
        assertNotEquals(0, wrong.exitCode(), wrong.output());
        assertTrue(wrong.output().contains("certificate verification"), wrong.output());
        assertServes(required, trusting);
    }

    @Test
    void verifyPeerRefusesAClientWithoutACertificateAndAcceptsOneSignedByTheCa() throws Exception {
        HostTools.Outcome anonymous = HostTools.execute(List.of("nbdinfo", unixTls(verifying, "", trusting)));
        assertNotEquals(0, anonymous.exitCode(), anonymous.output());
        Path selfMade = certs.clientDir("client-self-made", false, false);
        // A certificate the server's CA did not sign (the other CA's own) is refused as well.
        Files.copy(certs.otherCaCert, selfMade.resolve("client-cert.pem"));
        Files.copy(certs.dir.resolve("other-ca-key.pem"), selfMade.resolve("client-key.pem"));
        HostTools.Outcome unsigned = HostTools.execute(List.of("nbdinfo", unixTls(verifying, "", selfMade)));
        assertNotEquals(0, unsigned.exitCode(), unsigned.output());
        assertServes(verifying, trustingWithCert);
        Path copy = tmp.resolve("fixture-verified.raw");
        HostTools.run(List.of("nbdcopy", tcpTls(verifying, "", trustingWithCert), copy.toString()));
        assertEquals(-1, Files.mismatch(verifying.fixtureExport, copy));
    }

    /**
     * libnbd (gnutls) with an RSA client key under --tls-verify-peer: served on JDK 17; on JDK 24+
     * gnutls 3.7 sends no certificate (see TlsChannel.hint), and then the server's log must say why.
     */
    @Test
    void anRsaClientKeyIsServedOrItsRefusalIsExplained() throws Exception {
        Path rsa = certs.rsaClientDir("client-rsa");
        java.io.PrintStream original = System.err;
        java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
        HostTools.Outcome o;
        System.setErr(new java.io.PrintStream(log, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            o = HostTools.execute(List.of("nbdinfo", unixTls(verifying, "", rsa)));
        } finally {
            System.setErr(original);
        }
        String said = log.toString(java.nio.charset.StandardCharsets.UTF_8);
        System.out.println("nbdinfo with an RSA client key on JDK " + Runtime.version().feature() + ": exit " + o.exitCode()
                + said.lines().filter(l -> l.contains("handshake failed")).map(l -> "; server: " + l).findFirst().orElse(""));
        if (Runtime.version().feature() < 24) {
            assertEquals(0, o.exitCode(), o.output() + said);
        } else if (o.exitCode() != 0) {
            assertTrue(said.contains("the client sent no certificate: has it one? gnutls 3.7 clients"), "the log says why: " + said);
        }
    }

    private static void assertServes(ServerFixture s, Path clientDir) throws Exception {
        String info = HostTools.run(List.of("nbdinfo", unixTls(s, "", clientDir)));
        assertTrue(info.contains("export-size: " + Files.size(s.fixtureExport)), info);
    }
}
