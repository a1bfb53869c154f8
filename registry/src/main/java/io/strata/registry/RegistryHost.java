package io.strata.registry;

import java.net.URI;
import java.io.IOException;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;

/**
 * What the client keeps per registry ({@code HOST[:PORT]}): its base URL (HTTPS, or HTTP for
 * loopback and --insecure-registry hosts), the credentials found for each of its repositories (an
 * auth file may hold one account per namespace), the last authentication
 * challenge it sent (so later requests authenticate up front instead of collecting a 401 each), its
 * tokens, the bound on requests in flight, and its counters.
 */
final class RegistryHost {
    final String name;
    final URI base;
    private final CredentialSource credentialSource;
    private final ConcurrentHashMap<String, Optional<Credentials>> credentialsByRepository = new ConcurrentHashMap<>();
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
        Optional<Credentials> known = credentialsByRepository.get(repository);
        if (known != null) {
            return known;
        }
        Optional<Credentials> found = credentialSource.find(repository);
        credentialsByRepository.putIfAbsent(repository, found);
        return found;
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
