package io.strata.registry.testing;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A token endpoint as the distribution token spec describes it, for {@link RegistryFixture#bearer}:
 * GET (or, when {@link #refuseGet} is set, only POST with a form) with {@code service} and
 * {@code scope}, optionally credentials (Basic, or username/password in the POST form), answering {@code {"token": ..., "expires_in": N}}
 * (or {@code access_token}, as OAuth2 servers do). Every request is recorded so tests can count token
 * fetches and check what was sent. It is a real HTTP peer on 127.0.0.1, not a mock of the client.
 */
public final class TokenRealm implements AutoCloseable {
    public static final String SERVICE = "strata-test";

    /** One request the realm received. */
    public record TokenRequest(String method, String query, String body, String authorization) {
    }

    private final HttpServer server;
    private final ExecutorService executor;
    private final List<TokenRequest> requests = new ArrayList<>();
    private final AtomicInteger issued = new AtomicInteger();
    /** When each token handed out stops being valid (System.nanoTime()), for a gate that checks tokens. */
    private final java.util.Map<String, Long> expiresAtNanos = new java.util.concurrent.ConcurrentHashMap<>();
    private volatile String requiredAuthorization;
    private volatile String requiredForm;
    private volatile Integer expiresIn = 300;
    private volatile boolean accessTokenField;
    private volatile boolean refuseGet;

    public TokenRealm() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        executor = Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "token-realm");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.createContext("/token", this::handle);
        server.start();
    }

    /** Only these credentials get a token; others get 401. */
    public TokenRealm requireCredentials(String user, String password) {
        requiredAuthorization = "Basic " + Base64.getEncoder()
                .encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        requiredForm = "username=" + URLEncoder.encode(user, StandardCharsets.UTF_8) + "&password="
                + URLEncoder.encode(password, StandardCharsets.UTF_8);
        return this;
    }

    /**
     * Only the OAuth2 refresh_token grant with this token gets a token (an identity token from
     * docker login, as Azure's token service takes it); every GET and other form gets 401.
     */
    public TokenRealm requireRefreshToken(String refreshToken) {
        requiredAuthorization = "no Authorization header is accepted";
        requiredForm = "grant_type=refresh_token&refresh_token=" + URLEncoder.encode(refreshToken, StandardCharsets.UTF_8);
        return this;
    }

    /** The {@code expires_in} to answer with, or null to leave it out (the spec's default is 60 s). */
    public TokenRealm expiresIn(Integer seconds) {
        expiresIn = seconds;
        return this;
    }

    /** Answer {@code access_token} instead of {@code token}. */
    public TokenRealm useAccessTokenField(boolean on) {
        accessTokenField = on;
        return this;
    }

    /** Answer GET with 405, as an OAuth2-only endpoint would, so clients must POST the form. */
    public TokenRealm refuseGet(boolean on) {
        refuseGet = on;
        return this;
    }

    public URI uri() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/token");
    }

    /** How many tokens were handed out. */
    public int tokensIssued() {
        return issued.get();
    }

    /**
     * Whether {@code token} was handed out by this realm and its {@code expires_in} (the spec's 60 s
     * when left out) has not passed: what a registry that checks tokens would accept.
     */
    public boolean isLive(String token) {
        Long at = expiresAtNanos.get(token);
        return at != null && System.nanoTime() - at < 0;
    }

    public List<TokenRequest> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String body;
            try (InputStream in = ex.getRequestBody()) {
                body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            synchronized (requests) {
                requests.add(new TokenRequest(ex.getRequestMethod(), ex.getRequestURI().getRawQuery(), body, auth));
            }
            if (refuseGet && ex.getRequestMethod().equals("GET")) {
                send(ex, 405, "{\"error\":\"method not allowed\"}");
                return;
            }
            String required = requiredAuthorization;
            // OAuth2's password grant (the POST form) carries the credentials in the body instead.
            boolean formOk = ex.getRequestMethod().equals("POST") && requiredForm != null && body.contains(requiredForm);
            if (required != null && !required.equals(auth) && !formOk) {
                send(ex, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad credentials\"}]}");
                return;
            }
            String token = "strata-test-token-" + issued.incrementAndGet();
            StringBuilder json = new StringBuilder("{\"").append(accessTokenField ? "access_token" : "token")
                    .append("\":\"").append(token).append('"');
            Integer exp = expiresIn;
            if (exp != null) {
                json.append(",\"expires_in\":").append(exp);
            }
            expiresAtNanos.put(token, System.nanoTime() + TimeUnit.SECONDS.toNanos(exp == null ? 60 : exp));
            json.append('}');
            send(ex, 200, json.toString());
        }
    }

    private static void send(HttpExchange ex, int status, String json) throws IOException {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
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
