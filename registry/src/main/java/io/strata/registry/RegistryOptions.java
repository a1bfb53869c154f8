package io.strata.registry;

import java.time.Duration;
import java.util.Map;
import java.util.Set;

/**
 * How the registry client behaves; every value has a default a user can change on the command line.
 *
 * @param insecureRegistries {@code HOST[:PORT]} names spoken to over plain HTTP (loopback always is);
 *     every other registry is HTTPS, verified against the system trust store
 * @param credentials {@code --creds}, used for every registry; null to look in the auth files
 * @param retry when to try again (default {@link RetryPolicy#DEFAULT})
 * @param connectTimeout TCP + TLS connect (default 5 s, as Nydus)
 * @param tryTimeout one try of a request, headers and body (default 20 s): a stalled response is
 *     abandoned and tried again
 * @param readDeadline one read (or other operation) including all its retries (default 60 s); a whole-blob
 *     download or upload instead runs until nothing moves for {@code tryTimeout + readDeadline}
 *     ({@link TransferWatch}), and the deadline bounds only the time between its tries
 * @param maxConcurrency requests in flight to one registry at once (default 16; Nydus prefetches with 8
 *     threads, nbdkit curl with 4 connections): over HTTP/1.1 a prefetch of small segments is bound by
 *     round trips, not bandwidth (20 ms and 50 MiB/s: 16 gave (a) of bench/remote-vs-peers.sh about
 *     10 % sooner than 8 in 10 of 11 alternating rounds, docs/benchmarks.md); connections are reused
 *     through the client's pool
 * @param environment where proxy variables and auth-file locations come from (System.getenv())
 */
public record RegistryOptions(
        Set<String> insecureRegistries,
        Credentials credentials,
        RetryPolicy retry,
        Duration connectTimeout,
        Duration tryTimeout,
        Duration readDeadline,
        int maxConcurrency,
        Map<String, String> environment) {

    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);
    public static final Duration DEFAULT_TRY_TIMEOUT = Duration.ofSeconds(20);
    public static final Duration DEFAULT_READ_DEADLINE = Duration.ofSeconds(60);
    public static final int DEFAULT_MAX_CONCURRENCY = 16;

    public RegistryOptions {
        insecureRegistries = Set.copyOf(insecureRegistries);
        environment = Map.copyOf(environment);
        if (maxConcurrency < 1) {
            throw new IllegalArgumentException("registry concurrency must be at least 1, not " + maxConcurrency);
        }
        for (Duration d : new Duration[] {connectTimeout, tryTimeout, readDeadline}) {
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("registry timeouts must be positive, not " + d);
            }
        }
    }

    public static RegistryOptions defaults() {
        return new RegistryOptions(Set.of(), null, RetryPolicy.DEFAULT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TRY_TIMEOUT,
                DEFAULT_READ_DEADLINE, DEFAULT_MAX_CONCURRENCY, System.getenv());
    }

    public RegistryOptions withInsecureRegistries(Set<String> hosts) {
        return new RegistryOptions(hosts, credentials, retry, connectTimeout, tryTimeout, readDeadline, maxConcurrency, environment);
    }

    public RegistryOptions withCredentials(Credentials creds) {
        return new RegistryOptions(insecureRegistries, creds, retry, connectTimeout, tryTimeout, readDeadline, maxConcurrency, environment);
    }

    public RegistryOptions withRetry(RetryPolicy policy) {
        return new RegistryOptions(insecureRegistries, credentials, policy, connectTimeout, tryTimeout, readDeadline, maxConcurrency, environment);
    }

    public RegistryOptions withTimeouts(Duration connect, Duration perTry, Duration deadline) {
        return new RegistryOptions(insecureRegistries, credentials, retry, connect, perTry, deadline, maxConcurrency, environment);
    }

    public RegistryOptions withMaxConcurrency(int n) {
        return new RegistryOptions(insecureRegistries, credentials, retry, connectTimeout, tryTimeout, readDeadline, n, environment);
    }

    public RegistryOptions withEnvironment(Map<String, String> env) {
        return new RegistryOptions(insecureRegistries, credentials, retry, connectTimeout, tryTimeout, readDeadline, maxConcurrency, env);
    }
}
