package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code strata serve nbd --tls ...} through bin/strata: every bad combination of TLS options or
 * bad credential file is one line and exit 2; with {@code --tls require} on a non-loopback address
 * the server serves TLS clients, refuses plaintext ones, and does not warn about missing TLS.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ServeNbdTlsIT {
    @TempDir
    Path tmp;
    Path cert;
    Path key;
    Path otherKey;

    @BeforeEach
    void credentials() throws Exception {
        HostTools.requireTool("openssl", "openssl");
        cert = tmp.resolve("cert.pem");
        key = tmp.resolve("key.pem");
        otherKey = tmp.resolve("other-key.pem");
        HostTools.run(List.of("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key.toString(), "-out", cert.toString(), "-subj", "/CN=localhost", "-days", "1",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"));
        HostTools.run(List.of("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", otherKey.toString()));
    }

    private List<String> serve(String... tlsArgs) {
        List<String> args = new ArrayList<>(List.of("serve", "nbd", Fixtures.nydusBootstrap().toString(), "--socket",
                tmp.resolve("s.sock").toString()));
        args.addAll(List.of(tlsArgs));
        return args;
    }

    @Test
    void badTlsArgumentsPrintOneLineAndExit2() throws Exception {
        Path notPem = Files.writeString(tmp.resolve("notes.txt"), "not a key\n");
        String c = cert.toString();
        String k = key.toString();
        List<List<String>> cases = List.of(
                serve("--tls", "require"),
                serve("--tls", "on", "--tls-cert", c),
                serve("--tls", "maybe", "--tls-cert", c, "--tls-key", k),
                serve("--tls-cert", c, "--tls-key", k),
                serve("--tls", "require", "--tls-cert", tmp.resolve("missing.pem").toString(), "--tls-key", k),
                serve("--tls", "require", "--tls-cert", c, "--tls-key", tmp.toString()),
                serve("--tls", "require", "--tls-cert", c, "--tls-key", notPem.toString()),
                serve("--tls", "require", "--tls-cert", c, "--tls-key", otherKey.toString()),
                serve("--tls", "require", "--tls-cert", c, "--tls-key", k, "--tls-verify-peer"),
                serve("--tls", "require", "--tls-cert", c, "--tls-key", k, "--tls-ca", c));
        List<String> expected = List.of("needs --tls-cert", "needs --tls-cert", "--tls wants off, on or require",
                "need --tls on or --tls require", "no such file", "not a regular file", "no PEM private key", "does not belong",
                "--tls-verify-peer needs --tls-ca", "add --tls-verify-peer");
        for (int i = 0; i < cases.size(); i++) {
            StrataProcess.Run r = StrataProcess.run(tmp, cases.get(i).toArray(new String[0]));
            String what = String.join(" ", cases.get(i)) + ": " + r.err();
            assertEquals(2, r.code(), what);
            assertEquals(1, r.err().strip().lines().count(), "one line: " + what);
            assertTrue(r.err().contains(expected.get(i)), what);
            assertFalse(r.err().contains("\tat "), "no stack trace: " + what);
        }
    }

    @Test
    void requireServesTlsClientsOnlyAndDoesNotWarnAboutAnExposedAddress() throws Exception {
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        Path sock = tmp.resolve("s.sock");
        Path clientDir = Files.createDirectories(tmp.resolve("client"));
        Files.copy(cert, clientDir.resolve("ca-cert.pem")); // the self-signed certificate is its own CA
        List<String> args = serve("--tcp", "0.0.0.0:0", "--tls", "require", "--tls-cert", cert.toString(), "--tls-key", key.toString());
        try (StrataProcess.Server s = StrataProcess.start(tmp, "tls", args.toArray(new String[0]))) {
            String log = s.awaitLog("nbd: TCP port ");
            assertFalse(log.contains("without TLS") || log.contains("TLS optional"), log);
            String size = String.valueOf(0x209 * 4096); // the fixture's flat device: 0x209 blocks
            assertEquals(size, HostTools.run(List.of("nbdinfo", "--size", "nbds+unix:///?socket=" + sock + "&tls-certificates=" + clientDir)).strip());
            HostTools.Outcome plain = HostTools.execute(List.of("nbdinfo", "--size", "nbd+unix:///?socket=" + sock));
            assertNotEquals(0, plain.exitCode(), plain.output());
        }
    }

    /**
     * The daemon's NBD listener takes the same TLS options: an export added through the control API
     * is served to TLS clients only. TLS without an NBD listener is a bad argument.
     */
    @Test
    void theDaemonsNbdListenerServesTlsClientsOnly() throws Exception {
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        Path sock = tmp.resolve("d.sock");
        Path control = tmp.resolve("control.sock");
        Path clientDir = Files.createDirectories(tmp.resolve("client"));
        Files.copy(cert, clientDir.resolve("ca-cert.pem"));
        try (StrataProcess.Server d = StrataProcess.start(tmp, "daemon", "serve", "--control", control.toString(),
                "--socket", sock.toString(), "--tls", "require", "--tls-cert", cert.toString(), "--tls-key", key.toString())) {
            d.awaitLog("control: listening on");
            StrataProcess.Run add = StrataProcess.run(tmp, "ctl", "--control", control.toString(), "add", "nbd", "web",
                    Fixtures.nydusBootstrap().toString(), "-D", Fixtures.nydusDir().toString());
            assertEquals(0, add.code(), add.err() + d.log());
            String size = String.valueOf(0x209 * 4096);
            assertEquals(size, HostTools.run(List.of("nbdinfo", "--size", "nbds+unix:///web?socket=" + sock + "&tls-certificates=" + clientDir)).strip());
            HostTools.Outcome plain = HostTools.execute(List.of("nbdinfo", "--size", "nbd+unix:///web?socket=" + sock));
            assertNotEquals(0, plain.exitCode(), plain.output());
        }
        StrataProcess.Run noListener = StrataProcess.run(tmp, "serve", "--control", tmp.resolve("c2.sock").toString(),
                "--tls", "require", "--tls-cert", cert.toString(), "--tls-key", key.toString());
        assertEquals(2, noListener.code(), noListener.err());
        assertTrue(noListener.err().contains("--tls is for the NBD listener"), noListener.err());
    }

    @Test
    void tlsOnWarnsThatAnExposedAddressStillServesPlaintext() throws Exception {
        List<String> args = serve("--tcp", "0.0.0.0:0", "--tls", "on", "--tls-cert", cert.toString(), "--tls-key", key.toString());
        try (StrataProcess.Server s = StrataProcess.start(tmp, "tls-on", args.toArray(new String[0]))) {
            String log = s.awaitLog("nbd: TCP port ");
            assertEquals(1, log.lines().filter(l -> l.contains("TLS optional")).count(), log);
            assertFalse(log.contains("without TLS"), log);
        }
    }
}
