package io.strata.cli;

import io.strata.registry.Credentials;
import io.strata.registry.ImageReference;
import io.strata.registry.RegistryClient;
import io.strata.registry.RegistryOptions;
import io.strata.registry.RetryPolicy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * How a command talks to OCI registries: plain-HTTP registries, credentials, retries, timeouts and
 * connections (RegistryOptions documents the defaults and why). A mixin for every command that takes
 * an image reference.
 */
final class RegistryCliOptions {
    @Option(names = "--insecure-registry", paramLabel = "HOST[:PORT]",
            description = "Speak plain HTTP to this registry (repeatable). Loopback registries always are; every other is "
                    + "HTTPS verified against the system trust store.")
    List<String> insecureRegistries = new ArrayList<>();

    @Option(names = "--creds", paramLabel = "USER:PASSWORD",
            description = "Registry credentials. Default: $REGISTRY_AUTH_FILE, or $XDG_RUNTIME_DIR/containers/auth.json and "
                    + "~/.config/containers/auth.json; then $DOCKER_CONFIG/config.json or ~/.docker/config.json "
                    + "(namespaced keys, credHelpers and credsStore as podman and docker read them).")
    String creds;

    @Option(names = "--registry-retries", paramLabel = "N", defaultValue = "5",
            description = "Tries per registry request, for I/O errors, 408, 429 and 5xx but 501 (default: ${DEFAULT-VALUE}).")
    int retries;

    @Option(names = "--registry-connect-timeout", paramLabel = "SECONDS", defaultValue = "5",
            description = "Connect timeout (default: ${DEFAULT-VALUE}).")
    double connectTimeout;

    @Option(names = "--registry-try-timeout", paramLabel = "SECONDS", defaultValue = "20",
            description = "One try of a request, until its whole answer (default: ${DEFAULT-VALUE}).")
    double tryTimeout;

    @Option(names = "--registry-deadline", paramLabel = "SECONDS", defaultValue = "60",
            description = "One read with all its retries; a whole-blob transfer (push's uploads) runs until nothing moves for this plus --registry-try-timeout (default: ${DEFAULT-VALUE}).")
    double deadline;

    @Option(names = "--registry-connections", paramLabel = "N", defaultValue = "" + io.strata.registry.RegistryOptions.DEFAULT_MAX_CONCURRENCY,
            description = "Requests in flight to one registry at once (default: ${DEFAULT-VALUE}).")
    int connections;

    /** The options, or a usage error (exit 2) naming the bad one. */
    RegistryOptions options(CommandLine cmd) {
        if (retries < 1 || retries > 100) {
            throw new CommandLine.ParameterException(cmd, "--registry-retries must be 1..100, not " + retries);
        }
        if (connections < 1 || connections > 1024) {
            throw new CommandLine.ParameterException(cmd, "--registry-connections must be 1..1024, not " + connections);
        }
        try {
            Set<String> insecure = new HashSet<>();
            for (String h : insecureRegistries) {
                if (h.matches("[A-Za-z0-9-]+")) {
                    // A one-word host ("myregistry"): as "myregistry/x" a reference would mean Docker Hub's
                    // repository myregistry/x, and Docker Hub would have been spoken to over plain HTTP.
                    insecure.add(h.toLowerCase(java.util.Locale.ROOT));
                } else {
                    // Parsed as a reference's registry part so "HOST:PORT" is checked and lower-cased the same way.
                    String registry = null;
                    if (!h.contains("/") && !h.contains("@") && ImageReference.looksLikeReference(h + "/x")) {
                        try {
                            registry = ImageReference.parse(h + "/x").registry();
                        } catch (IllegalArgumentException notAHost) {
                            registry = null;
                        }
                    }
                    if (registry == null) {
                        // USER:PASS@HOST is URL habit: not echoed.
                        String shown = h.contains("@") ? "***" + h.substring(h.lastIndexOf('@')) : h;
                        throw new IllegalArgumentException("--insecure-registry '" + shown.replaceAll("\\p{Cntrl}", "?")
                                + "' is not HOST[:PORT]");
                    }
                    insecure.add(registry);
                }
            }
            Credentials credentials = creds == null ? null : Credentials.parse(creds, "--creds");
            return RegistryOptions.defaults()
                    .withInsecureRegistries(insecure)
                    .withCredentials(credentials)
                    .withRetry(RetryPolicy.DEFAULT.withMaxAttempts(retries))
                    .withTimeouts(seconds("--registry-connect-timeout", connectTimeout),
                            seconds("--registry-try-timeout", tryTimeout), seconds("--registry-deadline", deadline))
                    .withMaxConcurrency(connections);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, e.getMessage());
        }
    }

    RegistryClient client(CommandLine cmd) {
        return new RegistryClient(options(cmd));
    }

    private static Duration seconds(String option, double s) {
        if (!(s > 0) || s > 86_400) {
            throw new IllegalArgumentException(option + " must be more than 0 and at most 86400 seconds, not " + s);
        }
        return Duration.ofMillis(Math.max(1, Math.round(s * 1000)));
    }
}
