package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Safe by default, through bin/strata: TCP without a host is loopback only, another address
 * without TLS is warned about, unix sockets (NBD and vhost-user) are 0600 unless --socket-mode
 * says otherwise, and attach refuses anything but an nbd device.
 */
@Timeout(300)
class ServeSafetyIT {
    private static final Pattern TCP_PORT = Pattern.compile("nbd: TCP port (\\d+)");
    private static final String FIXTURE_SIZE = String.valueOf(0x209 * 4096);

    @TempDir
    Path tmp;
    /** A directory everyone may enter (tmp is 0700), so only the socket's own mode decides who connects. */
    Path shared;

    @BeforeEach
    void sharedDir() throws IOException {
        shared = Files.createTempDirectory(Paths.get("/tmp"), "strata-modes");
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterEach
    void removeSharedDir() throws IOException {
        try (var s = Files.walk(shared)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private StrataProcess.Server serveNbd(String name, String... options) throws Exception {
        String[] args = new String[options.length + 3];
        args[0] = "serve";
        args[1] = "nbd";
        args[2] = Fixtures.nydusBootstrap().toString();
        System.arraycopy(options, 0, args, 3, options.length);
        return StrataProcess.start(tmp, name, args);
    }

    private static int port(String log) {
        Matcher m = TCP_PORT.matcher(log);
        assertTrue(m.find(), log);
        return Integer.parseInt(m.group(1));
    }

    @Test
    void tcpWithoutAHostListensOnLoopbackOnly() throws Exception {
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        Optional<InetAddress> outside = Collections.list(NetworkInterface.getNetworkInterfaces()).stream()
                .filter(i -> !isLoopback(i)).flatMap(i -> Collections.list(i.getInetAddresses()).stream())
                .filter(a -> a instanceof Inet4Address).findFirst();
        for (String form : List.of("0", ":0")) {
            try (StrataProcess.Server s = serveNbd("tcp" + form.length(), "--tcp", form)) {
                String log = s.awaitLog("nbd: TCP port ");
                int port = port(log);
                assertTrue(log.contains("listening on tcp:127.0.0.1:" + port), log);
                assertFalse(log.contains("without TLS"), log);
                assertEquals(FIXTURE_SIZE, HostTools.run(List.of("nbdinfo", "--size", "nbd://127.0.0.1:" + port)).strip());
                if (outside.isPresent()) { // this machine's own address outside loopback: nothing listens there
                    assertThrows(IOException.class, () -> SocketChannel.open(new InetSocketAddress(outside.get(), port)).close(),
                            "--tcp " + form + " must not be reachable on " + outside.get());
                }
            }
        }
    }

    private static boolean isLoopback(NetworkInterface i) {
        try {
            return i.isLoopback() || !i.isUp();
        } catch (IOException e) {
            return true;
        }
    }

    @Test
    void anotherAddressWithoutTlsIsWarnedAbout() throws Exception {
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        try (StrataProcess.Server s = serveNbd("any", "--tcp", "0.0.0.0:0")) {
            String log = s.awaitLog("nbd: TCP port ");
            assertEquals(1, log.lines().filter(l -> l.contains("without TLS")).count(), log);
            assertEquals(FIXTURE_SIZE, HostTools.run(List.of("nbdinfo", "--size", "nbd://127.0.0.1:" + port(log))).strip());
        }
        try (StrataProcess.Server s = serveNbd("v6", "--tcp", "[::1]:0")) {
            String log = s.awaitLog("nbd: TCP port ");
            assertFalse(log.contains("without TLS"), "[::1] is loopback: " + log);
            assertEquals(FIXTURE_SIZE, HostTools.run(List.of("nbdinfo", "--size", "nbd://[::1]:" + port(log))).strip());
        }
    }

    @Test
    void badListenOptionsPrintOneLineAndExit2() throws Exception {
        String boot = Fixtures.nydusBootstrap().toString();
        for (List<String> args : List.of(
                List.of("--tcp", "::1:10809"),
                List.of("--tcp", "localhost:99999"),
                List.of("--tcp", "[::1"),
                List.of("--socket", tmp.resolve("s").toString(), "--socket-mode", "0999"),
                List.of("--socket", tmp.resolve("s").toString(), "--max-connections", "0"),
                List.of("--socket", tmp.resolve("s").toString(), "--backlog", "0"),
                List.of("--socket", tmp.resolve("s").toString(), "--handshake-timeout", "0"))) {
            String[] argv = new String[args.size() + 3];
            argv[0] = "serve";
            argv[1] = "nbd";
            argv[2] = boot;
            for (int i = 0; i < args.size(); i++) {
                argv[3 + i] = args.get(i);
            }
            StrataProcess.Run r = StrataProcess.run(tmp, argv);
            assertEquals(2, r.code(), args + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), args + ": " + r.err());
        }
    }

    @Test
    void unixSocketsAreForTheirOwnerUnlessSocketModeSaysOtherwise() throws Exception {
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        HostTools.require("root".equals(System.getProperty("user.name")), "runs a client as user nobody (needs root)");
        Path closed = shared.resolve("closed.sock");
        Path open = shared.resolve("open.sock");
        try (StrataProcess.Server a = serveNbd("closed", "--socket", closed.toString());
                StrataProcess.Server b = serveNbd("open", "--socket", open.toString(), "--socket-mode", "0666")) {
            a.awaitLog("listening on unix:");
            b.awaitLog("listening on unix:");
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(closed)));
            assertEquals("rw-rw-rw-", PosixFilePermissions.toString(Files.getPosixFilePermissions(open)));
            assertEquals(List.of(closed.getFileName(), open.getFileName()), listing(), "no staging directory left behind");
            // The owner (root) connects to both; user nobody only where the mode lets it.
            assertEquals(FIXTURE_SIZE, HostTools.run(List.of("nbdinfo", "--size", "nbd+unix:///?socket=" + closed)).strip());
            assertEquals(FIXTURE_SIZE, asNobody("nbd+unix:///?socket=" + open).output().strip());
            HostTools.Outcome refused = asNobody("nbd+unix:///?socket=" + closed);
            assertNotEquals(0, refused.exitCode(), refused.output());
            assertTrue(refused.output().contains("Permission denied"), refused.output());
        }
        Path vhost = shared.resolve("vhost.sock");
        Path vhostGroup = shared.resolve("vhost-group.sock");
        String boot = Fixtures.nydusBootstrap().toString();
        try (StrataProcess.Server a = StrataProcess.start(tmp, "vhost", "serve", "vhost-user", boot, "--socket", vhost.toString());
                StrataProcess.Server b = StrataProcess.start(tmp, "vhost-group", "serve", "vhost-user", boot, "--socket",
                        vhostGroup.toString(), "--socket-mode", "660")) {
            a.awaitLog("vhost-user: listening on");
            b.awaitLog("vhost-user: listening on");
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(vhost)));
            assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(vhostGroup)));
        }
    }

    private List<Path> listing() throws IOException {
        try (var s = Files.list(shared)) {
            return s.map(Path::getFileName).sorted().toList();
        }
    }

    private static HostTools.Outcome asNobody(String uri) throws IOException {
        return HostTools.execute(List.of("runuser", "-u", "nobody", "--", "nbdinfo", "--size", uri));
    }

    @Test
    void attachRefusesWhatIsNotAnNbdDevice() throws Exception {
        Path file = Files.write(tmp.resolve("plain-file"), new byte[4096]);
        List<String> targets = new java.util.ArrayList<>(List.of("/dev/null", file.toString()));
        if (Files.exists(Paths.get("/dev/loop0"))) {
            targets.add("/dev/loop0"); // a block device, of another driver (major 7)
        }
        for (String target : targets) {
            StrataProcess.Run r = StrataProcess.run(tmp, "attach", target, Fixtures.nydusBootstrap().toString());
            assertEquals(2, r.code(), target + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), target + ": " + r.err());
            assertTrue(r.err().contains("not") && r.err().contains(target), r.err());
        }
    }
}
