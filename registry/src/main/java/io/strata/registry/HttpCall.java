package io.strata.registry;

import java.net.URI;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest.BodyPublisher;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodySubscriber;
import java.net.http.HttpResponse.BodySubscribers;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * One logical request to a registry as {@link RegistryClient#send} runs it: retried, authenticated,
 * redirected. Built with the small fluent methods below; {@code body} makes a fresh response-body
 * handler for each try (so an abandoned try cannot touch the next one's output).
 */
final class HttpCall<T> {
    /** The body handler of one try, used for 2xx answers; {@link #abandon()} is called when the try times out. */
    interface TryBody<T> extends HttpResponse.BodyHandler<T> {
        default void abandon() {
        }
    }

    /** The outcome: status, headers, the body of a 2xx (else null) and up to 8 KiB of any other body. */
    record Reply<T>(int status, HttpHeaders headers, T body, byte[] errorBody, URI uri) {
    }

    final String method;
    final URI uri;
    final Map<String, String> headers = new LinkedHashMap<>();
    Supplier<BodyPublisher> publisher;
    Supplier<TryBody<T>> body;
    /** The token scope(s) for this registry request, space-separated; null for a request to another service. */
    String scope;
    /** An Authorization header for a request that is not to the registry (the token realm's Basic credentials). */
    String explicitAuthorization;
    boolean followRedirects;
    /** Where the last redirect led (null: the registry's own URL again); a blob caches it. */
    Consumer<URI> onRedirect;
    /** Start from this URL (a cached redirect) instead of {@link #uri}; a 401/403 there goes back to {@link #uri}. */
    URI startAt;
    /** Whether I/O failures and retryable statuses are tried again (false for a PUT of an upload session). */
    boolean retry = true;
    long deadlineNanos;
    /** A whole-blob transfer: a try runs while bytes move ({@link TransferWatch}) instead of for the per-try timeout. */
    boolean wholeTransfer;

    HttpCall(String method, URI uri, Supplier<TryBody<T>> body) {
        this.method = method;
        this.uri = uri;
        this.body = body;
    }

    HttpCall<T> header(String name, String value) {
        headers.put(name, value);
        return this;
    }

    HttpCall<T> scope(String s) {
        this.scope = s;
        return this;
    }

    HttpCall<T> deadline(long nanos) {
        this.deadlineNanos = nanos;
        return this;
    }

    HttpCall<T> publisher(Supplier<BodyPublisher> p) {
        this.publisher = p;
        return this;
    }

    HttpCall<T> redirects(boolean follow) {
        this.followRedirects = follow;
        return this;
    }

    /** A whole-blob download or upload: a try is given up only when it stalls ({@link TransferWatch}). */
    HttpCall<T> wholeTransfer() {
        this.wholeTransfer = true;
        return this;
    }

    HttpCall<T> noRetry() {
        this.retry = false;
        return this;
    }

    /** {@code METHOD scheme://host:port/path}, without the query (a signed URL's signature stays out of messages). */
    static String describe(String method, URI u) {
        return method + " " + u.getScheme() + "://" + u.getRawAuthority() + (u.getRawPath() == null ? "" : u.getRawPath());
    }

    /** A body handler that ignores the body (HEAD, or a 2xx whose body does not matter). */
    static TryBody<Void> discard() {
        return info -> BodySubscribers.discarding();
    }

    /** A body subscriber that fails at once: the answer's headers already show it is wrong. */
    static <T> BodySubscriber<T> failing(Throwable error) {
        return Bodies.cancelled(CompletableFuture.failedFuture(error));
    }
}
