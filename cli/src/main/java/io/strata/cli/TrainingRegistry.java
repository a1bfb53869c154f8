package io.strata.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A minimal OCI registry in memory, on 127.0.0.1, for {@link CdsTraining}: just enough of the
 * distribution API for {@code strata push} and for serving an image by reference (blob HEAD, POST +
 * PUT monolithic uploads, manifest PUT/GET, blob GET with or without a Range), so that the training
 * run loads the registry client's classes (the JDK's HTTP client, Jackson, the remote blob cache)
 * and the class-data archive holds them. Not a registry for anything else: no auth, no deletes, no
 * chunked uploads, everything kept in memory.
 */
final class TrainingRegistry implements AutoCloseable {
    private static final Pattern BLOB = Pattern.compile("/v2/(.+)/blobs/(sha256:[0-9a-f]{64})");
    private static final Pattern MANIFEST = Pattern.compile("/v2/(.+)/manifests/([^/]+)");
    private static final Pattern UPLOAD = Pattern.compile("/v2/(.+)/blobs/uploads/");
    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");

    private record Manifest(String mediaType, byte[] body) {
    }

    private final HttpServer server;
    private final ExecutorService executor;
    private final Map<String, byte[]> blobs = new ConcurrentHashMap<>();
    private final Map<String, Manifest> manifests = new ConcurrentHashMap<>();
    private final AtomicInteger uploads = new AtomicInteger();

    TrainingRegistry() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        executor = Executors.newFixedThreadPool(4, r -> {
            Thread t = new Thread(r, "cds-training-registry");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.createContext("/", exchange -> {
            try (exchange) {
                handle(exchange);
            }
        });
        server.start();
    }

    /** {@code 127.0.0.1:PORT}: a loopback registry, spoken to over plain HTTP. */
    String address() {
        return "127.0.0.1:" + server.getAddress().getPort();
    }

    private void handle(HttpExchange ex) throws IOException {
        String method = ex.getRequestMethod();
        String path = ex.getRequestURI().getPath();
        byte[] body;
        try (InputStream in = ex.getRequestBody()) {
            body = in.readAllBytes();
        }
        Matcher m;
        if (path.equals("/v2/")) {
            send(ex, 200, "{}".getBytes(), "application/json");
        } else if (method.equals("POST") && (m = UPLOAD.matcher(path)).matches()) {
            ex.getResponseHeaders().set("Location", "/v2/" + m.group(1) + "/blobs/uploads/" + uploads.incrementAndGet());
            send(ex, 202, new byte[0], null);
        } else if (method.equals("PUT") && path.startsWith("/v2/") && path.contains("/blobs/uploads/")) {
            String query = String.valueOf(ex.getRequestURI().getQuery());
            String digest = query.startsWith("digest=") ? query.substring("digest=".length()) : "";
            if (!digest.equals(sha256(body))) {
                send(ex, 400, "{\"errors\":[{\"code\":\"DIGEST_INVALID\"}]}".getBytes(), "application/json");
                return;
            }
            blobs.put(digest, body);
            ex.getResponseHeaders().set("Docker-Content-Digest", digest);
            send(ex, 201, new byte[0], null);
        } else if ((m = BLOB.matcher(path)).matches()) {
            byte[] blob = blobs.get(m.group(2));
            if (blob == null) {
                send(ex, 404, "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}".getBytes(), "application/json");
            } else if (method.equals("HEAD")) {
                ex.getResponseHeaders().set("Content-Length", Long.toString(blob.length));
                ex.sendResponseHeaders(200, -1);
            } else {
                Matcher r = RANGE.matcher(String.valueOf(ex.getRequestHeaders().getFirst("Range")));
                if (r.matches()) {
                    int first = Integer.parseInt(r.group(1));
                    int last = Math.min(Integer.parseInt(r.group(2)), blob.length - 1);
                    ex.getResponseHeaders().set("Content-Range", "bytes " + first + "-" + last + "/" + blob.length);
                    send(ex, 206, java.util.Arrays.copyOfRange(blob, first, last + 1), "application/octet-stream");
                } else {
                    send(ex, 200, blob, "application/octet-stream");
                }
            }
        } else if ((m = MANIFEST.matcher(path)).matches()) {
            String key = m.group(1) + ":" + m.group(2);
            if (method.equals("PUT")) {
                String digest = sha256(body);
                Manifest stored = new Manifest(ex.getRequestHeaders().getFirst("Content-Type"), body);
                manifests.put(key, stored);
                manifests.put(m.group(1) + ":" + digest, stored);
                ex.getResponseHeaders().set("Docker-Content-Digest", digest);
                send(ex, 201, new byte[0], null);
                return;
            }
            Manifest found = manifests.get(key);
            if (found == null) {
                send(ex, 404, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}".getBytes(), "application/json");
            } else {
                ex.getResponseHeaders().set("Docker-Content-Digest", sha256(found.body()));
                send(ex, 200, method.equals("HEAD") ? new byte[0] : found.body(), found.mediaType());
            }
        } else {
            send(ex, 404, new byte[0], null);
        }
    }

    private static void send(HttpExchange ex, int status, byte[] body, String contentType) throws IOException {
        if (contentType != null) {
            ex.getResponseHeaders().set("Content-Type", contentType);
        }
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            ex.getResponseBody().write(body);
        }
    }

    private static String sha256(byte[] data) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
