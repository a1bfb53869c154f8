package io.strata.cli;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fault-injecting HTTP/1.1 reverse proxy in front of a registry, for tests: the client under test
 * talks to it as if it were the registry (loopback, plain HTTP). Every request is forwarded to the
 * upstream as is; the answer to a blob range read ({@code GET .../blobs/...} with a Range header)
 * can be replaced by the next queued {@link Fault}. Further, each turned on by the test:
 * {@link #injectOn} faults other requests (an upload, the manifest PUT) by method and path;
 * {@link #redirectBlobs} answers blob GETs the registry allowed with a 302 to another host (an
 * object store); {@link #refuseExpiredTokens} answers a Bearer token its realm says has expired
 * with 401 and a challenge, as a token-checking registry does (distribution's {@code silly} auth
 * accepts any token); {@link #throttle} caps the bandwidth of range-read bodies. Everything else
 * passes through untouched.
 */
final class FaultProxy implements AutoCloseable {
    /** What to do to one blob range read. */
    enum Fault {
        /** Answer 500 without forwarding. */
        STATUS_500,
        /** Answer 503 without forwarding. */
        STATUS_503,
        /** Answer 429 with Retry-After: 1. */
        TOO_MANY_429,
        /** Answer 401 with the registry's Basic challenge, as Harbor refuses a mount from a repository the token may not pull. */
        UNAUTHORIZED_401,
        /** Send the headers (full Content-Length) and half the body, then reset the connection. */
        RESET_MID_BODY,
        /** Send the headers (full Content-Length) and half the body, then close cleanly. */
        SHORT_BODY,
        /** Forward the answer with its first body byte flipped. */
        FLIP_FIRST_BYTE,
        /** Send nothing for 30 s (past the client's per-try timeout), then close. */
        STALL,
        /** Send nothing until the proxy is closed. */
        STALL_FOREVER,
        /** Reset the connection at once, without forwarding the request or answering. */
        RESET_NOW
    }

    /** A fault for requests with this method whose path contains {@code pathPart}, {@code left} more times. */
    private static final class Rule {
        final String method;
        final String pathPart;
        final Fault fault;
        int left;

        Rule(String method, String pathPart, Fault fault, int left) {
            this.method = method;
            this.pathPart = pathPart;
            this.fault = fault;
            this.left = left;
        }
    }

    private static final Set<String> HOP_HEADERS = Set.of("connection", "content-length", "host", "transfer-encoding",
            "keep-alive", "upgrade", "expect", "te", "trailer", "proxy-connection");

    private final URI upstream;
    private final ServerSocket listener;
    private final ExecutorService threads = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fault-proxy");
        t.setDaemon(true);
        return t;
    });
    private final HttpClient http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private final ArrayDeque<Fault> faults = new ArrayDeque<>();
    private final AtomicInteger rangeReads = new AtomicInteger();
    private final AtomicInteger faultsApplied = new AtomicInteger();
    private final List<Socket> open = new ArrayList<>();
    private final List<Rule> rules = new ArrayList<>();
    private final java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
    private final AtomicInteger redirects = new AtomicInteger();
    private final AtomicInteger expiredRefused = new AtomicInteger();
    private volatile java.util.function.Function<String, URI> blobStorage;
    private volatile io.strata.registry.testing.TokenRealm tokenRealm;
    private volatile String challenge;
    private volatile long bytesPerSecond;
    /** When the shared throttled pipe is free again (System.nanoTime()). */
    private long pipeFreeAtNanos;

    FaultProxy(URI upstream) throws IOException {
        this.upstream = upstream;
        this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        threads.execute(this::acceptLoop);
    }

    /** HOST:PORT of the proxy, to put in a reference. */
    String registry() {
        return "127.0.0.1:" + listener.getLocalPort();
    }

    /** Queues faults, applied in order to the next blob range reads. */
    synchronized void inject(Fault fault, int times) {
        for (int i = 0; i < times; i++) {
            faults.add(fault);
        }
    }

    /**
     * Applies {@code fault} to the next {@code times} requests (Integer.MAX_VALUE: all) with this method
     * whose path contains {@code pathPart}; range reads matching no rule still take the queued faults.
     */
    synchronized void injectOn(String method, String pathPart, Fault fault, int times) {
        rules.add(new Rule(method, pathPart, fault, times));
    }

    /** Removes every {@link #injectOn} rule. */
    synchronized void clearRules() {
        rules.clear();
    }

    /**
     * Answers every blob GET ({@code .../blobs/sha256:HEX}) the registry answered with 2xx with a
     * 302 to {@code storage.apply("sha256:HEX")} instead: the registry still checks the client's
     * credentials, the bytes come from the other host.
     */
    void redirectBlobs(java.util.function.Function<String, URI> storage) {
        blobStorage = storage;
    }

    /** Redirects answered so far. */
    int redirects() {
        return redirects.get();
    }

    /**
     * Refuses requests carrying a Bearer token that {@code realm} says has expired: 401 with
     * {@code WWW-Authenticate: wwwAuthenticate}, not forwarded.
     */
    void refuseExpiredTokens(io.strata.registry.testing.TokenRealm realm, String wwwAuthenticate) {
        challenge = wwwAuthenticate;
        tokenRealm = realm;
    }

    /** Requests refused for an expired token so far. */
    int expiredRefused() {
        return expiredRefused.get();
    }

    /** Caps the bytes per second of all range-read bodies together (0: no cap). */
    void throttle(long bytesPerSecond) {
        this.bytesPerSecond = bytesPerSecond;
    }

    /** Drops the faults still queued. */
    synchronized void clearFaults() {
        faults.clear();
    }

    /** Faults still queued. */
    synchronized int pending() {
        return faults.size();
    }

    int rangeReads() {
        return rangeReads.get();
    }

    int faultsApplied() {
        return faultsApplied.get();
    }

    /**
     * Waits until at least {@code n} faults have been applied (a request met its fault: a stall has
     * begun), up to {@code timeout}; true if they were.
     */
    boolean awaitFaultsApplied(int n, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (faultsApplied) {
            for (long left = timeout.toNanos(); faultsApplied.get() < n; left = deadline - System.nanoTime()) {
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(faultsApplied, left);
            }
            return true;
        }
    }

    private synchronized Fault nextFault() {
        return faults.poll();
    }

    private synchronized Fault ruleFor(String method, String path) {
        for (Rule r : rules) {
            if (r.left > 0 && r.method.equals(method) && path.contains(r.pathPart)) {
                r.left--;
                return r.fault;
            }
        }
        return null;
    }

    private void acceptLoop() {
        while (!listener.isClosed()) {
            try {
                Socket s = listener.accept();
                synchronized (open) {
                    open.add(s);
                }
                threads.execute(() -> serve(s));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket s) {
        try (s) {
            s.setSoTimeout(60_000);
            InputStream in = new BufferedInputStream(s.getInputStream());
            OutputStream out = s.getOutputStream();
            for (;;) {
                String requestLine = readLine(in);
                if (requestLine == null || requestLine.isEmpty()) {
                    return;
                }
                String[] parts = requestLine.split(" ");
                Map<String, String> headers = new LinkedHashMap<>();
                for (String line = readLine(in); line != null && !line.isEmpty(); line = readLine(in)) {
                    int colon = line.indexOf(':');
                    headers.put(line.substring(0, colon).trim(), line.substring(colon + 1).trim());
                }
                byte[] body = new byte[0];
                String length = header(headers, "content-length");
                if (length != null) {
                    body = in.readNBytes(Integer.parseInt(length));
                } else if ("chunked".equalsIgnoreCase(header(headers, "transfer-encoding"))) {
                    body = readChunked(in);
                }
                boolean rangeRead = parts[0].equals("GET") && parts[1].contains("/blobs/") && header(headers, "range") != null;
                Fault fault = ruleFor(parts[0], parts[1]);
                if (fault == null && rangeRead) {
                    rangeReads.incrementAndGet();
                    fault = nextFault();
                }
                if (fault != null) {
                    synchronized (faultsApplied) {
                        faultsApplied.incrementAndGet();
                        faultsApplied.notifyAll();
                    }
                }
                if (!answer(s, out, parts[0], parts[1], headers, body, fault)) {
                    return;
                }
            }
        } catch (IOException | InterruptedException e) {
            // the client went away, or a fault ended the connection
        }
    }

    /** Answers one request; false when the connection must end. */
    private boolean answer(Socket s, OutputStream out, String method, String target, Map<String, String> headers, byte[] body,
            Fault fault) throws IOException, InterruptedException {
        if (fault == Fault.STATUS_500 || fault == Fault.STATUS_503) {
            int code = fault == Fault.STATUS_500 ? 500 : 503;
            write(out, code, Map.of(), new byte[0], 0);
            return true;
        }
        if (fault == Fault.TOO_MANY_429) {
            write(out, 429, Map.of("Retry-After", List.of("1")), new byte[0], 0);
            return true;
        }
        if (fault == Fault.UNAUTHORIZED_401) {
            write(out, 401, Map.of("WWW-Authenticate", List.of("Basic realm=\"Registry Realm\"")), new byte[0], 0);
            return true;
        }
        if (fault == Fault.STALL) {
            Thread.sleep(30_000);
            return false;
        }
        if (fault == Fault.STALL_FOREVER) {
            closed.await();
            return false;
        }
        if (fault == Fault.RESET_NOW) {
            s.setSoLinger(true, 0);
            return false;
        }
        io.strata.registry.testing.TokenRealm realm = tokenRealm;
        String auth = header(headers, "authorization");
        if (realm != null && auth != null && auth.startsWith("Bearer ") && !realm.isLive(auth.substring("Bearer ".length()))) {
            expiredRefused.incrementAndGet();
            write(out, 401, Map.of("WWW-Authenticate", List.of(challenge)), new byte[0], 0);
            return true;
        }
        HttpRequest.Builder rb = HttpRequest.newBuilder(upstream.resolve(target)).timeout(Duration.ofSeconds(30));
        for (Map.Entry<String, String> h : headers.entrySet()) {
            if (!HOP_HEADERS.contains(h.getKey().toLowerCase(Locale.ROOT))) {
                rb.header(h.getKey(), h.getValue());
            }
        }
        rb.method(method, body.length == 0 ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        HttpResponse<byte[]> r = http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        byte[] content = r.body();
        Map<String, List<String>> respHeaders = new LinkedHashMap<>();
        // Locations the registry builds from its own address (upload sessions) are rewritten to
        // point at the proxy, as a reverse proxy does (nginx's proxy_redirect default): otherwise
        // the client would be sent around the proxy, to what is to it another host.
        String upstreamBase = "http://" + upstream.getRawAuthority();
        r.headers().map().forEach((k, v) -> {
            if (k.equalsIgnoreCase("location")) {
                respHeaders.put(k, v.stream().map(l -> l.startsWith(upstreamBase + "/")
                        ? "http://" + registry() + l.substring(upstreamBase.length()) : l).toList());
            } else if (!HOP_HEADERS.contains(k.toLowerCase(Locale.ROOT)) && !k.startsWith(":")) {
                respHeaders.put(k, v);
            }
        });
        // HEAD answers carry the blob's length without a body.
        long declared = method.equals("HEAD") ? r.headers().firstValueAsLong("content-length").orElse(0) : content.length;
        java.util.function.Function<String, URI> storage = blobStorage;
        java.util.regex.Matcher blob = BLOB_PATH.matcher(target);
        if (storage != null && method.equals("GET") && r.statusCode() / 100 == 2 && blob.matches()) {
            redirects.incrementAndGet();
            write(out, 302, Map.of("Location", List.of(storage.apply(blob.group(1)).toString())), new byte[0], 0);
            return true;
        }
        if (fault == Fault.FLIP_FIRST_BYTE && content.length > 0) {
            content = content.clone();
            content[0] ^= (byte) 0x5a;
        }
        if (fault == Fault.RESET_MID_BODY || fault == Fault.SHORT_BODY) {
            writeHead(out, r.statusCode(), respHeaders, declared);
            out.write(content, 0, content.length / 2);
            out.flush();
            if (fault == Fault.RESET_MID_BODY) {
                s.setSoLinger(true, 0); // close() now sends RST, not FIN
            }
            return false;
        }
        if (bytesPerSecond > 0 && r.statusCode() == 206) {
            writeHead(out, r.statusCode(), respHeaders, content.length);
            for (int at = 0; at < content.length; at += THROTTLE_PIECE) {
                int n = Math.min(THROTTLE_PIECE, content.length - at);
                awaitPipe(n);
                out.write(content, at, n);
                out.flush();
            }
            return true;
        }
        write(out, r.statusCode(), respHeaders, method.equals("HEAD") ? new byte[0] : content, declared);
        return true;
    }

    private static final int THROTTLE_PIECE = 16 << 10;
    private static final java.util.regex.Pattern BLOB_PATH = java.util.regex.Pattern.compile("/v2/.+/blobs/(sha256:[0-9a-f]{64})");

    /** Waits for this piece's turn in the one throttled pipe all range reads share (the injected slowness). */
    private void awaitPipe(int bytes) throws InterruptedException {
        long start;
        synchronized (this) {
            start = Math.max(System.nanoTime(), pipeFreeAtNanos);
            pipeFreeAtNanos = start + bytes * 1_000_000_000L / bytesPerSecond;
        }
        long wait = start - System.nanoTime();
        if (wait > 0) {
            TimeUnit.NANOSECONDS.sleep(wait);
        }
    }

    /** A chunked request body (RFC 9112 section 7.1), trailers ignored. */
    private static byte[] readChunked(InputStream in) throws IOException {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        for (;;) {
            String sizeLine = readLine(in);
            if (sizeLine == null) {
                throw new IOException("chunked body cut short");
            }
            int semi = sizeLine.indexOf(';');
            int size = Integer.parseInt((semi < 0 ? sizeLine : sizeLine.substring(0, semi)).trim(), 16);
            if (size == 0) {
                for (String t = readLine(in); t != null && !t.isEmpty(); t = readLine(in)) {
                    // trailer fields: none expected
                }
                return body.toByteArray();
            }
            body.write(in.readNBytes(size));
            readLine(in);
        }
    }

    private static void write(OutputStream out, int status, Map<String, List<String>> headers, byte[] body, long declared)
            throws IOException {
        writeHead(out, status, headers, Math.max(declared, body.length));
        out.write(body);
        out.flush();
    }

    private static void writeHead(OutputStream out, int status, Map<String, List<String>> headers, long length) throws IOException {
        StringBuilder b = new StringBuilder("HTTP/1.1 ").append(status).append(" X\r\n");
        headers.forEach((k, vs) -> vs.forEach(v -> b.append(k).append(": ").append(v).append("\r\n")));
        b.append("Content-Length: ").append(length).append("\r\n\r\n");
        out.write(b.toString().getBytes(StandardCharsets.ISO_8859_1));
    }

    private static String header(Map<String, String> headers, String name) {
        for (Map.Entry<String, String> h : headers.entrySet()) {
            if (h.getKey().equalsIgnoreCase(name)) {
                return h.getValue();
            }
        }
        return null;
    }

    private static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (;;) {
            int c = in.read();
            if (c < 0) {
                return b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
            }
            if (c == '\n') {
                String s = b.toString(StandardCharsets.ISO_8859_1);
                return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
            }
            b.write(c);
        }
    }

    @Override
    public void close() throws IOException {
        closed.countDown();
        listener.close();
        synchronized (open) {
            for (Socket s : open) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing anyway
                }
            }
        }
        threads.shutdownNow();
        try {
            threads.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
