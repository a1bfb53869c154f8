package io.strata.registry;

import java.net.URI;
import java.util.Optional;
import java.util.concurrent.Semaphore;

/**
 * What the client keeps per registry ({@code HOST[:PORT]}): its base URL (HTTPS, or HTTP for
 * loopback and --insecure-registry hosts), the credentials found for it, the last authentication
 * challenge it sent (so later requests authenticate up front instead of collecting a 401 each), its
 * tokens, the bound on requests in flight, and its counters.
 */
final class RegistryHost {
    final String name;
    final URI base;
    final Optional<Credentials> credentials;
    final Semaphore permits;
    final RegistryMetrics metrics;
    final TokenCache tokens = new TokenCache();
    /** The challenge of the last 401, or null while the registry has not asked for authentication. */
    volatile AuthChallenge challenge;

    RegistryHost(String name, URI base, Optional<Credentials> credentials, int maxConcurrency) {
        this.name = name;
        this.base = base;
        this.credentials = credentials;
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
}
