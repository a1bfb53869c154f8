package io.strata.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ProxySelector;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodySubscribers;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An OCI distribution (v2) client: one per process, with per-registry state (auth, concurrency
 * bound, counters) kept by registry {@code HOST[:PORT]}.
 *
 * <p>API used by the rest of Strata:
 * <ul>
 *   <li>{@link #blob(ImageReference, String)} / {@link #blob(ImageReference, String, long)}: a
 *       {@link RangeFetcher} over one blob (one range request per read);</li>
 *   <li>{@link #resolve(ImageReference)}: the image's manifest (through an OCI index too), checked to be
 *       a Nydus image, as a {@link ResolvedImage};</li>
 *   <li>{@link #fetchBootstrap(ResolvedImage, Path)}: the bootstrap, digest-verified and unpacked;</li>
 *   <li>{@link ImagePusher}: uploads ({@code strata push});</li>
 *   <li>{@link #metrics()}: counters per registry.</li>
 * </ul>
 *
 * <p>HTTP is the JDK's {@link HttpClient} (HTTP/1.1, pooled keep-alive connections, the system trust
 * store for HTTPS; one client for https and one that cannot do TLS for plain http URLs, each built on
 * first use: {@link HttpClients}), with redirects turned off: {@link #send} follows them itself so that
 * {@code Authorization} only ever goes to the registry's own origin, never to the object store or
 * CDN a blob is redirected to. Proxies come from HTTP(S)_PROXY/NO_PROXY ({@link EnvProxySelector}).
 *
 * <p>Every request: authenticate up front with what the registry asked for last (anonymous until a
 * 401), answer a 401 once by following its challenge (Basic, or a Bearer token from the realm), retry
 * I/O errors and 408/429/5xx-but-501 per {@link RetryPolicy} within the operation's deadline, and
 * hold one of the registry's {@link RegistryOptions#maxConcurrency()} permits while in flight.
 * Messages name method, registry, path and status; never credentials, tokens or URL queries.
 */
public final class RegistryClient implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RegistryClient.class);
    static final String USER_AGENT = "strata";
    private static final int MAX_REDIRECTS = 5;
    private static final int ERROR_BODY_LIMIT = 8192;
    /** A token service's JSON answer: a JWT of a few KiB; more is refused, not collected. */
    static final int MAX_TOKEN_ANSWER = 1 << 20;
    /** The most a whole-blob download takes when the manifest gives no size: the largest bootstrap layer. */
    static final long MAX_UNSIZED_DOWNLOAD = BootstrapLayer.MAX_LAYER_BYTES;

    private final RegistryOptions options;
    private final HttpClients http;
    private final ConcurrentHashMap<String, RegistryHost> hosts = new ConcurrentHashMap<>();

    public RegistryClient(RegistryOptions options) {
        this.options = options;
        ProxySelector proxies = EnvProxySelector.fromEnvironment(options.environment());
        this.http = new HttpClients(() -> {
            HttpClient.Builder b = HttpClient.newBuilder()
                    .version(HttpClient.Version.HTTP_1_1)
                    .followRedirects(HttpClient.Redirect.NEVER)
                    .connectTimeout(options.connectTimeout())
                    // The client's own tasks run on the thread that has them (its selector thread, or
                    // the sender): the default executor, a thread pool, hands every response a few
                    // times between threads, ~6 % of a remote start's CPU (docs/benchmarks.md). Safe
                    // because no body subscriber here blocks: they copy into the caller's buffer,
                    // count, or write a file; the JDK still completes sendAsync's future on its
                    // common pool, never on the selector.
                    .executor(Runnable::run);
            if (proxies != null) {
                b.proxy(proxies);
            }
            return b;
        });
    }

    /**
     * The JSON writer of pushes (ObjectMapper is thread-safe once configured), made on first use:
     * reading, the only JSON a remote image's start needs, goes through {@link JsonTrees} instead.
     */
    static ObjectMapper json() {
        return JsonHolder.MAPPER;
    }

    private static final class JsonHolder {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    /** Loads the JSON reader's classes now (on the calling thread), so that reading the first manifest need not. */
    public static void prepareJson() throws IOException {
        JsonTrees.read("{\"mediaType\":\"x\",\"layers\":[{\"size\":1,\"annotations\":{\"a\":\"true\"}}],\"n\":[1.5,null,false]}");
    }

    /** Whether this client has built its TLS client (the JDK's default TLS context): not for plain-HTTP registries. */
    boolean tlsClientBuilt() {
        return http.tlsBuilt();
    }

    public RegistryOptions options() {
        return options;
    }

    /** Counters of every registry this client has talked to, by {@code HOST[:PORT]}. */
    public Map<String, RegistryMetrics> metrics() {
        Map<String, RegistryMetrics> m = new java.util.TreeMap<>();
        hosts.forEach((k, v) -> m.put(k, v.metrics));
        return m;
    }

    /** The counters of one registry (created on first use). */
    public RegistryMetrics metrics(String registry) throws IOException {
        return host(registry).metrics;
    }

    /** A reader of one blob of {@code repository}; its size is found with the first read (or {@link RangeFetcher#size()}). */
    public RangeFetcher blob(ImageReference repository, String digest) throws IOException {
        return blob(repository, digest, -1);
    }

    /** A reader of one blob whose size is known (from the manifest). */
    public RangeFetcher blob(ImageReference repository, String digest, long knownSize) throws IOException {
        Digests.requireSha256(digest);
        return new RegistryBlob(this, host(repository.registry()), repository, digest, knownSize);
    }

    /** Resolves a reference to its Nydus manifest; see {@link ManifestResolver}. */
    public ResolvedImage resolve(ImageReference ref) throws IOException {
        return new ManifestResolver(this).resolve(ref);
    }

    /**
     * Downloads the image's bootstrap layer, checks its size and digest against the manifest, and
     * unpacks {@code image/image.boot} from its gzip tar to {@code dir/bootstrap}, which it returns.
     */
    /** Beside an unpacked bootstrap: its sha256, written when it was unpacked. */
    static final String BOOTSTRAP_DIGEST = "bootstrap.sha256";

    /**
     * The bootstrap {@link #fetchBootstrap} unpacked into {@code dir} earlier, if it is still what was
     * unpacked (its digest matches the one written beside it); empty when it is missing, damaged or
     * from before the digest was kept, and the caller fetches it again. A bootstrap is the image's
     * metadata: a flipped byte in a reused copy would change names and modes with no error.
     */
    public static Optional<Path> cachedBootstrap(Path dir) throws IOException {
        Path bootstrap = dir.resolve("bootstrap");
        Path digest = dir.resolve(BOOTSTRAP_DIGEST);
        if (!Files.isRegularFile(bootstrap) || !Files.isRegularFile(digest)) {
            return Optional.empty();
        }
        String recorded = Files.readString(digest).trim();
        if (!recorded.equals(Digests.sha256(bootstrap))) {
            LOG.warn("{}: does not match the digest recorded when it was unpacked ({}); fetching it again", bootstrap, recorded);
            return Optional.empty();
        }
        return Optional.of(bootstrap);
    }

    public Path fetchBootstrap(ResolvedImage image, Path dir) throws IOException {
        ResolvedImage.Layer layer = image.bootstrap();
        if (layer.size() > BootstrapLayer.MAX_LAYER_BYTES) {
            throw new RegistryException(image.reference() + ": the bootstrap layer " + layer.digest() + " is " + layer.size()
                    + " bytes; bootstraps over 2 GiB are not supported");
        }
        io.strata.registry.cache.OwnerOnly.directories(dir);
        Path tmp = Files.createTempFile(dir, "bootstrap-layer", ".tar.gz");
        try {
            downloadBlob(image.reference(), layer.digest(), layer.size(), tmp);
            Path out = dir.resolve("bootstrap");
            Path part = Files.createTempFile(dir, "bootstrap", ".part");
            Path digestPart = Files.createTempFile(dir, "bootstrap", ".sha256.part");
            try {
                BootstrapLayer.extract(tmp, part, image.reference() + " bootstrap layer " + layer.digest());
                Files.setPosixFilePermissions(part, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
                // The unpacked file's own digest, beside it: a later start checks the copy it reuses.
                Files.writeString(digestPart, Digests.sha256(part));
                Files.move(digestPart, dir.resolve(BOOTSTRAP_DIGEST), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                Files.move(part, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(part);
                Files.deleteIfExists(digestPart);
            }
            return out;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Downloads a whole blob to {@code target}, verifying its size (when known) and sha256 digest. */
    void downloadBlob(ImageReference repo, String digest, long size, Path target) throws IOException {
        RegistryHost host = host(repo.registry());
        URI uri = host.resolve("/v2/" + repo.repository() + "/blobs/" + digest);
        String what = repo + ": blob " + digest;
        long max = size >= 0 ? size : MAX_UNSIZED_DOWNLOAD;
        HttpCall<String> call = new HttpCall<String>("GET", uri, () -> info -> {
            long length = info.headers().firstValueAsLong("Content-Length").orElse(-1);
            if (size >= 0 && length >= 0 && length != size) {
                return HttpCall.failing(new RegistryException(what + ": the registry sends " + length
                        + " bytes, the manifest says " + size));
            }
            return Bodies.toFileWithSha256(target, max, what);
        }).scope(pullScope(repo)).redirects(true).wholeTransfer();
        HttpCall.Reply<String> r = send(host, call);
        if (r.status() != 200) {
            throw statusError(call, r, repo + ": blob " + digest);
        }
        long got = Files.size(target);
        host.metrics.bytes(got);
        if (size >= 0 && got != size) {
            throw new RegistryException(what + " has " + got + " bytes, the manifest says " + size);
        }
        String actual = r.body();
        if (!actual.equals(digest)) {
            throw new RegistryException(what + " does not match its digest (the registry sent " + actual + ")");
        }
    }

    /** The answer of a whole-blob transfer's try, waited for as long as it moves bytes. */
    private static <R> R whileMoving(CompletableFuture<R> cf, TransferWatch watch)
            throws InterruptedException, ExecutionException, TimeoutException {
        while (true) {
            long left = watch.nanosLeft();
            if (left <= 0) {
                throw new TimeoutException();
            }
            try {
                return cf.get(left, TimeUnit.NANOSECONDS);
            } catch (TimeoutException notYet) {
                // bytes may have moved meanwhile: the watch says
            }
        }
    }

    long readDeadline() {
        return System.nanoTime() + options.readDeadline().toNanos();
    }

    static String pullScope(ImageReference repo) {
        return "repository:" + repo.repository() + ":pull";
    }

    static String pushScope(ImageReference repo) {
        return "repository:" + repo.repository() + ":pull,push";
    }

    RegistryHost host(String registry) throws IOException {
        RegistryHost h = hosts.get(registry);
        if (h != null) {
            return h;
        }
        String scheme = plainHttp(registry) ? "http" : "https";
        URI base;
        try {
            base = new URI(scheme + "://" + registry + "/");
        } catch (java.net.URISyntaxException e) {
            throw new RegistryException("bad registry address " + registry);
        }
        RegistryHost fresh = new RegistryHost(registry, base,
                repository -> Credentials.lookup(registry, repository, options.credentials(), options.environment()),
                options.maxConcurrency());
        h = hosts.putIfAbsent(registry, fresh);
        return h == null ? fresh : h;
    }

    /** Loopback registries and those named with --insecure-registry are spoken to over plain HTTP. */
    boolean plainHttp(String registry) {
        String host = registry.startsWith("[") ? registry.substring(0, registry.indexOf(']') + 1)
                : registry.contains(":") ? registry.substring(0, registry.indexOf(':')) : registry;
        return options.insecureRegistries().contains(registry) || options.insecureRegistries().contains(host)
                || isLoopback(host);
    }

    /**
     * Whether a registry's host names this machine: {@code localhost}, {@code [::1]}, or a literal IPv4
     * address in 127.0.0.0/8. A name that only starts with "127." ({@code 127.example.com}) is
     * someone else's host and gets HTTPS.
     */
    static boolean isLoopback(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        return h.equals("localhost") || h.equals("[::1]") || h.equals("::1") || LOOPBACK_V4.matcher(h).matches();
    }

    private static final java.util.regex.Pattern LOOPBACK_V4 =
            java.util.regex.Pattern.compile("127(?:\\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}");

    // ---------------------------------------------------------------------------------------------
    // The request loop: auth, redirects, retries, deadline, concurrency bound, counters.

    <T> HttpCall.Reply<T> send(RegistryHost host, HttpCall<T> call) throws IOException {
        if (call.deadlineNanos == 0) {
            call.deadlineNanos = readDeadline();
        }
        RetryPolicy policy = options.retry();
        int maxTries = call.retry ? policy.maxAttempts() : 1;
        URI uri = call.startAt != null ? call.startAt : call.uri;
        int tries = 0;
        int hops = 0;
        boolean reauthenticated = false;
        boolean reresolved = false;
        Optional<Credentials> creds = call.scope == null ? Optional.empty() : host.credentials(call.scope);
        while (true) {
            tries++;
            long remaining = remainingMillis(call, uri);
            boolean toRegistry = call.scope != null && host.sameOrigin(uri);
            String auth = toRegistry ? authorization(host, creds, call.scope, call.deadlineNanos) : call.explicitAuthorization;
            HttpCall.TryBody<T> tryBody = call.body.get();
            long tryMillis = Math.min(options.tryTimeout().toMillis(), remaining);
            // A whole-blob transfer's try runs while bytes move (TransferWatch), however long that is.
            TransferWatch watch = call.wholeTransfer ? new TransferWatch(options.tryTimeout().plus(options.readDeadline())) : null;
            HttpRequest.BodyPublisher requestBody = call.publisher == null ? HttpRequest.BodyPublishers.noBody() : call.publisher.get();
            HttpRequest.Builder rb = HttpRequest.newBuilder(uri)
                    .method(call.method, watch == null ? requestBody : watch.watch(requestBody))
                    .header("User-Agent", USER_AGENT);
            if (watch == null) {
                rb.timeout(Duration.ofMillis(Math.max(1, tryMillis)));
            }
            call.headers.forEach(rb::header);
            if (auth != null) {
                rb.header("Authorization", auth);
            }
            HttpResponse.BodyHandler<Object[]> handler = info -> {
                HttpResponse.BodySubscriber<Object[]> answer;
                if (info.statusCode() / 100 == 2) {
                    answer = BodySubscribers.mapping(tryBody.apply(info), v -> new Object[] {v, null});
                } else if (info.statusCode() == 416) {
                    answer = BodySubscribers.mapping(Bodies.<byte[]>ignoring(), b -> new Object[] {null, null});
                } else {
                    answer = BodySubscribers.mapping(new Bodies.Bounded(ERROR_BODY_LIMIT, null), b -> new Object[] {null, b});
                }
                return watch == null ? answer : watch.watch(answer);
            };
            acquire(host, call, uri);
            long start = System.nanoTime();
            host.metrics.request();
            HttpResponse<Object[]> resp = null;
            IOException failure = null;
            CompletableFuture<HttpResponse<Object[]>> cf = http.forUri(uri).sendAsync(rb.build(), handler);
            try {
                if (watch == null) {
                    long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(call.deadlineNanos - System.nanoTime()));
                    resp = cf.get(Math.min(options.tryTimeout().toMillis(), left), TimeUnit.MILLISECONDS);
                } else {
                    resp = whileMoving(cf, watch);
                }
            } catch (TimeoutException e) {
                cf.cancel(true);
                tryBody.abandon();
                failure = new HttpTimeoutException(watch == null ? "no complete answer within " + tryMillis + " ms"
                        : watch.stalled());
            } catch (ExecutionException e) {
                tryBody.abandon();
                Throwable cause = e.getCause();
                RegistryException ours = findRegistryException(cause);
                if (ours != null) {
                    host.metrics.error();
                    throw ours;
                }
                failure = cause instanceof IOException io ? io : new IOException(String.valueOf(cause), cause);
            } catch (InterruptedException e) {
                cf.cancel(true);
                tryBody.abandon();
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted: " + HttpCall.describe(call.method, uri));
            } finally {
                host.permits.release();
                host.metrics.latencyNanos(System.nanoTime() - start);
                if (watch != null) {
                    // The deadline bounds what lies between a whole transfer's tries, never a try itself.
                    call.deadlineNanos = Math.max(call.deadlineNanos, readDeadline());
                }
            }
            if (failure != null) {
                host.metrics.error();
                String what = describe(failure);
                if (reresolveRedirect(host, call, uri, reresolved)) {
                    // The storage host a redirect led to did not answer: ask the registry where the blob is now.
                    LOG.debug("{}: {}; asking the registry again", HttpCall.describe(call.method, uri), what);
                    reresolved = true;
                    uri = call.uri;
                    continue;
                }
                backoffOrFail(host, call, uri, tries, maxTries, -1, what, 0, failure);
                continue;
            }
            int status = resp.statusCode();
            HttpHeaders headers = resp.headers();
            Object[] bodies = resp.body();
            if (status >= 300 && status < 400 && status != 304 && call.followRedirects
                    && headers.firstValue("Location").isPresent()) {
                if (++hops > MAX_REDIRECTS) {
                    throw new RegistryException(HttpCall.describe(call.method, call.uri) + ": more than " + MAX_REDIRECTS + " redirects", status);
                }
                URI next = redirectTarget(host, uri, headers.firstValue("Location").get(), call);
                LOG.debug("{} redirected ({}) to {}", HttpCall.describe(call.method, uri), status, HttpCall.describe(call.method, next));
                uri = next;
                if (call.onRedirect != null) {
                    call.onRedirect.accept(next);
                }
                tries--;
                continue;
            }
            if (status >= 400 && status != 416 && reresolveRedirect(host, call, uri, reresolved)) {
                // A redirected (signed, expiring) URL refused us: ask the registry where the blob is now.
                // Object stores answer an expired signature with 400 (GCS), 403 (S3) or 404 (some CDNs).
                LOG.debug("{}: HTTP {} from the redirect target; asking the registry again", HttpCall.describe(call.method, uri), status);
                reresolved = true;
                uri = call.uri;
                tries--;
                continue;
            }
            if (status == 401 && toRegistry) {
                if (reauthenticated) {
                    throw unauthorized(host, creds, call, auth, headers);
                }
                // A Harbor-style refusal of a token (a Basic challenge) earns one more round: the
                // anonymous try it leads to is answered with the Bearer challenge for a new token.
                reauthenticated = !onUnauthorized(host, creds, headers, auth, call.scope);
                tries--;
                continue;
            }
            if (RetryPolicy.retryable(status) && call.retry) {
                host.metrics.error();
                backoffOrFail(host, call, uri, tries, maxTries, retryAfterMillis(headers), "HTTP " + status
                        + errorDetail((byte[]) bodies[1]), status, null);
                continue;
            }
            @SuppressWarnings("unchecked")
            T body = (T) bodies[0];
            return new HttpCall.Reply<>(status, headers, body, (byte[]) bodies[1], uri);
        }
    }

    /**
     * Whether a failure at {@code uri} should send the call back to the registry: {@code uri} is where a
     * redirect led (another origin), this call has not gone back yet, and the call is a registry one.
     * The cached redirect is forgotten, so later reads start at the registry too.
     */
    private static boolean reresolveRedirect(RegistryHost host, HttpCall<?> call, URI uri, boolean reresolved) {
        if (reresolved || call.scope == null || host.sameOrigin(uri)) {
            return false;
        }
        if (call.onRedirect != null) {
            call.onRedirect.accept(null);
        }
        return true;
    }

    /**
     * A failure in words: its message, or its cause's. The JDK's client reports a refused or
     * unreachable connection as a ConnectException with no message at all (JDK 17 and 25).
     */
    static String describe(Throwable failure) {
        for (Throwable c = failure; c != null; c = c.getCause()) {
            if (c.getMessage() != null && !c.getMessage().isBlank()) {
                return c.getMessage();
            }
        }
        if (failure instanceof java.net.ConnectException) {
            return "could not connect (connection refused, or no route to the host)";
        }
        return failure.getClass().getSimpleName();
    }

    private static RegistryException findRegistryException(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof RegistryException r) {
                return r;
            }
        }
        return null;
    }

    private long remainingMillis(HttpCall<?> call, URI uri) throws RegistryException {
        long remaining = TimeUnit.NANOSECONDS.toMillis(call.deadlineNanos - System.nanoTime());
        if (remaining <= 0) {
            throw new RegistryUnreachableException(HttpCall.describe(call.method, uri) + ": deadline passed", null);
        }
        return remaining;
    }

    private void acquire(RegistryHost host, HttpCall<?> call, URI uri) throws IOException {
        try {
            if (!host.permits.tryAcquire(remainingMillis(call, uri), TimeUnit.MILLISECONDS)) {
                throw new RegistryUnreachableException(HttpCall.describe(call.method, uri) + ": deadline passed waiting for one of "
                        + options.maxConcurrency() + " connections to " + host.name, null);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted: " + HttpCall.describe(call.method, uri));
        }
    }

    private void backoffOrFail(RegistryHost host, HttpCall<?> call, URI uri, int tries, int maxTries, long retryAfter,
            String what, int status, IOException cause) throws IOException {
        String prefix = HttpCall.describe(call.method, uri) + ": " + what;
        if (tries >= maxTries) {
            throw giveUp(prefix + (maxTries > 1 ? " (gave up after " + tries + " tries)" : ""), status, cause);
        }
        long delay = options.retry().delayMillis(tries, retryAfter);
        if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delay) - call.deadlineNanos >= 0) {
            throw giveUp(prefix + " (gave up after " + tries + " tries: the next in " + delay
                    + " ms would pass the " + options.readDeadline().toSeconds() + " s deadline)", status, cause);
        }
        LOG.debug("{}; retry {} in {} ms", prefix, tries, delay);
        host.metrics.retry();
        try {
            Thread.sleep(delay);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted: " + HttpCall.describe(call.method, uri));
        }
    }

    /** The last try's failure: with no HTTP status, the registry never answered. */
    private static RegistryException giveUp(String message, int status, IOException cause) {
        return status == 0 ? new RegistryUnreachableException(message, cause) : new RegistryException(message, status, cause);
    }

    /** Retry-After as delay-seconds or an HTTP-date (RFC 9110 section 10.2.3), or -1. */
    static long retryAfterMillis(HttpHeaders headers) {
        Optional<String> v = headers.firstValue("Retry-After");
        if (v.isEmpty()) {
            return -1;
        }
        String s = v.get().trim();
        try {
            // Capped before the multiplication (a hostile 10^16 must not wrap to a negative wait).
            return Math.max(0, Math.min(Long.parseLong(s), TimeUnit.DAYS.toSeconds(1)) * 1000);
        } catch (NumberFormatException notSeconds) {
            try {
                ZonedDateTime when = ZonedDateTime.parse(s, DateTimeFormatter.RFC_1123_DATE_TIME);
                return Math.max(0, when.toInstant().toEpochMilli() - System.currentTimeMillis());
            } catch (RuntimeException notADate) {
                return -1;
            }
        }
    }

    private URI redirectTarget(RegistryHost host, URI from, String location, HttpCall<?> call) throws RegistryException {
        URI next;
        try {
            next = from.resolve(location.trim());
        } catch (IllegalArgumentException e) {
            throw new RegistryException(HttpCall.describe(call.method, from) + ": redirect to an invalid URL");
        }
        String scheme = next.getScheme() == null ? "" : next.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("https") && !scheme.equals("http") || next.getHost() == null) {
            throw new RegistryException(HttpCall.describe(call.method, from) + ": redirect to a non-HTTP URL");
        }
        if (scheme.equals("http") && from.getScheme().equalsIgnoreCase("https")) {
            String authority = next.getRawAuthority();
            if (!plainHttp(authority) && !plainHttp(next.getHost())) {
                throw new RegistryException(HttpCall.describe(call.method, from) + ": refusing a redirect from HTTPS to plain HTTP ("
                        + next.getHost() + ")");
            }
        }
        return next;
    }

    // ---------------------------------------------------------------------------------------------
    // Authentication.

    private String authorization(RegistryHost host, Optional<Credentials> creds, String scope, long deadlineNanos) throws IOException {
        AuthChallenge ch = host.challenge;
        if (ch == null) {
            return null;
        }
        if (ch.isBasic()) {
            if (creds.isPresent() && creds.get().basicHeader().isEmpty()) {
                throw new RegistryException(host.name + " asks for a user name and password (Basic auth); the credentials from "
                        + creds.get().origin() + " are an identity token, which only a token service takes", 401);
            }
            return creds.flatMap(Credentials::basicHeader).orElse(null);
        }
        return "Bearer " + host.tokens.get(scope, () -> fetchToken(host, creds, ch, scope, deadlineNanos), deadlineNanos);
    }

    /**
     * Takes a 401's challenge for the next try. Returns true only for Harbor's answer to a token it no
     * longer accepts (a Basic challenge to a Bearer request, no credentials): the token is forgotten and
     * the next try goes without one, so that its Bearer challenge may fetch a new token.
     */
    private boolean onUnauthorized(RegistryHost host, Optional<Credentials> creds, HttpHeaders headers, String sent, String scope)
            throws RegistryException {
        Optional<AuthChallenge> c = AuthChallenge.choose(headers.allValues("WWW-Authenticate"));
        if (c.isEmpty()) {
            throw new RegistryException(host.name + " answered 401 Unauthorized without a Basic or Bearer challenge", 401);
        }
        AuthChallenge ch = c.get();
        LOG.debug("{} asks for {} auth (realm {})", host.name, ch.scheme(), ch.param("realm").orElse("-"));
        if (ch.isBasic()) {
            if (creds.isEmpty()) {
                if (sent != null && sent.startsWith("Bearer ")) {
                    // Harbor answers an expired token with a Basic challenge (goharbor/harbor, v2auth):
                    // forget the token, which may still look fresh here (a clock that stopped while the
                    // machine slept), and try once without the header.
                    host.tokens.invalidate(scope, sent.substring("Bearer ".length()));
                    host.challenge = ch;
                    return true;
                }
                throw new RegistryException(host.name + " requires a user name and password (Basic auth): give --creds USER:PASS"
                        + " or an auth file ($REGISTRY_AUTH_FILE, ~/.docker/config.json)", 401);
            }
            if (sent != null && sent.startsWith("Basic ")) {
                throw refused(host, creds.get());
            }
            host.challenge = ch;
            return false;
        }
        if (ch.param("realm").isEmpty()) {
            throw new RegistryException(host.name + " sent a Bearer challenge without a realm", 401);
        }
        host.challenge = ch;
        if (sent != null && sent.startsWith("Bearer ")) {
            host.tokens.invalidate(scope, sent.substring("Bearer ".length()));
        }
        return false;
    }

    private static RegistryException refused(RegistryHost host, Credentials c) {
        return new RegistryException(host.name + " refused the credentials of user '" + RegistryException.oneLine(c.username())
                + "' (from " + c.origin() + ")", 401);
    }

    private RegistryException unauthorized(RegistryHost host, Optional<Credentials> creds, HttpCall<?> call, String sent,
            HttpHeaders headers) {
        if (sent != null && sent.startsWith("Bearer ")) {
            // The token service issued a token (so it took the credentials, or gave an anonymous one)
            // and the registry refuses it anyway: the token does not cover this repository. Docker Hub
            // and distribution answer so, error="insufficient_scope", for a repository that does not
            // exist as well as for one the user may not read: not a wrong password.
            String who = creds.map(c -> "user '" + RegistryException.oneLine(c.username()) + "' (from " + c.origin() + ")")
                    .orElse("anonymous");
            String error = AuthChallenge.choose(headers.allValues("WWW-Authenticate")).flatMap(c -> c.param("error"))
                    .map(e -> ", " + RegistryException.oneLine(e)).orElse("");
            return new RegistryException(host.name + ": access denied to " + HttpCall.describe(call.method, call.uri) + " for " + who
                    + " (the token it was issued does not cover " + RegistryException.oneLine(call.scope) + error
                    + "): the repository may not exist, or " + (creds.isPresent() ? "this user" : "an anonymous client")
                    + " may not " + (call.scope.endsWith(",push") ? "push to" : "pull from") + " it", 401);
        }
        if (creds.isPresent()) {
            return refused(host, creds.get());
        }
        return new RegistryException(host.name + ": not authorized for " + HttpCall.describe(call.method, call.uri)
                + " (anonymous; give --creds USER:PASS or an auth file)", 401);
    }

    /** The Bearer token flow (distribution's token spec): GET realm?service&scope, POST form as fallback. */
    private TokenCache.Token fetchToken(RegistryHost host, Optional<Credentials> creds, AuthChallenge ch, String scope,
            long deadlineNanos) throws IOException {
        URI realm;
        try {
            realm = new URI(ch.param("realm").orElseThrow());
        } catch (java.net.URISyntaxException e) {
            throw new RegistryException(host.name + ": the token realm in its Bearer challenge is not a URL");
        }
        String rs = realm.getScheme() == null ? "" : realm.getScheme().toLowerCase(Locale.ROOT);
        if (realm.getHost() == null || !(rs.equals("https") || rs.equals("http"))) {
            throw new RegistryException(host.name + ": the token realm in its Bearer challenge is not an HTTP(S) URL");
        }
        if (rs.equals("http") && !plainHttp(realm.getRawAuthority()) && !plainHttp(realm.getHost())
                && !host.base.getScheme().equals("http")) {
            throw new RegistryException(host.name + ": refusing a plain-HTTP token realm (" + realm.getHost() + ")");
        }
        StringBuilder q = new StringBuilder();
        ch.param("service").ifPresent(s -> q.append("service=").append(enc(s)));
        for (String s : scopes(ch, scope)) {
            q.append(q.length() == 0 ? "" : "&").append("scope=").append(enc(s));
        }
        String sep = realm.getRawQuery() == null ? "?" : "&";
        URI get = URI.create(realm + (q.length() == 0 ? "" : sep + q));
        String tokenAnswer = host.name + ": the answer of the token service at " + realm.getHost();
        Optional<String> identityToken = creds.flatMap(Credentials::identityToken);
        HttpCall.Reply<byte[]> r = null;
        if (identityToken.isEmpty()) {
            HttpCall<byte[]> call = new HttpCall<byte[]>("GET", get, () -> info -> new Bodies.Bounded(MAX_TOKEN_ANSWER, tokenAnswer))
                    .deadline(deadlineNanos);
            call.explicitAuthorization = creds.flatMap(Credentials::basicHeader).orElse(null);
            r = send(host, call);
        }
        if (r == null || r.status() != 200 && r.status() != 401 && r.status() != 403) {
            // OAuth2 servers may only take the POST form (Nydus posts first; the distribution spec GETs).
            // An identity token is an OAuth2 refresh token: only the POST form's refresh_token grant
            // takes it (distribution's token spec, "OAuth2 token"; what docker and containers/image send).
            StringBuilder form = new StringBuilder();
            if (identityToken.isPresent()) {
                form.append("grant_type=refresh_token&refresh_token=").append(enc(identityToken.get()));
            } else if (creds.isPresent()) {
                form.append("grant_type=password&username=").append(enc(creds.get().username()))
                        .append("&password=").append(enc(creds.get().password()));
            } else {
                form.append("grant_type=client_credentials");
            }
            ch.param("service").ifPresent(s -> form.append("&service=").append(enc(s)));
            form.append("&client_id=").append(USER_AGENT);
            String scopeParam = String.join(" ", scopes(ch, scope));
            if (!scopeParam.isEmpty()) {
                form.append("&scope=").append(enc(scopeParam));
            }
            byte[] formBytes = form.toString().getBytes(StandardCharsets.UTF_8);
            HttpCall<byte[]> post = new HttpCall<byte[]>("POST", realm, () -> info -> new Bodies.Bounded(MAX_TOKEN_ANSWER, tokenAnswer))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .publisher(() -> HttpRequest.BodyPublishers.ofByteArray(formBytes))
                    .deadline(deadlineNanos);
            r = send(host, post);
        }
        if (r.status() == 401 || r.status() == 403) {
            if (creds.isPresent()) {
                throw refused(host, creds.get());
            }
            throw new RegistryException(host.name + ": the token service at " + realm.getHost() + " refused an anonymous token"
                    + " (give --creds USER:PASS or an auth file)", r.status());
        }
        if (r.status() != 200) {
            throw new RegistryException(host.name + ": the token service at " + realm.getHost() + " answered HTTP " + r.status(),
                    r.status());
        }
        JsonNode node;
        try {
            node = JsonTrees.read(r.body());
        } catch (IOException e) {
            throw new RegistryException(host.name + ": the token service at " + realm.getHost() + " sent something that is not JSON");
        }
        JsonNode t = node == null ? null : node.get("token");
        if (t == null || !t.isTextual() || t.asText().isEmpty()) {
            t = node == null ? null : node.get("access_token");
        }
        if (t == null || !t.isTextual() || t.asText().isEmpty()) {
            throw new RegistryException(host.name + ": the token service at " + realm.getHost() + " sent no token");
        }
        long expiresIn = node.path("expires_in").asLong(0);
        if (expiresIn <= 0) {
            expiresIn = 60; // the token spec's default
        }
        LOG.debug("{}: token for {} valid {} s", host.name, scope, expiresIn);
        return TokenCache.Token.issued(t.asText(), expiresIn, System.nanoTime());
    }

    private static java.util.List<String> scopes(AuthChallenge ch, String scope) {
        java.util.LinkedHashSet<String> s = new java.util.LinkedHashSet<>();
        for (String one : scope.split(" ")) {
            if (!one.isEmpty()) {
                s.add(one);
            }
        }
        // The challenge's own scope names what the refused request needed, which is the scope this
        // request computed; the host keeps only the last challenge, so its scope may be another
        // repository's and is not added.
        return java.util.List.copyOf(s);
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    // ---------------------------------------------------------------------------------------------
    // Errors.

    /** A one-line error for an unexpected status, with the registry's error code when it sent one. */
    RegistryException statusError(HttpCall<?> call, HttpCall.Reply<?> r, String what) {
        return new RegistryException(what + ": " + HttpCall.describe(call.method, r.uri()) + " answered HTTP " + r.status()
                + errorDetail(r.errorBody()), r.status());
    }

    /** " (CODE: message)" from a distribution error body, or "". */
    String errorDetail(byte[] body) {
        if (body == null || body.length == 0) {
            return "";
        }
        try {
            JsonNode e = JsonTrees.read(body).path("errors").path(0);
            String code = e.path("code").asText("");
            String message = e.path("message").asText("");
            if (code.isEmpty() && message.isEmpty()) {
                return "";
            }
            return " (" + RegistryException.oneLine(code + (message.isEmpty() ? "" : ": " + message)) + ")";
        } catch (IOException | RuntimeException notJson) {
            return "";
        }
    }

    @Override
    public void close() {
        // The JDK 17 HttpClient has no close(); its pooled connections and selector thread go with it
        // once unreachable. JDK 21+ would allow http.close().
    }
}
