package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon (issue 11 part 1), through bin/strata: {@code strata serve --control PATH} with
 * exports added and removed by {@code strata ctl} and by curl on the control socket, read by
 * nbdinfo and nbdcopy, refusing malformed requests, refusing to remove an export with a client
 * unless forced, freeing what an export held, applying a changed --config on SIGHUP, and serving
 * one export byte for byte while 50 others come and go.
 */
@Timeout(180)
class DaemonIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long FIXTURE_SIZE = Fixtures.NYDUS_BLOCKS * 4096L;

    @TempDir
    Path tmp;
    Path control;
    Path nbdSocket;
    StrataProcess.Server daemon;

    @BeforeEach
    void tools() {
        HostTools.requireTool("curl", "curl");
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        control = tmp.resolve("control.sock");
        nbdSocket = tmp.resolve("nbd.sock");
    }

    @AfterEach
    void stop() throws Exception {
        if (daemon != null) {
            daemon.close();
        }
    }

    private void startDaemon(Map<String, String> env, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("serve", "--control", control.toString(), "--socket", nbdSocket.toString(),
                "--cache-dir", tmp.resolve("cache").toString(), "--metrics-interval", "0"));
        args.addAll(List.of(extra));
        daemon = StrataProcess.start(tmp, "daemon", env, args.toArray(String[]::new));
        daemon.awaitLog("control: listening on");
    }

    private StrataProcess.Run ctl(String... args) throws Exception {
        List<String> a = new ArrayList<>(List.of("ctl", "--control", control.toString()));
        a.addAll(List.of(args));
        return StrataProcess.run(tmp, a.toArray(String[]::new));
    }

    /** An HTTP answer from curl: status and JSON body. */
    record Http(int status, JsonNode body) {
        String error() {
            return body.path("error").asText();
        }
    }

    /** curl --unix-socket on the control socket; {@code body} null for none. */
    private Http curl(String method, String path, String body) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("curl", "-sS", "--max-time", "60", "--unix-socket", control.toString(),
                "-X", method, "-w", "\n%{http_code}", "http://strata" + path));
        if (body != null) {
            cmd.addAll(List.of("-H", "Content-Type: application/json", "--data-binary", body));
        }
        String out = HostTools.run(cmd);
        int nl = out.lastIndexOf('\n');
        int status = Integer.parseInt(out.substring(nl + 1).strip());
        String text = out.substring(0, nl);
        JsonNode json;
        try {
            json = JSON.readTree(text);
        } catch (IOException e) {
            throw new AssertionError("HTTP " + status + " with a body that is not JSON: " + text);
        }
        return new Http(status, json);
    }

    private static String nbdExport(String name) {
        return "{\"kind\":\"nbd\",\"name\":\"" + name + "\",\"source\":\"" + Fixtures.nydusBootstrap() + "\",\"blob_dir\":\""
                + Fixtures.nydusDir() + "\"}";
    }

    private String uri(String name) {
        return "nbd+unix:///" + name + "?socket=" + nbdSocket;
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    /**
     * Waits until export {@code name} has no client: the server notices a client's connection closed
     * a moment after the client (nbdcopy, nbdinfo) exits.
     */
    private void awaitNoClients(String name) throws InterruptedException {
        await(() -> {
            try {
                return curl("GET", "/api/v1/exports/" + name, null).body().path("clients").asInt(-1) == 0;
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, "export '" + name + "' to have no client");
    }

    private List<String> names() throws IOException {
        List<String> names = new ArrayList<>();
        for (JsonNode e : curl("GET", "/api/v1/exports", null).body()) {
            names.add(e.get("name").asText());
        }
        return names;
    }

    @Test
    void exportsAddedListedAndRemovedThroughCtlAndCurl() throws Exception {
        startDaemon(Map.of());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(control)), "the control socket is its owner's only");

        StrataProcess.Run add = ctl("add", "nbd", "web", Fixtures.nydusBootstrap().toString(), "-D", Fixtures.nydusDir().toString());
        assertEquals(0, add.code(), add.err());
        assertTrue(add.out().contains("added nbd export 'web' (" + FIXTURE_SIZE + " bytes)"), add.out());
        Path raw = tmp.resolve("disk.raw");
        Files.write(raw, new byte[] {1, 2, 3, 4, 5, 6, 7, 8}); // NBD rounds nothing: an 8-byte export
        Http posted = curl("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"disk\",\"raw\":\"" + raw + "\"}");
        assertEquals(201, posted.status(), posted.body().toString());
        assertEquals(8, posted.body().get("size").asLong());
        Path vhost = tmp.resolve("vm.sock");
        StrataProcess.Run addVhost = ctl("add", "vhost-user", vhost.toString(), Fixtures.nydusBootstrap().toString(), "-D",
                Fixtures.nydusDir().toString(), "--queues", "2");
        assertEquals(0, addVhost.code(), addVhost.err());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(vhost)));

        // Both NBD exports answer on the one listener, by name.
        assertEquals(String.valueOf(FIXTURE_SIZE), HostTools.run(List.of("nbdinfo", "--size", uri("web"))).strip());
        assertEquals("8", HostTools.run(List.of("nbdinfo", "--size", uri("disk"))).strip());
        String exportList = HostTools.run(List.of("nbdinfo", "--list", "nbd+unix:///?socket=" + nbdSocket));
        assertTrue(exportList.contains("export=\"disk\""), exportList);
        // No default export: a client that names none is told so, not handed the oldest export.
        HostTools.Outcome unnamed = HostTools.execute(List.of("nbdinfo", "--size", "nbd+unix:///?socket=" + nbdSocket));
        assertTrue(unnamed.exitCode() != 0, unnamed.output());
        // Descriptions say what an export is, never where it lives on the host.
        assertTrue(exportList.contains("description: raw image (8 bytes)") && exportList.contains("description: RAFS image (1 blob(s), "),
                exportList);
        assertFalse(exportList.lines().anyMatch(l -> l.strip().startsWith("description:") && l.contains("/")), exportList);

        StrataProcess.Run list = ctl("list");
        assertEquals(0, list.code(), list.err());
        assertTrue(list.out().lines().anyMatch(l -> l.startsWith("web ") && l.contains(" nbd ") && l.contains(" " + FIXTURE_SIZE + " ")), list.out());
        assertTrue(list.out().lines().anyMatch(l -> l.startsWith("disk ") && l.contains("raw:" + raw)), list.out());
        assertTrue(list.out().lines().anyMatch(l -> l.startsWith(vhost.toString()) && l.contains(" vhost-user ")), list.out());
        HostTools.run(List.of("nbdcopy", uri("web"), "null:"));
        awaitNoClients("web");
        Http one = curl("GET", "/api/v1/exports/web", null);
        assertEquals(200, one.status());
        assertEquals(0, one.body().get("clients").asInt());
        assertTrue(one.body().get("cache_bytes").asLong() > 0, "nbdcopy read the chunks through the shared cache: " + one.body());
        assertTrue(one.body().get("requests").asLong() > 0 && one.body().get("bytes_read").asLong() > 0, "what nbdcopy read is counted: " + one.body());
        assertEquals(0, one.body().get("errors").asLong());
        StrataProcess.Run listed = ctl("list");
        assertTrue(listed.out().lines().anyMatch(l -> l.startsWith("web ") && l.contains(" " + one.body().get("bytes_read").asLong() + " ")),
                "ctl list shows the bytes read: " + listed.out());
        StrataProcess.Run stats = ctl("stats");
        assertEquals(0, stats.code(), stats.err());
        JsonNode s = JSON.readTree(stats.out());
        assertEquals(3, s.get("exports").asInt());
        assertTrue(s.get("nbd").get("connections_total").asLong() >= 3, stats.out());

        StrataProcess.Run removed = ctl("remove", "web");
        assertEquals(0, removed.code(), removed.err());
        awaitNoClients("disk"); // nbdinfo's connections to it, counted closed a moment after nbdinfo exits
        Http deleted = curl("DELETE", "/api/v1/exports/disk", null);
        assertEquals(200, deleted.status(), deleted.body().toString());
        StrataProcess.Run removedVhost = ctl("remove", vhost.toString());
        assertEquals(0, removedVhost.code(), removedVhost.err());
        assertFalse(Files.exists(vhost), "the vhost-user socket file goes with its export");
        assertEquals(List.of(), names());
        HostTools.Outcome gone = HostTools.execute(List.of("nbdinfo", "--size", uri("web")));
        assertTrue(gone.exitCode() != 0, "a removed export is no longer served: " + gone.output());
        assertEquals(0, curl("GET", "/api/v1/stats", null).body().get("cache").get("resident_bytes").asLong(),
                "the removed exports' chunks left the shared cache");

        StrataProcess.Run again = ctl("remove", "web");
        assertEquals(1, again.code());
        assertTrue(again.err().contains("no export 'web' (HTTP 404)"), again.err());
        StrataProcess.Run noDaemon = StrataProcess.run(tmp, "ctl", "--control", tmp.resolve("none.sock").toString(), "list");
        assertEquals(1, noDaemon.code());
        assertTrue(noDaemon.err().contains("cannot reach the daemon"), noDaemon.err());
        StrataProcess.Run bare = StrataProcess.run(tmp, "serve");
        assertEquals(2, bare.code(), "serve without a transport or --control is a usage error: " + bare.err());
    }

    /**
     * What the daemon refuses as the request's fault (its error says bad_argument) is a bad argument
     * of ctl: one line, exit 2 (it was 1); a broken image is not (exit 1, HTTP 400); a vhost-user
     * socket that cannot be made is blamed on the socket (it said "cannot serve BOOTSTRAP"); ctl's own bad arguments name the subcommand run (--timeout was "strata ctl: ..."),
     * an empty --control is one, and an empty STRATA_CONTROL is as unset (it was the empty path).
     */
    @Test
    void ctlBadArgumentsAndBadRequestsAreOneLineAndExit2() throws Exception {
        startDaemon(Map.of());
        String boot = Fixtures.nydusBootstrap().toString();
        String blobs = Fixtures.nydusDir().toString();
        Path noDir = tmp.resolve("nodir/v.sock");
        for (Object[] c : new Object[][] {
                {ctl("add", "nbd", "y", "/nonexistent"), "strata ctl add nbd: bootstrap not found: /nonexistent (see 'strata ctl add nbd --help')"},
                {ctl("add", "vhost-user", "--queues", "0", tmp.resolve("v.sock").toString(), boot, "-D", blobs),
                        "strata ctl add vhost-user: 'queues' must be 1..255, got 0 (see 'strata ctl add vhost-user --help')"},
                {ctl("add", "vhost-user", noDir.toString(), boot, "-D", blobs), "strata ctl add vhost-user: socket " + noDir + ": no directory "
                        + noDir.getParent() + " to hold the socket (see 'strata ctl add vhost-user --help')"},
                {ctl("list", "--timeout", "0"), "strata ctl list: --timeout must be at least 1 second (see 'strata ctl list --help')"},
                {StrataProcess.run(tmp, "ctl", "list", "--control", ""), "strata ctl list: --control wants a path, got '' (see 'strata ctl list --help')"}}) {
            StrataProcess.Run r = (StrataProcess.Run) c[0];
            assertEquals(2, r.code(), r.err());
            assertEquals(c[1] + "\n", r.err());
        }
        // An image that is there but broken is no bad argument: exit 1, as serve nbd exits for it.
        Path broken = tmp.resolve("broken.boot");
        byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
        b[1024] = 0;
        Files.write(broken, b);
        StrataProcess.Run bad = ctl("add", "nbd", "z", broken.toString(), "-D", blobs);
        assertEquals(1, bad.code(), bad.err());
        assertTrue(bad.err().startsWith("strata ctl add nbd: cannot serve " + broken + ": ") && bad.err().endsWith("(HTTP 400)\n"), bad.err());
        assertEquals(List.of(), names(), "nothing was added");
        StrataProcess.Run fromEnv = StrataProcess.run(tmp, Map.of("STRATA_CONTROL", control.toString()), "ctl", "list");
        assertEquals(0, fromEnv.code(), fromEnv.err());
        if (!Files.exists(Path.of(CtlCommand.DEFAULT_CONTROL))) {
            StrataProcess.Run emptyEnv = StrataProcess.run(tmp, Map.of("STRATA_CONTROL", ""), "ctl", "list");
            assertEquals(1, emptyEnv.code(), emptyEnv.err());
            assertTrue(emptyEnv.err().startsWith("strata ctl list: cannot reach the daemon on " + CtlCommand.DEFAULT_CONTROL + ": "), emptyEnv.err());
            assertEquals(1, emptyEnv.err().strip().lines().count(), emptyEnv.err());
        }
    }

    @Test
    void malformedRequestsGetAJsonErrorAndTheDaemonServesOn() throws Exception {
        startDaemon(Map.of());
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("a")).status());
        // A '+' in a path is a plus (RFC 3986), not a form field's space: this removed 'a b' once.
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("a+b")).status());
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("a b")).status());
        Http plus = curl("DELETE", "/api/v1/exports/a+b", null);
        assertEquals(200, plus.status(), plus.body().toString());
        assertEquals("a+b", plus.body().get("removed").asText());
        assertEquals(200, curl("GET", "/api/v1/exports/a%20b", null).status(), "'a b' is still there");
        assertEquals(200, curl("DELETE", "/api/v1/exports/a%20b", null).status());
        // A lone surrogate (JSON allows the escape) is no character: refused, not merged with another as '?'.
        Http lone = curl("POST", "/api/v1/exports", nbdExport("x\\ud800"));
        assertEquals(400, lone.status(), lone.body().toString());
        assertTrue(lone.body().get("error").asText().contains("lone UTF-16 surrogate"), lone.body().toString());
        String boot = Fixtures.nydusBootstrap().toString();
        record Case(String method, String path, String body, int status, String error) {
        }
        List<Case> cases = List.of(
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":", 400, "malformed export JSON"),
                new Case("POST", "/api/v1/exports", "[1,2]", 400, "malformed export JSON"),
                new Case("POST", "/api/v1/exports", "null", 400, "JSON null"),
                new Case("POST", "/api/v1/exports", "", 400, "the body is empty"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"b\",\"source\":\"" + boot + "\",\"colour\":1}", 400,
                        "unknown field 'colour'"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"iscsi\",\"name\":\"b\",\"source\":\"" + boot + "\"}", 400, "unknown kind 'iscsi'"),
                new Case("POST", "/api/v1/exports", "{\"name\":\"b\",\"source\":\"" + boot + "\"}", 400, "missing field 'kind'"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"b\"}", 400, "give 'source'"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"source\":\"" + boot + "\"}", 400, "non-empty 'name'"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"b\",\"source\":\"rel/boot\"}", 400, "absolute path"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"b\",\"source\":\"/nonexistent/boot\"}", 400, "bootstrap not found"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"b\",\"raw\":\"/nonexistent.img\"}", 400, "image not found"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"b\",\"source\":\"" + tmp + "\"}", 400, "is not a bootstrap file (a directory)"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"vhost-user\",\"socket\":\"/x.sock\",\"source\":\"" + boot + "\",\"queues\":0}",
                        400, "'queues' must be 1..255"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"vhost-user\",\"source\":\"" + boot + "\"}", 400, "needs 'socket'"),
                new Case("POST", "/api/v1/exports", nbdExport("a"), 409, "exists already"),
                new Case("DELETE", "/api/v1/exports/nope", null, 404, "no export 'nope'"),
                new Case("DELETE", "/api/v1/exports/a?force=maybe", null, 400, "force must be true or false"),
                new Case("DELETE", "/api/v1/exports", null, 400, "wants ?name=NAME"),
                new Case("PUT", "/api/v1/exports", "{}", 405, "PUT is not allowed"),
                new Case("GET", "/api/v2/exports", null, 404, "no such endpoint"),
                new Case("GET", "/api/v1/exports/nope", null, 404, "no export 'nope'"),
                new Case("GET", "/api/v1/exports?name=nope", null, 404, "no export 'nope'"),
                new Case("GET", "/api/v1/exports?name=a", null, 200, ""),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"vhost-user\",\"socket\":\"/x.sock\",\"source\":\"" + boot + "\",\"queues\":2.5}",
                        400, "malformed export JSON"),
                new Case("POST", "/api/v1/exports", "{\"kind\":\"nbd\",\"name\":\"b\",\"name\":\"c\",\"source\":\"" + boot + "\"}",
                        400, "Duplicate field 'name'"));
        for (Case c : cases) {
            Http h = curl(c.method(), c.path(), c.body());
            assertEquals(c.status(), h.status(), c + " -> " + h.body());
            assertTrue(h.error().contains(c.error()), c + " -> " + h.body());
        }
        // Bytes that are not HTTP at all: Jetty refuses them, as JSON too, and the daemon goes on.
        try (SocketChannel raw = SocketChannel.open(UnixDomainSocketAddress.of(control))) {
            raw.write(ByteBuffer.wrap("GARBAGE\u0001 / HTTP/9\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1)));
            ByteBuffer answer = ByteBuffer.allocate(4096);
            CompletableFuture.runAsync(() -> {
                try {
                    while (raw.read(answer) >= 0 && answer.hasRemaining()) {
                        // read to the end
                    }
                } catch (IOException ignored) {
                    // closed: what arrived is checked below
                }
            }).get(20, TimeUnit.SECONDS);
            String text = new String(answer.array(), 0, answer.position(), StandardCharsets.ISO_8859_1);
            assertTrue(text.startsWith("HTTP/1.1 400"), text);
        }
        assertTrue(daemon.process.isAlive(), daemon.log());
        assertEquals(List.of("a"), names(), "no malformed request added or removed anything");
        assertEquals(String.valueOf(FIXTURE_SIZE), HostTools.run(List.of("nbdinfo", "--size", uri("a"))).strip());
    }

    /**
     * A vhost-user export is named by its socket path in one spelling: "DIR/./v.sock" and "DIR//v.sock"
     * are the same socket and refused as it ("DIR/x/../v.sock" is left as written: through a symlink it
     * is another directory) (before, each was bound over the last, and removing one
     * deleted the socket file of the export still listed). GET ?name= finds it (a path cannot go in
     * the URL's path), and ctl remove takes it relative to the current directory, as ctl add did.
     */
    @Test
    void aVhostUserSocketIsOneExportHoweverItsPathIsSpelled() throws Exception {
        startDaemon(Map.of());
        String boot = Fixtures.nydusBootstrap().toString();
        String dir = Fixtures.nydusDir().toString();
        Path sock = tmp.resolve("v.sock");
        java.util.function.Function<String, String> body = path -> "{\"kind\":\"vhost-user\",\"socket\":\"" + path + "\",\"source\":\""
                + boot + "\",\"blob_dir\":\"" + dir + "\",\"queues\":1}";
        assertEquals(201, curl("POST", "/api/v1/exports", body.apply(sock.toString())).status());
        for (String spelling : List.of(tmp + "/./v.sock", tmp + "//v.sock", tmp + "/.//./v.sock")) {
            Http again = curl("POST", "/api/v1/exports", body.apply(spelling));
            assertEquals(409, again.status(), spelling + " -> " + again.body());
            assertTrue(again.error().contains("exists already"), again.body().toString());
        }
        Http one = curl("GET", "/api/v1/exports?name=" + java.net.URLEncoder.encode(sock.toString(), StandardCharsets.UTF_8), null);
        assertEquals(200, one.status(), one.body().toString());
        assertEquals(sock.toString(), one.body().get("name").asText());
        assertTrue(Files.exists(sock));

        ProcessBuilder pb = new ProcessBuilder(StrataProcess.home().resolve("bin/strata").toString(), "ctl", "--control", control.toString(),
                "remove", "v.sock").directory(tmp.toFile()).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("removed '" + sock + "'"), out);
        assertEquals(List.of(), names());
    }

    /** A control socket in a directory the user may not write: one line naming the socket and its directory. */
    @Test
    void aControlSocketInAnUnwritableDirectoryIsSaidSo() throws Exception {
        HostTools.requireTool("setpriv", "util-linux");
        HostTools.require("root".equals(System.getProperty("user.name")), "running as another user needs root");
        Path ro = Files.createDirectories(tmp.resolve("ro"));
        Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(ro, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        ProcessBuilder pb = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                StrataProcess.home().resolve("bin/strata").toString(), "serve", "--control", ro.resolve("ctl.sock").toString())
                .redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), out);
        assertTrue(out.contains(ro.resolve("ctl.sock") + ": cannot create the socket: its directory " + ro + " is not writable by this user"), out);
    }

    /**
     * A client in transmission, held open: the fixed-newstyle handshake by hand (NBD protocol,
     * "Fixed newstyle negotiation"), NBD_OPT_EXPORT_NAME with NBD_FLAG_C_NO_ZEROES, then nothing.
     */
    private SocketChannel connectAndHold(String export) throws IOException {
        return connectAndHold(export, FIXTURE_SIZE);
    }

    /** As {@link #connectAndHold(String)} for an export of {@code size} bytes. */
    private SocketChannel connectAndHold(String export, long size) throws IOException {
        SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(nbdSocket));
        ByteBuffer greeting = ByteBuffer.allocate(18);
        while (greeting.hasRemaining()) {
            if (ch.read(greeting) < 0) {
                throw new IOException("closed during the greeting");
            }
        }
        assertEquals(0x4e42444d41474943L, greeting.getLong(0)); // NBDMAGIC
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        ByteBuffer opt = ByteBuffer.allocate(4 + 16 + name.length);
        opt.putInt(3); // NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES
        opt.putLong(0x49484156454F5054L).putInt(1).putInt(name.length).put(name); // IHAVEOPT, NBD_OPT_EXPORT_NAME
        opt.flip();
        while (opt.hasRemaining()) {
            ch.write(opt);
        }
        ByteBuffer reply = ByteBuffer.allocate(10); // size, transmission flags
        while (reply.hasRemaining()) {
            if (ch.read(reply) < 0) {
                throw new IOException("closed before the export was granted");
            }
        }
        assertEquals(size, reply.getLong(0));
        return ch;
    }

    @Test
    void removeIsRefusedWhileAClientIsConnectedAndForceDisconnectsIt() throws Exception {
        startDaemon(Map.of());
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("busy")).status());
        try (SocketChannel client = connectAndHold("busy")) {
            await(() -> {
                try {
                    return curl("GET", "/api/v1/exports/busy", null).body().get("clients").asInt() == 1;
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }, "the client to be counted");
            StrataProcess.Run refused = ctl("remove", "busy");
            assertEquals(1, refused.code());
            assertTrue(refused.err().contains("has 1 client(s) connected") && refused.err().contains("HTTP 409"), refused.err());
            assertEquals(List.of("busy"), names());

            StrataProcess.Run forced = ctl("remove", "busy", "--force");
            assertEquals(0, forced.code(), forced.err());
            // The client sees its connection end (EOF), not a hang.
            int n = CompletableFuture.supplyAsync(() -> {
                try {
                    return client.read(ByteBuffer.allocate(1));
                } catch (IOException e) {
                    return -2;
                }
            }).get(20, TimeUnit.SECONDS);
            assertTrue(n < 0, "the forced remove closed the client's connection: " + n);
        }
        assertEquals(List.of(), names());
        daemon.awaitLog("export 'busy' removed (1 client(s) disconnected)");
    }

    private long count(String dir) throws IOException {
        try (var s = Files.list(Path.of("/proc", String.valueOf(daemon.process.pid()), dir))) {
            return s.filter(DaemonIT::notASharedPoolThread).count();
        }
    }

    /**
     * Threads of the pools every export shares, bounded whatever the number of exports and ended
     * after a minute idle (the NBD loaders, Jetty's control threads, the JIT's compiler threads),
     * are not an export's: an export's own threads (its vhost-user acceptor, its clients'
     * connections) must go with it. A task's comm is its thread name, cut at 15 bytes.
     */
    private static boolean notASharedPoolThread(Path entry) {
        Path comm = entry.resolve("comm");
        if (!entry.getParent().getFileName().toString().equals("task")) {
            return true;
        }
        try {
            String name = Files.readString(comm).strip();
            return !(name.startsWith("nbd-load-") || name.startsWith("control-") || name.contains("CompilerThre"));
        } catch (IOException e) {
            return false; // the thread ended while we looked
        }
    }

    @Test
    void removingExportsFreesTheirFilesThreadsAndMemory() throws Exception {
        startDaemon(Map.of());
        // One round first: classes, Jetty's threads and the NBD loader pool exist from then on.
        round(1, true);
        round(1, false);
        long fds = count("fd");
        long threads = count("task");
        round(8, true);
        long fdsServing = count("fd");
        long threadsServing = count("task");
        assertTrue(fdsServing >= fds + 8 * 2, "8 exports hold a bootstrap and a blob each, 4 vhost-user a socket: " + fds + " -> " + fdsServing);
        assertTrue(threadsServing >= threads + 4, "each vhost-user socket has its accept thread: " + threads + " -> " + threadsServing);
        assertTrue(curl("GET", "/api/v1/stats", null).body().get("cache").get("resident_bytes").asLong() > 0);
        round(8, false);
        await(() -> {
            try {
                return count("fd") <= fds && count("task") <= threads + 1;
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }, "files and threads back to before the exports (fds " + fds + ", threads " + threads + ")");
        assertEquals(0, curl("GET", "/api/v1/stats", null).body().get("cache").get("resident_bytes").asLong(), "cache memory freed");
    }

    /** Adds (with a read of each through its transport's listener) or removes n exports: half NBD, half vhost-user. */
    private void round(int n, boolean add) throws Exception {
        for (int i = 0; i < n; i++) {
            boolean nbd = i % 2 == 0 || n == 1;
            String name = nbd ? "r" + i : tmp.resolve("v" + i + ".sock").toString();
            if (add) {
                String body = nbd ? nbdExport(name)
                        : "{\"kind\":\"vhost-user\",\"socket\":\"" + name + "\",\"source\":\"" + Fixtures.nydusBootstrap() + "\",\"blob_dir\":\""
                                + Fixtures.nydusDir() + "\",\"queues\":1}";
                Http h = curl("POST", "/api/v1/exports", body);
                assertEquals(201, h.status(), h.body().toString());
                if (nbd) {
                    HostTools.run(List.of("nbdcopy", uri(name), "null:"));
                    awaitNoClients(name); // else its removal may be refused: it still has a client
                }
            } else {
                Http h = curl("DELETE", "/api/v1/exports?name=" + java.net.URLEncoder.encode(name, StandardCharsets.UTF_8), null);
                assertEquals(200, h.status(), h.body().toString());
            }
        }
    }

    @Test
    void sighupAppliesTheConfigsDifference() throws Exception {
        Path config = tmp.resolve("exports.json");
        Path raw = tmp.resolve("small.raw");
        Files.write(raw, new byte[4096]);
        Files.writeString(config, "{\"exports\": [" + nbdExport("keep") + ", " + nbdExport("drop") + ", " + nbdExport("change") + "]}");
        startDaemon(Map.of(), "--config", config.toString());
        assertEquals(List.of("keep", "drop", "change"), names());
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("mine")).status(), "an export of the API's, not the file's");
        try (SocketChannel keepClient = connectAndHold("keep")) {
            Files.writeString(config, "{\"exports\": [" + nbdExport("keep") + ", {\"kind\":\"nbd\",\"name\":\"change\",\"raw\":\"" + raw + "\"}, "
                    + nbdExport("new") + "]}");
            HostTools.run(List.of("kill", "-HUP", String.valueOf(daemon.process.pid())));
            daemon.awaitLog("SIGHUP: config " + config + ": 1 added, 1 removed, 1 replaced, 1 unchanged");
            assertEquals(List.of("keep", "mine", "change", "new"), names());
            assertEquals("4096", HostTools.run(List.of("nbdinfo", "--size", uri("change"))).strip(), "the changed export serves its new source");
            awaitNoClients("change"); // nbdinfo's connection, counted closed a moment after it exits: changeClient's is its one client below
            assertEquals(1, curl("GET", "/api/v1/exports/keep", null).body().get("clients").asInt(), "the unchanged export kept its client");
            assertTrue(keepClient.isConnected());

            // A changed entry that cannot be served (its raw image is missing; a file that is not a
            // RAFS image) and an entry that is not valid (no kind) leave the exports of those names
            // serving, their clients connected: the new image is opened before the old export goes.
            try (SocketChannel changeClient = connectAndHold("change", 4096)) {
                Files.writeString(config, "{\"exports\": [{\"kind\":\"nbd\",\"name\":\"keep\",\"raw\":\"" + tmp.resolve("missing.raw") + "\"}, "
                        + "{\"kind\":\"nbd\",\"name\":\"change\",\"source\":\"" + raw + "\"}, {\"name\":\"new\"}]}");
                HostTools.run(List.of("kill", "-HUP", String.valueOf(daemon.process.pid())));
                daemon.awaitLog("SIGHUP: config " + config + ": 0 added, 0 removed, 0 replaced, 3 unchanged, 3 problem(s)");
                assertEquals(List.of("keep", "mine", "change", "new"), names());
                assertEquals(1, curl("GET", "/api/v1/exports/keep", null).body().get("clients").asInt(), "its client stayed");
                assertEquals(1, curl("GET", "/api/v1/exports/change", null).body().get("clients").asInt(), "its client stayed");
                assertEquals("4096", HostTools.run(List.of("nbdinfo", "--size", uri("change"))).strip(), "change serves its raw image still");
                assertTrue(daemon.log().contains("keep: raw image not found: " + tmp.resolve("missing.raw") + "; serving its previous entry still"),
                        daemon.log());
                assertTrue(daemon.log().contains("change: cannot serve " + raw), daemon.log());
            }

            // A config that does not parse changes nothing.
            Files.writeString(config, "{\"exports\": [ oops");
            HostTools.run(List.of("kill", "-HUP", String.valueOf(daemon.process.pid())));
            daemon.awaitLog("the exports stay as they are");
            assertEquals(List.of("keep", "mine", "change", "new"), names());
        }
    }

    /**
     * {@code strata ctl reload} (strata.service's ExecReload) applies the config as SIGHUP does and
     * says how it went: exit 0 and what changed; exit 1 and why for a file that does not parse
     * (nothing changes) or an entry that cannot be served (the rest apply), so that {@code systemctl
     * reload} fails for them instead of succeeding with only a line in the log.
     */
    @Test
    void ctlReloadAppliesTheConfigAndFailsWhenItCannot() throws Exception {
        Path config = tmp.resolve("exports.json");
        Files.writeString(config, "{\"exports\": [" + nbdExport("a") + ", " + nbdExport("b") + "]}");
        startDaemon(Map.of(), "--config", config.toString());
        assertEquals(List.of("a", "b"), names());

        Files.writeString(config, "{\"exports\": [" + nbdExport("a") + ", " + nbdExport("c") + "]}");
        StrataProcess.Run ok = ctl("reload");
        assertEquals(0, ok.code(), ok.err());
        assertEquals("config " + config + ": 1 added, 1 removed, 0 replaced, 1 unchanged\n", ok.out());
        assertEquals(List.of("a", "c"), names());

        Files.writeString(config, "{\"exports\": [ oops");
        StrataProcess.Run unparsable = ctl("reload");
        assertEquals(1, unparsable.code(), unparsable.err());
        assertEquals(1, unparsable.err().strip().lines().count(), unparsable.err());
        assertTrue(unparsable.err().startsWith("strata ctl reload: ") && unparsable.err().contains(config.toString())
                && unparsable.err().contains("the exports stay as they are") && unparsable.err().endsWith("(HTTP 422)\n"), unparsable.err());
        assertEquals(List.of("a", "c"), names(), "nothing changed");
        // The shipped strata.service's ExecReload= is this command: systemctl reload fails with it.
        String execReload = Files.readString(StrataProcess.home().resolve("packaging/systemd/strata.service"), StandardCharsets.UTF_8)
                .lines().filter(l -> l.startsWith("ExecReload=")).findFirst().orElseThrow().substring("ExecReload=".length());
        assertTrue(execReload.startsWith("/usr/bin/strata ctl --control " + CtlCommand.DEFAULT_CONTROL + " "), execReload);
        List<String> unitCommand = List.of(execReload.replace("/usr/bin/strata ctl --control " + CtlCommand.DEFAULT_CONTROL + " ", "").split("\\s+"));
        StrataProcess.Run asSystemdRunsIt = ctl(unitCommand.toArray(String[]::new));
        assertEquals(1, asSystemdRunsIt.code(), unitCommand + ": " + asSystemdRunsIt.err());

        Path missing = tmp.resolve("missing.raw");
        Files.writeString(config, "{\"exports\": [" + nbdExport("a") + ", {\"kind\":\"nbd\",\"name\":\"d\",\"raw\":\"" + missing + "\"}]}");
        StrataProcess.Run partly = ctl("reload");
        assertEquals(1, partly.code(), partly.err());
        assertEquals(1, partly.err().strip().lines().count(), partly.err());
        assertTrue(partly.err().startsWith("strata ctl reload: config " + config + ": 0 added, 1 removed, 0 replaced, 1 unchanged, 1 problem(s): d: ")
                && partly.err().contains("raw image not found: " + missing) && partly.err().endsWith("(HTTP 409)\n"), partly.err());
        assertEquals(List.of("a"), names(), "what could be applied was: c is gone");

        // A vhost-user export whose entry turns invalid (a misspelt kind; its socket spelt otherwise and
        // queues out of range) goes on serving: the entry is known by its socket, however spelt.
        Path vm = tmp.resolve("vm1.sock");
        String vhost = "{\"kind\":\"vhost-user\",\"socket\":\"" + vm + "\",\"source\":\"" + Fixtures.nydusBootstrap()
                + "\",\"blob_dir\":\"" + Fixtures.nydusDir() + "\",\"queues\":2}";
        Files.writeString(config, "{\"exports\": [" + nbdExport("a") + ", " + vhost + "]}");
        assertEquals(0, ctl("reload").code());
        assertEquals(List.of("a", vm.toString()), names());
        for (String broken : new String[] {vhost.replace("\"vhost-user\"", "\"vhost_user\""),
                vhost.replace(vm.toString(), vm.getParent() + "//" + vm.getFileName()).replace("\"queues\":2", "\"queues\":300")}) {
            Files.writeString(config, "{\"exports\": [" + nbdExport("a") + ", " + broken + "]}");
            StrataProcess.Run r = ctl("reload");
            assertEquals(1, r.code(), r.err());
            assertTrue(r.err().contains("0 added, 0 removed, 0 replaced, 2 unchanged, 1 problem(s)"), broken + ": " + r.err());
            assertEquals(List.of("a", vm.toString()), names(), broken + ": the vhost-user export still serves");
        }

        // An export added through the API and then listed in the file as it is becomes the file's.
        Files.writeString(config, "{\"exports\": [" + nbdExport("a") + "]}");
        assertEquals(0, ctl("reload").code(), "the vhost-user export is removed: the file no longer lists it");
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("api")).status());
        Files.writeString(config, "{\"exports\": [" + nbdExport("a") + ", " + nbdExport("api") + "]}");
        StrataProcess.Run adopted = ctl("reload");
        assertEquals(0, adopted.code(), adopted.err());
        assertEquals("config " + config + ": 0 added, 0 removed, 0 replaced, 2 unchanged\n", adopted.out());
        assertTrue(curl("GET", "/api/v1/exports/api", null).body().get("from_config").asBoolean());
        Files.writeString(config, "{\"exports\": [" + nbdExport("a") + "]}");
        assertEquals(0, ctl("reload").code());
        assertEquals(List.of("a"), names(), "the file manages it now: gone from the file, gone");

        assertEquals(405, curl("GET", "/api/v1/reload", null).status());
        daemon.close();

        // A daemon without --config has nothing to re-read: that is no failure.
        startDaemon(Map.of());
        Http none = curl("POST", "/api/v1/reload", null);
        assertEquals(200, none.status(), none.body().toString());
        assertTrue(none.body().get("config").isNull() && none.body().get("summary").asText().contains("no --config"), none.body().toString());
        StrataProcess.Run nothing = ctl("reload");
        assertEquals(0, nothing.code(), nothing.err());
    }

    /** Another user's ctl is refused by the socket's mode (0600) and told why, not asked whether the daemon runs. */
    @Test
    void ctlAsAnotherUserIsToldTheSocketIsTheOwners() throws Exception {
        HostTools.requireTool("setpriv", "util-linux");
        HostTools.require("root".equals(System.getProperty("user.name")), "running ctl as another user needs root");
        startDaemon(Map.of());
        ProcessBuilder pb = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                StrataProcess.home().resolve("bin/strata").toString(), "ctl", "--control", control.toString(), "list");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), out);
        assertEquals(1, out.strip().lines().count(), out);
        assertTrue(out.contains("Permission denied") && out.contains("the control socket is for its owner"), out);
    }

    @Test
    void daemonNotifiesSystemdWhenServing() throws Exception {
        HostTools.requireTool("python3", "python3");
        Path notify = tmp.resolve("notify");
        Path received = tmp.resolve("received");
        Process receiver = new ProcessBuilder("python3", "-c", SystemdIT.RECEIVER, notify.toString()).redirectErrorStream(true)
                .redirectOutput(received.toFile()).start();
        try {
            StrataProcess.awaitText(received, "bound", receiver);
            Path config = tmp.resolve("exports.json");
            Files.writeString(config, "{\"exports\": [" + nbdExport("a") + "]}");
            startDaemon(Map.of("NOTIFY_SOCKET", notify.toString()), "--config", config.toString());
            StrataProcess.awaitText(received, "READY=1", daemon.process);
            // READY=1 comes once the config's exports serve and the control socket answers.
            assertEquals(String.valueOf(FIXTURE_SIZE), HostTools.run(List.of("nbdinfo", "--size", uri("a"))).strip());
            daemon.close();
            assertTrue(receiver.waitFor(60, TimeUnit.SECONDS), "no STOPPING=1: " + Files.readString(received));
            // The config's export opens after an extension of systemd's start timeout (a slow image may take minutes).
            assertEquals(List.of("bound", "EXTEND_TIMEOUT_USEC=60000000|STATUS=opening 1 export(s) from the config",
                    "READY=1|STATUS=serving 1 export(s); control on " + control, "STOPPING=1"), Files.readAllLines(received));
            assertFalse(Files.exists(control), "the control socket is removed on stop");
        } finally {
            receiver.destroyForcibly();
            receiver.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void eachExportsMetricsComeAndGoWithIt() throws Exception {
        HostTools.requireTool("promtool", "prometheus");
        startDaemon(Map.of(), "--metrics-listen", "127.0.0.1:0");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("Prometheus endpoint on http://127\\.0\\.0\\.1:(\\d+)/metrics")
                .matcher(daemon.awaitLog("Prometheus endpoint on"));
        assertTrue(m.find(), daemon.log());
        String url = "http://127.0.0.1:" + m.group(1) + "/metrics";
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("a")).status());
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("b")).status());
        HostTools.run(List.of("nbdcopy", uri("a"), "null:"));
        Path scrape = tmp.resolve("scrape.txt");
        // The server counts nbdcopy's connections closed a moment after it exits: scrape once they are.
        MetricsScrape.scrapeWhen(url, scrape, x -> x.getOrDefault("strata_nbd_server_connections_open", -1.0) == 0
                && x.getOrDefault("strata_connections_open{export=\"a\",transport=\"nbd\"}", -1.0) == 0, daemon.process::isAlive);
        String text = Files.readString(scrape);
        HostTools.Outcome check = HostTools.execute(List.of("sh", "-c", "promtool check metrics < " + scrape));
        assertEquals(0, check.exitCode(), "promtool check metrics: " + check.output());
        assertEquals("", check.output().strip(), "promtool's findings");
        // a was read (its chunks loaded into its share of the one cache), b only opened: each has series of its own.
        assertTrue(sample(text, "strata_requests_total{export=\"a\",transport=\"nbd\",type=\"read\"}") > 0, text);
        assertTrue(sample(text, "strata_chunk_cache_misses_total{export=\"a\"}") > 0, text);
        assertEquals(0, sample(text, "strata_chunk_cache_misses_total{export=\"b\"}"), text);
        assertEquals(0, sample(text, "strata_requests_total{export=\"b\",transport=\"nbd\",type=\"read\"}"), text);
        // The NBD listener's own series, as serve nbd has them (the daemon had none).
        assertEquals(0, sample(text, "strata_nbd_server_connections_open"), text);
        assertEquals(0, sample(text, "strata_nbd_server_connections_refused_total"), text);
        assertEquals(200, curl("DELETE", "/api/v1/exports/b", null).status());
        HostTools.run(List.of("curl", "-sSf", "--max-time", "30", "-o", scrape.toString(), url));
        text = Files.readString(scrape);
        assertFalse(text.contains("export=\"b\""), "a removed export's series leave the scrape: " + text);
        assertTrue(text.contains("export=\"a\""), text);
    }

    /** The test: 50 exports added and removed while nbdcopy reads another one, again and again; every copy is right. */
    @Test
    void fiftyExportsComeAndGoWhileNbdcopyReadsAnother() throws Exception {
        Path exported = tmp.resolve("export.raw");
        StrataProcess.Run e = StrataProcess.run(tmp, "export", Fixtures.nydusBootstrap().toString(), "-D", Fixtures.nydusDir().toString(),
                "-o", exported.toString());
        assertEquals(0, e.code(), e.err());
        String want = sha256(Files.readAllBytes(exported));
        startDaemon(Map.of(), "--cache-size", "4M"); // small: the churn's exports evict the copied one's chunks
        assertEquals(201, curl("POST", "/api/v1/exports", nbdExport("steady")).status());

        AtomicBoolean churning = new AtomicBoolean(true);
        CompletableFuture<Integer> copies = CompletableFuture.supplyAsync(() -> {
            int n = 0;
            try {
                while (churning.get() || n < 3) {
                    Path out = tmp.resolve("copy.raw");
                    Files.deleteIfExists(out);
                    // Small requests, one at a time: each copy takes many round trips across the churn.
                    HostTools.run(List.of("nbdcopy", "--connections=1", "--requests=1", "--request-size=4096", uri("steady"), out.toString()));
                    assertEquals(want, sha256(Files.readAllBytes(out)), "copy " + n + " differs from strata export's output");
                    n++;
                }
            } catch (IOException ex) {
                throw new RuntimeException(ex);
            }
            return n;
        });
        try {
            for (int i = 0; i < 50; i++) {
                Http h = curl("POST", "/api/v1/exports", nbdExport("churn" + i));
                assertEquals(201, h.status(), h.body().toString());
                if (i % 5 == 0) {
                    HostTools.run(List.of("nbdcopy", uri("churn" + i), "null:")); // some churned exports are read too
                }
            }
            assertEquals(51, names().size());
            for (int i = 0; i < 50; i++) {
                Http h = curl("DELETE", "/api/v1/exports/churn" + i, null);
                assertEquals(200, h.status(), h.body().toString());
            }
        } finally {
            churning.set(false);
        }
        int n = copies.get(120, TimeUnit.SECONDS);
        assertTrue(n >= 3, "copies made: " + n);
        assertEquals(List.of("steady"), names());
    }

    /** The value of the scrape's series {@code series} (name and labels as the text format writes them). */
    private static double sample(String scrape, String series) {
        return scrape.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1).strip()))
                .findFirst().orElseThrow(() -> new AssertionError("no " + series + " in the scrape:\n" + scrape));
    }

    private static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
