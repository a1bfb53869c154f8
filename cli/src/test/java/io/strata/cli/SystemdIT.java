package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Running under systemd without a running systemd (issue 11 part 4): socket activation through
 * systemd-socket-activate, which passes listening sockets as systemd does (LISTEN_FDS, LISTEN_PID,
 * fds from 3), and Type=notify through a datagram socket this test owns, read by Python's socket
 * module as systemd would read NOTIFY_SOCKET.
 */
@Timeout(240)
class SystemdIT {
    /**
     * Binds a unix datagram socket (a path, or @name in the abstract namespace), prints each
     * datagram on one line ('|' for its newlines) and exits after STOPPING=1, or fails after 120 s.
     */
    static final String RECEIVER = String.join("\n",
            "import socket, sys",
            "a = sys.argv[1]",
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
            "s.bind('\\0' + a[1:] if a.startswith('@') else a)",
            "print('bound', flush=True)",
            "s.settimeout(120)",
            "while True:",
            "    m = s.recv(4096).decode()",
            "    print(m.replace('\\n', '|'), flush=True)",
            "    if 'STOPPING=1' in m.split('\\n'):",
            "        break");

    @TempDir
    Path tmp;

    @Test
    void socketActivationServesOnEveryPassedSocket() throws Exception {
        HostTools.requireTool("systemd-socket-activate", "systemd");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        Path socket = tmp.resolve("nbd.sock");
        Path log = tmp.resolve("activate.err");
        Process activate = socketActivated(List.of("127.0.0.1:" + port, socket.toString()), log,
                "serve", "nbd", Fixtures.nydusBootstrap().toString());
        try {
            // It listens on both, then starts Strata with both when the first client connects.
            StrataProcess.awaitText(log, "Listening on " + socket + " as 4.", activate);
            Path overTcp = tmp.resolve("tcp.raw");
            Path overUnix = tmp.resolve("unix.raw");
            HostTools.run(List.of("nbdcopy", "nbd://127.0.0.1:" + port, overTcp.toString()));
            HostTools.run(List.of("nbdcopy", "nbd+unix:///?socket=" + socket, overUnix.toString()));

            String text = Files.readString(log, StandardCharsets.UTF_8);
            assertTrue(text.contains("nbd: listening on tcp:127.0.0.1:" + port + " (passed in)"), text);
            assertTrue(text.contains("nbd: listening on unix:" + socket + " (passed in)"), text);

            Path expected = tmp.resolve("export.raw");
            StrataProcess.Run export = StrataProcess.run(tmp, "export", Fixtures.nydusBootstrap().toString(), "-o", expected.toString());
            assertEquals(0, export.code(), export.err());
            byte[] device = Files.readAllBytes(expected);
            assertEquals(Fixtures.NYDUS_BLOCKS * 4096, device.length);
            assertArrayEquals(device, Files.readAllBytes(overTcp), "the copy over the passed TCP socket");
            assertArrayEquals(device, Files.readAllBytes(overUnix), "the copy over the passed unix socket");
        } finally {
            stop(activate);
        }
    }

