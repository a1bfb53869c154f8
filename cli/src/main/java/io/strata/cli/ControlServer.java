package io.strata.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.strata.core.chunk.CacheStats;
import io.strata.nbd.ServerMetrics;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.unixdomain.server.UnixDomainServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * The daemon's control API: HTTP/1.1 with JSON bodies on a unix socket (as nydusd's and Docker's),
 * served by Jetty. Every answer is JSON; every refusal is {@code {"error": "..."}} with a 4xx
 * status (5xx only for the daemon's own failures), and no request can stop the daemon.
 * <pre>
 * GET    /api/v1/exports                 the exports: name, kind, source, size, clients, cache_bytes,
 *                                       requests, bytes_read, errors
 * POST   /api/v1/exports                 add one ({@link ExportSpec} as the body): 201 and the export
 * GET    /api/v1/exports/NAME            one export
 * DELETE /api/v1/exports/NAME[?force=true]   remove one; also DELETE /api/v1/exports?name=NAME (any name, a socket path too):
 *                                       200, or 202 when a forced remove's client is still in a read (the device closes after it)
 * GET    /api/v1/stats                   the shared chunk cache, the NBD server's counters, the process's threads and memory
 * POST   /api/v1/reload                  re-read --config and apply it (as SIGHUP): 200 and what changed; 422 for a
 *                                       file that does not parse (nothing changed), 409 for entries that could not be applied
 * </pre>
 */
final class ControlServer implements AutoCloseable {
    static final String PREFIX = "/api/v1/";
    /** Control bodies are a few hundred bytes; anything far larger is refused before it is buffered. */
    private static final int MAX_BODY = 64 * 1024;

    private final Daemon daemon;
    private final Path socket;
    private final Server server;
    private final ConfigReload reload;
    private final ObjectMapper json = ExportSpec.strictJson().enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

    private ControlServer(Daemon daemon, Path socket, Server server, ConfigReload reload) {
        this.daemon = daemon;
        this.socket = socket;
        this.server = server;
        this.reload = reload;
    }

    /**
     * Listens on {@code socket}, mode 0600. Jetty binds the path it is given, and bind(2) creates
     * the file with 0777 &amp; ~umask; so, as {@link io.strata.core.os.UnixSocketFiles#bind} does,
     * it binds inside a fresh 0700 directory, the file is given 0600 and renamed into place: the
     * socket is never reachable by others, not even for an instant.
     */
    static ControlServer start(Daemon daemon, Path socket, ConfigReload reload) throws Exception {
        io.strata.core.os.UnixSocketFiles.removeStale(socket);
        Path dir = io.strata.core.os.UnixSocketFiles.stagingDirectory(socket, ".c");
        Path staging = dir.resolve("s");
        // Threads end after 60 s idle. A request may wait up to a registry deadline (an add by reference)
        // or 30 s for its body: with a handful of threads, four such requests stalled list and remove.
        QueuedThreadPool pool = new QueuedThreadPool(64, 1, 60_000);
        pool.setName("control");
        pool.setReservedThreads(0);
        Server server = new Server(pool);
        UnixDomainServerConnector connector = new UnixDomainServerConnector(server, 1, 1, new HttpConnectionFactory());
        connector.setUnixDomainPath(staging);
        connector.setIdleTimeout(30_000);
        server.addConnector(connector);
        ControlServer control = new ControlServer(daemon, socket, server, reload);
        server.setHandler(control.new Routes());
        server.setErrorHandler(control::jettyError);
        try {
            server.start();
            Files.setPosixFilePermissions(staging, PosixFilePermissions.fromString("rw-------"));
            Files.move(staging, socket, StandardCopyOption.ATOMIC_MOVE);
        } catch (Exception e) {
            server.stop();
            throw e;
        } finally {
            Files.deleteIfExists(staging);
            Files.deleteIfExists(dir);
        }
        CommandLoggers.serve().info("control: listening on {}", socket);
        return control;
    }

    @Override
    public void close() throws Exception {
        server.stop();
        Files.deleteIfExists(socket);
    }

    /** The one handler: routes by method and path, turns every refusal into a JSON error. */
    private final class Routes extends Handler.Abstract {
        @Override
        public boolean handle(Request request, Response response, Callback callback) {
            int status;
            Object body;
            try {
                Answer a = route(request);
                status = a.status;
                body = a.body;
            } catch (ControlException e) {
                status = e.status;
                body = error(e.getMessage());
                if (e.badArgument) {
                    ((ObjectNode) body).put("bad_argument", true);
                }
            } catch (RuntimeException e) {
                // A bug in a handler: this request fails, the daemon serves on.
                CommandLoggers.serve().error("control: {} {} failed", request.getMethod(), request.getHttpURI().getPath(), e);
                status = 500;
                body = error("internal error: " + e);
            }
            byte[] bytes;
            try {
                bytes = json.writerWithDefaultPrettyPrinter().writeValueAsBytes(body);
            } catch (JsonProcessingException e) {
                status = 500;
                bytes = "{\"error\":\"cannot write the answer\"}".getBytes(StandardCharsets.UTF_8);
            }
            byte[] out = java.util.Arrays.copyOf(bytes, bytes.length + 1);
            out[bytes.length] = '\n';
            response.setStatus(status);
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            response.getHeaders().put(HttpHeader.CONTENT_LENGTH, out.length);
            response.write(true, ByteBuffer.wrap(out), callback);
            return true;
        }
    }

    /**
     * Requests Jetty itself refuses (a request line or header that does not parse, a path it finds
     * ambiguous) get a JSON error like any other, not Jetty's HTML page.
     */
    private boolean jettyError(Request request, Response response, Callback callback) {
        Object status = request.getAttribute(org.eclipse.jetty.server.handler.ErrorHandler.ERROR_STATUS);
        Object message = request.getAttribute(org.eclipse.jetty.server.handler.ErrorHandler.ERROR_MESSAGE);
        int code = status instanceof Integer i ? i : response.getStatus();
        byte[] out;
        try {
            out = (json.writeValueAsString(error("bad request" + (message != null ? ": " + message : "") + " (HTTP " + code + ")")) + "\n")
                    .getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            out = "{\"error\":\"bad request\"}\n".getBytes(StandardCharsets.UTF_8);
        }
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, out.length);
        response.write(true, ByteBuffer.wrap(out), callback);
        return true;
    }

    private record Answer(int status, Object body) {
    }

    private Answer route(Request request) throws ControlException {
        String path = request.getHttpURI().getPath();
        String method = request.getMethod();
        if (path == null || !path.startsWith(PREFIX)) {
            throw new ControlException(404, "no such endpoint: " + path + " (the API is under " + PREFIX + ")");
        }
        String rest = path.substring(PREFIX.length());
        Fields query = Request.extractQueryParameters(request);
        if (rest.equals("exports")) {
            return switch (method) {
                case "GET" -> query.getValue("name") == null ? new Answer(200, list()) : new Answer(200, describe(named(query.getValue("name"))));
                case "POST" -> new Answer(201, describe(daemon.add(parse(request), false)));
                case "DELETE" -> {
                    String name = query.getValue("name");
                    if (name == null) {
                        throw ControlException.badRequest("DELETE " + PREFIX + "exports wants ?name=NAME (or use " + PREFIX + "exports/NAME)");
                    }
                    yield remove(name, query);
                }
                default -> throw new ControlException(405, method + " is not allowed on " + path + " (GET, POST, DELETE)");
            };
        }
        if (rest.startsWith("exports/") && rest.length() > "exports/".length()) {
            String name = pathSegment(rest.substring("exports/".length()));
            return switch (method) {
                case "GET" -> new Answer(200, describe(named(name)));
                case "DELETE" -> remove(name, query);
                default -> throw new ControlException(405, method + " is not allowed on " + path + " (GET, DELETE)");
            };
        }
        if (rest.equals("reload")) {
            if (!method.equals("POST")) {
                throw new ControlException(405, method + " is not allowed on " + path + " (POST)");
            }
            return new Answer(200, reload());
        }
        if (rest.equals("stats")) {
            if (!method.equals("GET")) {
                throw new ControlException(405, method + " is not allowed on " + path + " (GET)");
            }
            return new Answer(200, stats());
        }
        throw new ControlException(404, "no such endpoint: " + path);
    }

    /**
     * The export of that name, or 404. Names with a '/' (every vhost-user socket path) are asked for
     * as {@code exports?name=NAME}: Jetty refuses an encoded '/' or an empty segment in a path.
     */
    private DaemonExport named(String name) throws ControlException {
        DaemonExport e = daemon.find(name);
        if (e == null) {
            throw new ControlException(404, "no export '" + name + "'");
        }
        return e;
    }

    private Answer remove(String name, Fields query) throws ControlException {
        String force = query.getValue("force");
        if (force != null && !force.equals("true") && !force.equals("false") && !force.equals("1") && !force.equals("0")) {
            throw ControlException.badRequest("force must be true or false, got '" + force + "'");
        }
        boolean closed = daemon.remove(name, "true".equals(force) || "1".equals(force));
        ObjectNode o = json.createObjectNode();
        o.put("removed", name);
        if (!closed) {
            // Removed for clients; a disconnected client (or vhost-user session) is still in a read, and
            // the device closes when it ends.
            o.put("device", "closing when its disconnected clients' reads end");
            return new Answer(202, o);
        }
        return new Answer(200, o);
    }

    private ExportSpec parse(Request request) throws ControlException {
        byte[] body;
        try {
            body = Content.Source.asByteArrayAsync(request, MAX_BODY).get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw new ControlException(413, "the body is larger than " + MAX_BODY + " bytes, or was cut short");
        } catch (TimeoutException e) {
            throw new ControlException(408, "the body did not arrive within 30 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ControlException(503, "the daemon is stopping");
        }
        if (body.length == 0) {
            throw ControlException.badRequest("the body is empty: send the export as JSON, e.g. {\"kind\":\"nbd\",\"name\":\"a\",\"source\":\"/images/a/bootstrap\"}");
        }
        ExportSpec spec;
        try {
            spec = json.readValue(body, ExportSpec.class);
        } catch (com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException e) {
            throw ControlException.badRequest("unknown field '" + e.getPropertyName()
                    + "' (an export has kind, name, source, raw, blob_dir, socket, queues)");
        } catch (IOException e) {
            String m = e instanceof JsonProcessingException jp ? jp.getOriginalMessage() : e.getMessage();
            throw ControlException.badRequest("malformed export JSON: " + m);
        }
        if (spec == null) {
            throw ControlException.badRequest("the body is JSON null, not an export object");
        }
        return spec;
    }

    private ArrayNode list() {
        ArrayNode a = json.createArrayNode();
        for (DaemonExport e : daemon.exports()) {
            a.add(describe(e));
        }
        return a;
    }

    private ObjectNode describe(DaemonExport e) {
        ObjectNode o = json.valueToTree(e.spec);
        o.put("name", e.name());
        o.put("size", e.device.size());
        o.put("clients", daemon.clients(e));
        o.put("cache_bytes", e.cacheBytes());
        io.strata.core.metrics.ExportCounters served = e.counters();
        o.put("requests", served.requests());
        o.put("bytes_read", served.bytes(io.strata.core.metrics.RequestType.READ));
        o.put("errors", served.errors());
        o.put("description", e.device.describe());
        o.put("from_config", e.fromConfig);
        return o;
    }

    /**
     * POST reload: the --config file read again and applied, as SIGHUP does, answered with the outcome:
     * 422 for a file that cannot be read or does not parse (nothing changed), 409 when entries could
     * not be applied (the rest were), 200 when it all applied or there is no --config to read.
     */
    private ObjectNode reload() throws ControlException {
        ObjectNode o = json.createObjectNode();
        Daemon.Applied applied;
        try {
            applied = reload.reload(daemon);
        } catch (IOException e) {
            CommandLoggers.serve().warn("reload: {}; the exports stay as they are", e.getMessage());
            throw new ControlException(422, e.getMessage() + "; the exports stay as they are", false);
        }
        if (applied == null) {
            CommandLoggers.serve().info("reload: no --config to re-read; the exports stay as they are");
            o.putNull("config");
            o.put("summary", "the daemon has no --config to re-read; the exports stay as they are");
            return o;
        }
        String summary = "config " + reload.config() + ": " + applied.summary();
        CommandLoggers.serve().info("reload: {}", summary);
        if (!applied.problems().isEmpty()) {
            throw new ControlException(409, summary + ": " + String.join("; ", applied.problems()), false);
        }
        o.put("config", reload.config().toString());
        o.put("added", applied.added());
        o.put("removed", applied.removed());
        o.put("replaced", applied.replaced());
        o.put("unchanged", applied.unchanged());
        o.put("summary", summary);
        return o;
    }

    private ObjectNode stats() {
        ObjectNode o = json.createObjectNode();
        o.put("exports", daemon.exports().size());
        CacheStats c = daemon.cache().stats();
        ObjectNode cache = o.putObject("cache");
        cache.put("capacity_bytes", c.capacityBytes());
        cache.put("resident_bytes", c.residentBytes());
        cache.put("hits", c.hits());
        cache.put("misses", c.misses());
        cache.put("waits", c.waits());
        cache.put("evictions", c.evictions());
        cache.put("bytes_decompressed", c.bytesDecompressed());
        ServerMetrics.Snapshot n = daemon.nbd().metrics().snapshot();
        ObjectNode nbd = o.putObject("nbd");
        nbd.put("connections_open", n.connectionsOpen());
        nbd.put("connections_total", n.connectionsTotal());
        nbd.put("requests", n.requests());
        nbd.put("bytes_read", n.bytesRead());
        nbd.put("errors", n.errors());
        ObjectNode process = o.putObject("process");
        process.put("threads", Thread.activeCount());
        Runtime rt = Runtime.getRuntime();
        process.put("heap_used_bytes", rt.totalMemory() - rt.freeMemory());
        return o;
    }

    private ObjectNode error(String message) {
        ObjectNode o = json.createObjectNode();
        o.put("error", message);
        return o;
    }

    /**
     * A path segment's percent-escapes decoded (RFC 3986 section 2.1); unlike a form field, a '+'
     * in a path is a plus, not a space: 'DELETE exports/a+b' removed the export 'a b'.
     */
    private static String pathSegment(String raw) throws ControlException {
        try {
            return URLDecoder.decode(raw.replace("+", "%2B"), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw ControlException.badRequest("bad percent-escape in '" + raw + "'");
        }
    }
}
