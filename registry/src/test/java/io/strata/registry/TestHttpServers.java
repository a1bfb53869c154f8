package io.strata.registry;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Small HTTP servers on 127.0.0.1 (com.sun.net.httpserver) that tests make registries, object stores,
 * token realms and proxies of; {@link #close} stops them all. Each request's body is read before the
 * handler runs, and the exchange is closed after it.
 */
final class TestHttpServers implements AutoCloseable {
    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-(\\d+)");

    interface Handler {
        void handle(HttpExchange ex) throws Exception;
    }

    private final List<HttpServer> servers = Collections.synchronizedList(new ArrayList<>());
    private final List<ExecutorService> executors = Collections.synchronizedList(new ArrayList<>());

    HttpServer start(Handler h) throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        ExecutorService ex = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "test-http");
            t.setDaemon(true);
            return t;
        });
        s.setExecutor(ex);
        s.createContext("/", exchange -> {
            try (exchange) {
                try (InputStream in = exchange.getRequestBody()) {
                    in.readAllBytes();
                }
                h.handle(exchange);
            } catch (IOException e) {
                throw e;
            } catch (Exception e) {
                throw new IOException(e);
            }
        });
        s.start();
        servers.add(s);
        executors.add(ex);
        return s;
    }

    @Override
    public void close() {
        servers.forEach(s -> s.stop(0));
        executors.forEach(ExecutorService::shutdownNow);
    }

    /** Answers a Range request from {@code blob} with 206 and Content-Range, or the whole blob with 200. */
    static void serveRange(HttpExchange ex, byte[] blob) throws IOException {
        Matcher m = RANGE.matcher(String.valueOf(ex.getRequestHeaders().getFirst("Range")));
        if (!m.matches()) {
            send(ex, 200, blob);
            return;
        }
        int first = Integer.parseInt(m.group(1));
        int last = Math.min(Integer.parseInt(m.group(2)), blob.length - 1);
        ex.getResponseHeaders().set("Content-Range", "bytes " + first + "-" + last + "/" + blob.length);
        send(ex, 206, Arrays.copyOfRange(blob, first, last + 1));
    }

    static void send(HttpExchange ex, int status, byte[] body) throws IOException {
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            ex.getResponseBody().write(body);
        }
    }

    static String port(HttpServer s) {
        return Integer.toString(s.getAddress().getPort());
    }
}