    /**
     * The daemon ({@code serve --config}) started by its socket's first client: that client asks for
     * an export of the config, which must be there when its handshake is answered (the passed
     * listener served before the config's exports were added, and the client was told "no export
     * named 'app'"; `serve nbd` was not affected).
     */
    @Test
    void theDaemonsFirstSocketActivatedClientFindsTheConfigsExport() throws Exception {
        HostTools.requireTool("systemd-socket-activate", "systemd");
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        Path socket = tmp.resolve("nbd.sock");
        Path config = tmp.resolve("exports.json");
        // A registry that accepts connections and never answers: its entry keeps the config opening for
        // the registry's deadline (3 s here), the window in which the first client used to be answered.
        ServerSocket silent = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
        Files.writeString(config, "{\"exports\": [{\"kind\": \"nbd\", \"name\": \"slow\", \"source\": \"127.0.0.1:"
                + silent.getLocalPort() + "/silent/image:1\"}, {\"kind\": \"nbd\", \"name\": \"app\", \"source\": \""
                + Fixtures.nydusBootstrap() + "\"}]}");
        Path log = tmp.resolve("activate.err");
        Process activate = socketActivated(List.of(socket.toString()), log, "serve", "--control", tmp.resolve("ctl.sock").toString(),
                "--config", config.toString(), "--registry-try-timeout", "2", "--registry-deadline", "3");
        try (silent) {
            StrataProcess.awaitText(log, "Listening on " + socket + " as 3.", activate);
            HostTools.Outcome first = HostTools.execute(List.of("nbdinfo", "--size", "nbd+unix:///app?socket=" + socket));
            assertEquals(0, first.exitCode(), first.output() + "\n" + Files.readString(log, StandardCharsets.UTF_8));
            assertEquals(String.valueOf(Fixtures.NYDUS_BLOCKS * 4096L), first.output().strip());
        } finally {
            stop(activate);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"nbd path", "nbd abstract", "vhost-user path"})
    void notifiesReadyOnceServingAndStoppingOnShutdown(String variant) throws Exception {
        HostTools.requireTool("python3", "python3");
        boolean nbd = variant.startsWith("nbd");
        String notifySocket = variant.endsWith("path") ? tmp.resolve("notify").toString()
                : "@strata-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        Path received = tmp.resolve("received");
        Process receiver = new ProcessBuilder("python3", "-c", RECEIVER, notifySocket).redirectErrorStream(true)
                .redirectOutput(received.toFile()).start();
        try {
            StrataProcess.awaitText(received, "bound", receiver);
            Path socket = tmp.resolve("served.sock");
            try (StrataProcess.Server server = StrataProcess.start(tmp, "notify", Map.of("NOTIFY_SOCKET", notifySocket), "serve",
                    nbd ? "nbd" : "vhost-user", Fixtures.nydusBootstrap().toString(), "--socket", socket.toString())) {
                StrataProcess.awaitText(received, "READY=1", server.process);
                // READY=1 comes once it serves: a client connecting now is answered.
                if (nbd) {
                    HostTools.requireTool("nbdinfo", "libnbd-bin");
                    assertEquals(String.valueOf(Fixtures.NYDUS_BLOCKS * 4096),
                            HostTools.run(List.of("nbdinfo", "--size", "nbd+unix:///?socket=" + socket)).strip());
                    assertTrue(server.log().contains("nbd: export ''"), server.log());
                } else {
                    try (SocketChannel qemuSide = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
                        assertTrue(qemuSide.isConnected());
                    }
                }
                server.close();
                assertSuccessForTheUnits(server.process.exitValue());
            }
            assertTrue(receiver.waitFor(60, TimeUnit.SECONDS), "no STOPPING=1: " + Files.readString(received));
            assertEquals(0, receiver.exitValue(), Files.readString(received));
            String status = nbd ? "serving 1 NBD export(s)" : "serving vhost-user on " + socket;
            assertEquals(List.of("bound", "READY=1|STATUS=" + status, "STOPPING=1"), Files.readAllLines(received));
        } finally {
            receiver.destroyForcibly();
            receiver.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A daemon whose config names an image on a registry that never answers: while the export opens
     * (until the registry deadline) it tells systemd to extend its start timeout, and a SIGHUP then
     * (systemctl reload, or any kill -HUP) is kept for when it is up, not the end of the process
     * (the JVM's own SIGHUP handling exited 129 and left its NBD socket file behind). On SIGTERM it
     * exits with a status the unit counts as success.
     */
    @Test
    void aDaemonStartingSlowlyExtendsItsStartTimeoutAndKeepsASighupForLater() throws Exception {
        HostTools.requireTool("python3", "python3");
        Path notify = tmp.resolve("notify");
        Path received = tmp.resolve("received");
        try (java.net.ServerSocket blackHole = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            Process receiver = new ProcessBuilder("python3", "-c", RECEIVER, notify.toString()).redirectErrorStream(true)
                    .redirectOutput(received.toFile()).start();
            java.util.List<java.net.Socket> held = new java.util.concurrent.CopyOnWriteArrayList<>();
            Thread acceptor = new Thread(() -> {
                try {
                    while (true) {
                        held.add(blackHole.accept()); // never answered
                    }
                } catch (java.io.IOException closed) {
                    // the test is over
                }
            });
            acceptor.setDaemon(true);
            acceptor.start();
            try {
                StrataProcess.awaitText(received, "bound", receiver);
                Path config = tmp.resolve("exports.json");
                Files.writeString(config, "{\"exports\": [{\"kind\": \"nbd\", \"name\": \"slow\", \"source\": \"127.0.0.1:"
                        + blackHole.getLocalPort() + "/slow/image:1\"}]}");
                try (StrataProcess.Server daemon = StrataProcess.start(tmp, "slow-daemon", Map.of("NOTIFY_SOCKET", notify.toString()),
                        "serve", "--control", tmp.resolve("control.sock").toString(), "--socket", tmp.resolve("nbd.sock").toString(),
                        "--config", config.toString(), "--registry-deadline", "8", "--registry-retries", "1")) {
                    StrataProcess.awaitText(received, "EXTEND_TIMEOUT_USEC=60000000|STATUS=opening 1 export(s) from the config", receiver);
                    HostTools.run(List.of("kill", "-HUP", Long.toString(daemon.process.pid())));
                    daemon.awaitLog("SIGHUP while starting: the config is read again once the daemon is up");
                    StrataProcess.awaitText(received, "READY=1", daemon.process);
                    // Once up, the kept SIGHUP re-reads the config (the slow image fails again, later).
                    daemon.awaitLog(java.util.regex.Pattern.compile("SIGHUP: config " + java.util.regex.Pattern.quote(config.toString())), 60);
                    assertTrue(daemon.process.isAlive(), daemon.log());
                    daemon.close();
                    assertSuccessForTheUnits(daemon.process.exitValue());
                }
                assertTrue(receiver.waitFor(60, TimeUnit.SECONDS), "no STOPPING=1: " + Files.readString(received));
                List<String> lines = Files.readAllLines(received);
                assertTrue(lines.indexOf("READY=1|STATUS=serving 0 export(s); control on " + tmp.resolve("control.sock")) > 1, lines.toString());
            } finally {
                receiver.destroyForcibly();
                receiver.waitFor(10, TimeUnit.SECONDS);
                for (java.net.Socket s : held) {
                    s.close();
                }
            }
        }
    }

    /**
     * systemd counts a stop as clean for exit status 0, death by SIGTERM, and the unit's
     * SuccessExitStatus=: the JVM exits 143 (128 + SIGTERM) after its shutdown hooks.
     */
    static void assertSuccessForTheUnits(int status) throws Exception {
        for (String unit : List.of("strata.service", "strata-nbd.service")) {
            String text = Files.readString(StrataProcess.home().resolve("packaging/systemd").resolve(unit), StandardCharsets.UTF_8);
            List<String> success = text.lines().filter(l -> l.startsWith("SuccessExitStatus="))
                    .flatMap(l -> java.util.Arrays.stream(l.substring("SuccessExitStatus=".length()).trim().split("\\s+"))).toList();
            assertTrue(status == 0 || success.contains(Integer.toString(status)),
                    "exit status " + status + " on SIGTERM is a failure for " + unit + " (SuccessExitStatus: " + success + ")");
        }
    }

    @Test
    void aPassedDescriptorThatIsNotAListeningSocketIsRefused() throws Exception {
        // LISTEN_PID must be the server's own pid: the shell exports its $$, which bin/strata's exec keeps.
        String script = "export LISTEN_PID=$$ LISTEN_FDS=1; exec 3<\"$1\"; exec \"$2\" serve nbd \"$1\"";
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", script, "strata-test", Fixtures.nydusBootstrap().toString(),
                StrataProcess.home().resolve("bin/strata").toString());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("STRATA_DEBUG");
        Path err = tmp.resolve("bad.err");
        pb.redirectOutput(tmp.resolve("bad.out").toFile()).redirectError(err.toFile());
        Process p = pb.start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "strata did not exit");
        String text = Files.readString(err, StandardCharsets.UTF_8);
        assertEquals(1, p.exitValue(), text);
        assertEquals(1, text.strip().lines().count(), "one line: " + text);
        assertTrue(text.contains("fd 3 from LISTEN_FDS is not a socket"), text);
    }

    @Test
    void theShippedUnitsVerifyAndCarryTheHardening() throws Exception {
        HostTools.requireTool("systemd-analyze", "systemd");
        Path shipped = StrataProcess.home().resolve("packaging/systemd");
        List<String> command = new ArrayList<>(List.of("env", "MANPATH=" + ManPagesIT.generated("man"), "systemd-analyze", "verify"));
        java.util.Set<String> cacheDirectories = new java.util.HashSet<>();
        for (String unit : List.of("strata.service", "strata-nbd.socket", "strata-nbd.service")) {
            String text = Files.readString(shipped.resolve(unit), StandardCharsets.UTF_8);
            if (unit.endsWith(".service")) {
                for (String line : List.of("Type=notify", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes", "DynamicUser=yes")) {
                    assertTrue(text.lines().anyMatch(line::equals), unit + " lacks " + line);
                }
                // Each unit runs as a dynamic user of its own, and systemd hands a CacheDirectory= to
                // the user of the unit started last: two units sharing one would take it from each other.
                String cache = text.lines().filter(l -> l.startsWith("CacheDirectory=")).findFirst()
                        .orElseThrow(() -> new AssertionError(unit + " has no CacheDirectory=")).substring("CacheDirectory=".length());
                assertTrue(cacheDirectories.add(cache), unit + " shares CacheDirectory=" + cache + " with another unit");
                String execStart = text.lines().filter(l -> l.startsWith("ExecStart=")).findFirst().orElseThrow();
                assertFalse(execStart.contains("--cache-dir"), unit + ": --cache-dir in ExecStart would be given twice with one in STRATA_ARGS");
            }
            // The package installs /usr/bin/strata; here the checkout's launcher stands in for it.
            Path copy = tmp.resolve(unit);
            Files.writeString(copy, text.replace("/usr/bin/strata", StrataProcess.home().resolve("bin/strata").toString()));
            command.add(copy.toString());
        }
        // The server caches where systemd's CacheDirectory= is: --cache-dir defaults to $CACHE_DIRECTORY.
        StrataProcess.Run help = StrataProcess.run(tmp, java.util.Map.of("CACHE_DIRECTORY", "/var/cache/strata-nbd"), "serve", "nbd", "--help");
        assertEquals(0, help.code(), help.err());
        assertTrue(help.out().replaceAll("\\s+", " ").contains("here /var/cache/strata-nbd)"), help.out());
        // verify loads each unit as systemd would: unknown or misspelt keys, bad values, a missing
        // ExecStart binary or a Documentation= man page that man cannot find are all reported.
        HostTools.Outcome o = HostTools.execute(command);
        assertEquals(0, o.exitCode(), o.output());
        assertEquals("", o.output().strip(), "systemd-analyze verify complains");
    }

    /**
     * {@code bin/strata args} under systemd-socket-activate listening on {@code listen} (addresses or
     * socket paths), its stderr to {@code log}: started when the first client connects.
     */
    private Process socketActivated(List<String> listen, Path log, String... args) throws java.io.IOException {
        List<String> cmd = new ArrayList<>(List.of("systemd-socket-activate"));
        for (String l : listen) {
            cmd.addAll(List.of("-l", l));
        }
        // systemd-socket-activate gives the service only TERM, PATH, USER, HOME and what -E names.
        cmd.addAll(List.of("-E", "JAVA_HOME=" + System.getProperty("java.home"), StrataProcess.home().resolve("bin/strata").toString()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectOutput(tmp.resolve("activate.out").toFile()).redirectError(log.toFile()).start();
    }

    /** SIGTERM to the process and whatever it started (Strata runs as its child or in its place). */
    private static void stop(Process process) throws InterruptedException {
        List<ProcessHandle> all = new ArrayList<>(process.descendants().toList());
        all.add(process.toHandle());
        for (ProcessHandle h : all) {
            h.destroy();
        }
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
                h.destroyForcibly();
            }
        }
    }
}
