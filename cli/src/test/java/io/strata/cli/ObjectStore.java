package io.strata.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A second HTTP host for redirect tests: an object store on another 127.0.0.1 port serving
 * {@code GET /blobs/sha256:HEX?sig=...} straight from a docker-registry's filesystem storage (as S3
 * serves the blobs a registry redirects to), with {@code Range} (206 + Content-Range) or whole (200).
 * It records every request's Authorization and Range headers, so a test can show that the client
 * never sent the registry's credentials here. A real HTTP peer (com.sun.net.httpserver).
 */
final class ObjectStore implements AutoCloseable {
    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");
    private static final Pattern PATH = Pattern.compile("/blobs/sha256:([0-9a-f]{64})");

    /** One request the store saw. */
    record Seen(String method, String path, String authorization, String range) {
    }

    private final Path registryStorage;
    private final HttpServer server;
    private final ExecutorService executor;
    private final List<Seen> seen = new ArrayList<>();

    /** Serves the blobs of the registry whose filesystem storage root is {@code registryStorage}. */
    ObjectStore(Path registryStorage) throws IOException {
        this.registryStorage = registryStorage;
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        executor = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "object-store");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.createContext("/", this::handle);
        server.start();
    }

    /** Where a blob lives in this store: a signed-looking URL, as a registry's redirect would give. */
    URI uri(String digest) {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/blobs/" + digest + "?sig=strata-test");
    }

    List<Seen> seen() {
        synchronized (seen) {
            return List.copyOf(seen);
        }
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            try (InputStream in = ex.getRequestBody()) {
                in.readAllBytes();
            }
            String range = ex.getRequestHeaders().getFirst("Range");
            synchronized (seen) {
                seen.add(new Seen(ex.getRequestMethod(), ex.getRequestURI().getPath(), ex.getRequestHeaders().getFirst("Authorization"),
                        range));
            }
            Matcher p = PATH.matcher(ex.getRequestURI().getPath());
            if (!ex.getRequestMethod().equals("GET") || !p.matches()) {
                ex.sendResponseHeaders(404, -1);
                return;
            }
            String hex = p.group(1);
            Path data = registryStorage.resolve("docker/registry/v2/blobs/sha256/" + hex.substring(0, 2) + "/" + hex + "/data");
            if (!Files.isRegularFile(data)) {
                ex.sendResponseHeaders(404, -1);
                return;
            }
            try (FileChannel ch = FileChannel.open(data)) {
                long size = ch.size();
                long first = 0;
                long last = size - 1;
                int status = 200;
                Matcher m = range == null ? null : RANGE.matcher(range);
                if (m != null && m.matches()) {
                    first = Long.parseLong(m.group(1));
                    last = Math.min(Long.parseLong(m.group(2)), size - 1);
                    if (first > last) {
                        ex.getResponseHeaders().set("Content-Range", "bytes */" + size);
                        ex.sendResponseHeaders(416, -1);
                        return;
                    }
                    status = 206;
                    ex.getResponseHeaders().set("Content-Range", "bytes " + first + "-" + last + "/" + size);
                }
                ByteBuffer body = ByteBuffer.allocate(Math.toIntExact(last - first + 1));
                while (body.hasRemaining() && ch.read(body, first + body.position()) > 0) {
                    // positional reads until the range is in
                }
                ex.sendResponseHeaders(status, body.capacity());
                ex.getResponseBody().write(body.array());
            }
        }
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
        try {
            executor.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
