package io.strata.registry;

import java.net.URI;
import java.io.IOException;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the client keeps per registry ({@code HOST[:PORT]}): its base URL (HTTPS, or HTTP for
 * loopback and --insecure-registry hosts), the credentials found for each of its repositories (an
 * auth file may hold one account per namespace), the last authentication
 * challenge it sent (so later requests authenticate up front instead of collecting a 401 each), its
 * tokens, the bound on requests in flight, and its counters.
 */
final class RegistryHost {
    private static final Logger LOG = LoggerFactory.getLogger(RegistryHost.class);
    final String name;
    final URI base;
    private final CredentialSource credentialSource;
    private final ConcurrentHashMap<String, Found> credentialsByRepository = new ConcurrentHashMap<>();
    /**
     * How long found credentials are reused before the files and helpers are asked again: a new
     * {@code podman login}, or a helper's renewed token (ECR's last 12 hours), reaches a server that
     * runs for days within this. Tests shorten it.
     */
    volatile long credentialsTtlNanos = TimeUnit.MINUTES.toNanos(1);

    private record Found(Optional<Credentials> credentials, long atNanos, AtomicBoolean refreshing) {
    }

    private final Object firstLookup = new Object();
    final Semaphore permits;
    final RegistryMetrics metrics;
    final TokenCache tokens = new TokenCache();
    /** The challenge of the last 401, or null while the registry has not asked for authentication. */
    volatile AuthChallenge challenge;

    /** Finds the credentials of one repository (Credentials.lookup); asked once per repository. */
    interface CredentialSource {
        Optional<Credentials> find(String repository) throws IOException;
    }

    RegistryHost(String name, URI base, CredentialSource credentialSource, int maxConcurrency) {
        this.name = name;
        this.base = base;
        this.credentialSource = credentialSource;
        this.permits = new Semaphore(maxConcurrency, true);
        this.metrics = new RegistryMetrics(name);
    }

    /** Whether {@code uri} is this registry itself (same scheme, host and port): only then does Authorization go along. */
    boolean sameOrigin(URI uri) {
        return base.getScheme().equalsIgnoreCase(uri.getScheme())
                && base.getHost().equalsIgnoreCase(uri.getHost())
                && port(base) == port(uri);
    }

    static int port(URI u) {
        return u.getPort() > 0 ? u.getPort() : "https".equalsIgnoreCase(u.getScheme()) ? 443 : 80;
    }

    URI resolve(String pathAndQuery) {
        return base.resolve(pathAndQuery);
    }

    /**
     * The credentials for a request with token scope {@code scope}: those of the scope's first
     * repository (a push's target; a cross-repository mount's source comes second).
     */
    Optional<Credentials> credentials(String scope) throws IOException {
        String repository = repositoryOf(scope);
        Found known = credentialsByRepository.get(repository);
        if (known != null && (System.nanoTime() - known.atNanos() < credentialsTtlNanos || !known.refreshing().compareAndSet(false, true))) {
            // Fresh, or another thread is looking them up again: these serve meanwhile.
            return known.credentials();
        }
        if (known != null) {
            // This thread looks again (an auth file re-read, a helper run); a failure keeps the old
            // ones for another while: a read must not fail because a helper did once.
            try {
                Optional<Credentials> again = credentialSource.find(repository);
                credentialsByRepository.put(repository, new Found(again, System.nanoTime(), new AtomicBoolean()));
                return again;
            } catch (IOException | RuntimeException e) {
                LOG.warn("{}: looking up credentials for {} again failed, keeping the ones found before: {}", name, repository,
                        e.getMessage());
                credentialsByRepository.put(repository, new Found(known.credentials(), System.nanoTime(), new AtomicBoolean()));
                return known.credentials();
            }
        }
        // The first lookup, once per repository however many threads ask (a helper may prompt to
        // unlock a keychain); a failure is not remembered, so the next request tries again.
        synchronized (firstLookup) {
            Found now = credentialsByRepository.get(repository);
            if (now != null) {
                return now.credentials();
            }
            Optional<Credentials> found = credentialSource.find(repository);
            credentialsByRepository.put(repository, new Found(found, System.nanoTime(), new AtomicBoolean()));
            return found;
        }
    }

    /** "repository:a/b:pull,push repository:c:pull" -> "a/b"; "" when the scope names no repository. */
    static String repositoryOf(String scope) {
        if (scope == null || !scope.startsWith("repository:")) {
            return "";
        }
        int end = scope.indexOf(' ');
        String first = end < 0 ? scope : scope.substring(0, end);
        int actions = first.lastIndexOf(':');
        return actions <= "repository".length() ? "" : first.substring("repository:".length(), actions);
    }
}
