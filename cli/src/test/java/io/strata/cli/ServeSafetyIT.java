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

    /** An expected run: {@code strata args} exits {@code code} with exactly the one line {@code err} on stderr. */
    private record Expect(List<String> args, int code, String err) {
    }

    private void assertRuns(List<Expect> cases) throws Exception {
        for (Expect e : cases) {
            StrataProcess.Run r = StrataProcess.run(tmp, e.args().toArray(String[]::new));
            assertEquals(e.code(), r.code(), e.args() + ": " + r.err());
            assertEquals(e.err() + "\n", r.err(), e.args().toString());
        }
    }

    /**
     * A listen address that does not resolve, and a socket path that cannot be one (empty, in a
     * directory that is not there, a file or a directory already there), are bad arguments: one
     * line, exit 2, before anything is opened. They printed an exception's class name
     * (UnresolvedAddressException), or the failure followed by "stopping on signal" and "nbd:
     * stopped" with exit 1, and the metrics address failed only after the server said it listened.
     */
    @Test
    void listenAddressesAndSocketPathsThatCannotBeAreOneLineBadArguments() throws Exception {
        String boot = Fixtures.nydusBootstrap().toString();
        Path file = Files.writeString(tmp.resolve("afile"), "keep me");
        Path dir = Files.createDirectories(tmp.resolve("adir"));
        Path noDir = tmp.resolve("nodir/s.sock");
        String sock = tmp.resolve("s.sock").toString();
        String control = tmp.resolve("c.sock").toString();
        String nbd = "strata serve nbd: ";
        String nbdHelp = " (see 'strata serve nbd --help')";
        String serve = "strata serve: ";
        String serveHelp = " (see 'strata serve --help')";
        assertRuns(List.of(
                new Expect(List.of("serve", "nbd", boot, "--tcp", "no.such.host.invalid:10809"), 2,
                        nbd + "--tcp: unknown host 'no.such.host.invalid'" + nbdHelp),
                new Expect(List.of("serve", "nbd", boot, "--socket", sock, "--metrics-listen", "no.such.host.invalid:9100"), 2,
                        nbd + "--metrics-listen: unknown host 'no.such.host.invalid'" + nbdHelp),
                new Expect(List.of("serve", "nbd", boot, "--socket", file.toString()), 2,
                        nbd + "--socket " + file + " exists and is not a socket; not replacing it" + nbdHelp),
                new Expect(List.of("serve", "nbd", boot, "--socket", dir.toString()), 2,
                        nbd + "--socket " + dir + " exists and is not a socket; not replacing it" + nbdHelp),
                new Expect(List.of("serve", "nbd", boot, "--socket", noDir.toString()), 2,
                        nbd + "--socket " + noDir + ": no directory " + noDir.getParent() + " to hold the socket" + nbdHelp),
                new Expect(List.of("serve", "nbd", boot, "--socket", ""), 2, nbd + "--socket wants a path, got ''" + nbdHelp),
                new Expect(List.of("serve", "vhost-user", boot, "--socket", file.toString()), 2,
                        "strata serve vhost-user: --socket " + file + " exists and is not a socket; not replacing it"
                                + " (see 'strata serve vhost-user --help')"),
                new Expect(List.of("serve", "--control", file.toString()), 2,
                        serve + "--control " + file + " exists and is not a socket; not replacing it" + serveHelp),
                new Expect(List.of("serve", "--control", dir.toString()), 2,
                        serve + "--control " + dir + " exists and is not a socket; not replacing it" + serveHelp),
                new Expect(List.of("serve", "--control", noDir.toString()), 2,
                        serve + "--control " + noDir + ": no directory " + noDir.getParent() + " to hold the socket" + serveHelp),
                new Expect(List.of("serve", "--control", ""), 2, serve + "--control wants a path, got ''" + serveHelp),
                new Expect(List.of("serve", "--control", control, "--tcp", "no.such.host.invalid:1"), 2,
                        serve + "--tcp: unknown host 'no.such.host.invalid'" + serveHelp),
                new Expect(List.of("serve", "--control", control, "--socket", file.toString()), 2,
                        serve + "--socket " + file + " exists and is not a socket; not replacing it" + serveHelp)));
        assertEquals("keep me", Files.readString(file));
        assertEquals(List.of(), listing(tmp, "s.sock", "c.sock"), "no socket left behind");
    }

    /**
     * A listener that cannot bind (its address in use, or not this machine's) fails the start with
     * one line naming the address and the system's reason, exit 1, before the server has listened
     * or logged anything, and gives up what it had bound; no "stopping on signal" when no signal came.
     */
    @Test
    void aListenerThatCannotBindFailsWithOneLineNamingItsAddress() throws Exception {
        String boot = Fixtures.nydusBootstrap().toString();
        String sock = tmp.resolve("s.sock").toString();
        String control = tmp.resolve("c.sock").toString();
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            String inUse = "127.0.0.1:" + taken.getLocalPort();
            assertRuns(List.of(
                    new Expect(List.of("serve", "nbd", boot, "--socket", sock, "--tcp", inUse), 1,
                            "strata serve nbd: --tcp " + inUse + ": Address already in use"),
                    new Expect(List.of("serve", "nbd", boot, "--socket", sock, "--metrics-listen", inUse), 1,
                            "strata serve nbd: --metrics-listen " + inUse + ": Address already in use"),
                    new Expect(List.of("serve", "vhost-user", boot, "--socket", sock, "--metrics-listen", inUse), 1,
                            "strata serve vhost-user: --metrics-listen " + inUse + ": Address already in use"),
                    new Expect(List.of("serve", "nbd", boot, "--tcp", "192.0.2.1:10809"), 1,
                            "strata serve nbd: --tcp 192.0.2.1:10809: Cannot assign requested address"),
                    new Expect(List.of("serve", "--control", control, "--socket", sock, "--tcp", inUse), 1,
                            "strata serve: --tcp " + inUse + ": Address already in use"),
                    new Expect(List.of("serve", "--control", control, "--socket", sock, "--metrics-listen", inUse), 1,
                            "strata serve: --metrics-listen " + inUse + ": Address already in use")));
        }
        assertEquals(List.of(), listing(tmp, "s.sock", "c.sock"), "no socket left behind");
    }

    /** Which of {@code names} exist in {@code dir}. */
    private static List<String> listing(Path dir, String... names) {
        return java.util.Arrays.stream(names).filter(n -> Files.exists(dir.resolve(n))).toList();
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

    /**
     * A node of the nbd driver's major on a kernel without that driver: the open fails with one line,
     * exit 1, and no "nbd: stopped" of a server that never served before it.
     */
    @Test
    void attachToAnNbdNodeWithoutTheDriverFailsWithOneLine() throws Exception {
        HostTools.require("root".equals(System.getProperty("user.name")), "mknod needs root");
        HostTools.require(!Files.exists(Paths.get("/sys/module/nbd")), "the nbd driver is loaded: the node would be a real device");
        Path node = tmp.resolve("nbd0");
        HostTools.run(List.of("mknod", node.toString(), "b", "43", "0"));
        StrataProcess.Run r = StrataProcess.run(tmp, "attach", node.toString(), Fixtures.nydusBootstrap().toString());
        assertEquals(1, r.code(), r.err());
        assertEquals("strata attach: open " + node + " failed: errno 6 (No such device or address)\n", r.err());
    }
}
