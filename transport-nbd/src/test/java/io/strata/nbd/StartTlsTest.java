package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.RawImageDevice;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The STARTTLS option sequence on the wire, driven by a raw client whose TLS side is the JDK's own
 * client engine (trusting the certtool CA): refusals before TLS, the upgrade, a second STARTTLS,
 * state negotiated in plaintext being forgotten, reads through TLS (simple replies, small and
 * large), close_notify at the end, and a client that sends plaintext where the TLS handshake belongs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StartTlsTest {
    static final int TIMEOUT_MS = 10_000;
    TlsCertificates certs;
    ServerFixture required;
    ServerFixture optional;
    SSLContext client;
    byte[] fixture;
    byte[] big;

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        certs = new TlsCertificates(dir.resolve("pki"));
        Path bigFile = dir.resolve("big.raw");
        big = new byte[4 << 20];
        new Random(3).nextBytes(big);
        Files.write(bigFile, big);
        required = new ServerFixture(Files.createDirectories(dir.resolve("required")),
                List.of(new Export("big", RawImageDevice.open(bigFile), "random")),
                TlsConfig.load(TlsMode.REQUIRE, certs.serverCert, certs.serverKey, null));
        optional = new ServerFixture(Files.createDirectories(dir.resolve("optional")), List.of(),
                TlsConfig.load(TlsMode.ON, certs.serverCert, certs.serverKey, null));
        fixture = Files.readAllBytes(required.fixtureExport);
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(certs.caCert)) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        client = SSLContext.getInstance("TLS");
        client.init(null, tmf.getTrustManagers(), null);
    }

    @AfterAll
    void stop() throws Exception {
        for (ServerFixture s : new ServerFixture[] {required, optional}) {
            if (s != null) {
                s.close();
            }
        }
    }

    @Test
    void requireRefusesOptionsUntilStartTlsThenServesReadsThroughTls() throws Exception {
        try (Socket plain = connect(required)) {
            Wire w = new Wire(plain);
            w.greet();
            w.option(NbdProtocol.OPT_LIST, new byte[0]);
            assertEquals(NbdProtocol.REP_ERR_TLS_REQD, w.reply()[0]);
            w.option(NbdProtocol.OPT_STARTTLS, new byte[3]);
            assertEquals(NbdProtocol.REP_ERR_INVALID, w.reply()[0], "STARTTLS carries no data");
            w.option(NbdProtocol.OPT_STARTTLS, new byte[0]);
            assertEquals(NbdProtocol.REP_ACK, w.reply()[0]);
            try (SSLSocket tls = upgrade(plain)) {
                Wire t = new Wire(tls);
                t.option(NbdProtocol.OPT_STARTTLS, new byte[0]);
                assertEquals(NbdProtocol.REP_ERR_INVALID, t.reply()[0], "a second STARTTLS");
                t.option(NbdProtocol.OPT_LIST, new byte[0]);
                assertEquals(NbdProtocol.REP_SERVER, t.reply()[0], "options work once TLS runs");
                t.drainUntilAck();
                t.go("big");
                assertArrayEquals(Arrays.copyOfRange(big, 4096, 8192), t.read(1, 4096, 4096));
                // 1 MiB: larger than a gathered reply, so the file region is copied and encrypted in pieces.
                assertArrayEquals(Arrays.copyOfRange(big, 1 << 20, 2 << 20), t.read(2, 1 << 20, 1 << 20));
                t.disconnect();
                assertEquals(-1, tls.getInputStream().read(), "close_notify, then the end");
            }
        }
    }

    /**
     * A TLS 1.2 client that starts a renegotiation loses its connection (JSSE completed any number of
     * them, a full handshake's CPU each); the server goes on serving others.
     */
    @Test
    void aRenegotiationTheClientStartsEndsThatConnection() throws Exception {
        try (Socket plain = connect(required)) {
            askForTls(plain);
            try (SSLSocket tls = (SSLSocket) client.getSocketFactory().createSocket(plain, "localhost", plain.getPort(), false)) {
                tls.setSoTimeout(TIMEOUT_MS);
                tls.setEnabledProtocols(new String[] {"TLSv1.2"});
                tls.startHandshake();
                assertEquals("TLSv1.2", tls.getSession().getProtocol());
                Wire t = new Wire(tls);
                t.go("big");
                assertArrayEquals(Arrays.copyOfRange(big, 0, 4096), t.read(1, 0, 4096));
                tls.getSession().invalidate();
                tls.startHandshake(); // on an established connection: a renegotiation, not waited for
                assertThrows(IOException.class, () -> t.read(2, 4096, 4096), "the connection ends");
            }
        }
        try (Socket plain = connect(required); SSLSocket tls = startTls(plain)) {
            Wire t = new Wire(tls);
            t.go("big");
            assertArrayEquals(Arrays.copyOfRange(big, 8192, 12288), t.read(3, 8192, 4096), "others are still served");
            t.disconnect();
        }
    }

    @Test
    void plaintextNegotiationIsForgottenAtStartTls() throws Exception {
        try (Socket plain = connect(optional)) {
            Wire w = new Wire(plain);
            w.greet();
            w.option(NbdProtocol.OPT_STRUCTURED_REPLY, new byte[0]);
            assertEquals(NbdProtocol.REP_ACK, w.reply()[0], "ON mode takes options in plaintext");
            w.option(NbdProtocol.OPT_STARTTLS, new byte[0]);
            assertEquals(NbdProtocol.REP_ACK, w.reply()[0]);
            try (SSLSocket tls = upgrade(plain)) {
                Wire t = new Wire(tls);
                t.go("");
                // A simple reply: the STRUCTURED_REPLY sent before TLS (injectable by a man in the middle) no longer counts.
                assertArrayEquals(Arrays.copyOfRange(fixture, 0, 8192), t.read(7, 0, 8192));
                t.disconnect();
            }
        }
        try (Socket plain = connect(optional)) {
            Wire w = new Wire(plain);
            w.greet();
            w.go("");
            assertArrayEquals(Arrays.copyOfRange(fixture, 512, 1024), w.read(3, 512, 512), "ON mode also serves plaintext");
            w.disconnect();
        }
    }

    @Test
    void plaintextWhereTheTlsHandshakeBelongsEndsOnlyThatConnection() throws Exception {
        try (Socket plain = connect(required)) {
            Wire w = new Wire(plain);
            w.greet();
            w.option(NbdProtocol.OPT_STARTTLS, new byte[0]);
            assertEquals(NbdProtocol.REP_ACK, w.reply()[0]);
            try {
                w.option(NbdProtocol.OPT_GO, new byte[6]); // not a ClientHello
            } catch (java.net.SocketException closed) {
                // The server may judge the first bytes, alert and close before the rest is written
                // ("Broken pipe"): the option goes out in several writes.
            }
            readUntilClosed(plain.getInputStream()); // the server sends an alert and closes
        }
        try (Socket plain = connect(required); SSLSocket tls = startTls(plain)) {
            Wire t = new Wire(tls);
            t.go("");
            assertArrayEquals(Arrays.copyOfRange(fixture, 0, 4096), t.read(1, 0, 4096));
            t.disconnect();
        }
    }

    @Test
    void aClientTrustingAnotherCaFailsTheHandshakeAndTheServerGoesOn() throws Exception {
        SSLContext trustsOtherCa = SSLContext.getInstance("TLS");
        KeyStore other = KeyStore.getInstance("PKCS12");
        other.load(null, null);
        try (InputStream in = Files.newInputStream(certs.otherCaCert)) {
            other.setCertificateEntry("other", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(other);
        trustsOtherCa.init(null, tmf.getTrustManagers(), null);
        try (Socket plain = connect(required)) {
            Wire w = new Wire(plain);
            w.greet();
            w.option(NbdProtocol.OPT_STARTTLS, new byte[0]);
            assertEquals(NbdProtocol.REP_ACK, w.reply()[0]);
            SSLSocket tls = (SSLSocket) trustsOtherCa.getSocketFactory().createSocket(plain, "localhost", plain.getPort(), false);
            assertThrows(SSLException.class, tls::startHandshake);
        }
        try (Socket plain = connect(required); SSLSocket tls = startTls(plain)) {
            new Wire(tls).go("");
        }
    }

    @Test
    void aClientStallingInTheTlsHandshakeIsDroppedAtTheHandshakeTimeout(@TempDir Path dir) throws Exception {
        try (ServerFixture quick = new ServerFixture(dir, List.of(),
                NbdServer.Options.defaults().withHandshakeTimeout(java.time.Duration.ofSeconds(1)),
                TlsConfig.load(TlsMode.REQUIRE, certs.serverCert, certs.serverKey, null));
                Socket plain = connect(quick)) {
            Wire w = new Wire(plain);
            w.greet();
            w.option(NbdProtocol.OPT_STARTTLS, new byte[0]);
            assertEquals(NbdProtocol.REP_ACK, w.reply()[0]);
            plain.getOutputStream().write(new byte[] {0x16, 0x03, 0x01}); // the start of a ClientHello, and no more
            long start = System.nanoTime();
            readUntilClosed(plain.getInputStream());
            long waited = System.nanoTime() - start;
            assertTrue(waited < 8_000_000_000L, "closed by the 1 s handshake timeout, not the client's read timeout: " + waited / 1_000_000 + " ms");
        }
    }

    private static Socket connect(ServerFixture s) throws IOException {
        Socket socket = new Socket("127.0.0.1", s.tcp.getPort());
        socket.setSoTimeout(TIMEOUT_MS);
        return socket;
    }

    private SSLSocket startTls(Socket plain) throws IOException {
        askForTls(plain);
        return upgrade(plain);
    }

    /** The greeting and an acknowledged NBD_OPT_STARTTLS: the TLS handshake comes next. */
    private static void askForTls(Socket plain) throws IOException {
        Wire w = new Wire(plain);
        w.greet();
        w.option(NbdProtocol.OPT_STARTTLS, new byte[0]);
        assertEquals(NbdProtocol.REP_ACK, w.reply()[0]);
    }

    private SSLSocket upgrade(Socket plain) throws IOException {
        SSLSocket tls = (SSLSocket) client.getSocketFactory().createSocket(plain, "localhost", plain.getPort(), true);
        tls.setSoTimeout(TIMEOUT_MS);
        tls.startHandshake();
        return tls;
    }

    /**
     * Reads to the end: EOF, or a reset when the server closed with our unread bytes still queued.
     * A server that keeps the connection open fails the test with a SocketTimeoutException.
     */
    private static void readUntilClosed(InputStream in) throws IOException {
        byte[] b = new byte[4096];
        try {
            while (in.read(b) >= 0) {
                // the alert record, then the end
            }
        } catch (java.net.SocketException reset) {
            // "Connection reset" is an end too; a timeout is not a SocketException
        }
    }

    /** The few NBD messages this test sends and reads, over any socket's streams. */
    static final class Wire {
        final DataInputStream in;
        final DataOutputStream out;

        Wire(Socket s) throws IOException {
            in = new DataInputStream(s.getInputStream());
            out = new DataOutputStream(s.getOutputStream());
        }

        void greet() throws IOException {
            assertEquals(NbdProtocol.NBDMAGIC, in.readLong());
            assertEquals(NbdProtocol.IHAVEOPT, in.readLong());
            in.readShort();
            out.writeInt(NbdProtocol.CLIENT_FLAG_FIXED_NEWSTYLE | NbdProtocol.CLIENT_FLAG_NO_ZEROES);
            out.flush();
        }

        void option(int option, byte[] data) throws IOException {
            out.writeLong(NbdProtocol.IHAVEOPT);
            out.writeInt(option);
            out.writeInt(data.length);
            out.write(data);
            out.flush();
        }

        /** One option reply: {type, data length}; the data is read and dropped. */
        int[] reply() throws IOException {
            assertEquals(NbdProtocol.OPTION_REPLY_MAGIC, in.readLong());
            in.readInt();
            int type = in.readInt();
            int len = in.readInt();
            in.readNBytes(len);
            return new int[] {type, len};
        }

        void drainUntilAck() throws IOException {
            while (reply()[0] != NbdProtocol.REP_ACK) {
                // the other exports
            }
        }

        void go(String export) throws IOException {
            byte[] name = export.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(6 + name.length).putInt(name.length).put(name).putShort((short) 0);
            option(NbdProtocol.OPT_GO, b.array());
            for (;;) {
                int type = reply()[0];
                if (type == NbdProtocol.REP_ACK) {
                    return;
                }
                assertEquals(NbdProtocol.REP_INFO, type, "GO failed");
            }
        }

        /** A read with a simple reply; returns the data. */
        byte[] read(long cookie, long offset, int length) throws IOException {
            out.writeInt(NbdProtocol.REQUEST_MAGIC);
            out.writeShort(0);
            out.writeShort(NbdProtocol.CMD_READ);
            out.writeLong(cookie);
            out.writeLong(offset);
            out.writeInt(length);
            out.flush();
            assertEquals(NbdProtocol.SIMPLE_REPLY_MAGIC, in.readInt());
            assertEquals(0, in.readInt(), "error");
            assertEquals(cookie, in.readLong());
            return in.readNBytes(length);
        }

        void disconnect() throws IOException {
            out.writeInt(NbdProtocol.REQUEST_MAGIC);
            out.writeShort(0);
            out.writeShort(NbdProtocol.CMD_DISC);
            out.write(new byte[20]);
            out.flush();
        }
    }
}
