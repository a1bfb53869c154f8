package io.strata.registry;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What Strata authenticates to one registry repository with: a user name and password, or an
 * identity token (the refresh token {@code docker login} stores for Azure and other OAuth2
 * registries, which only a token service takes). {@link #toString()} never shows a secret; nothing
 * in this module puts one into a log line or an exception message.
 *
 * <p>{@link #lookup} finds them the way podman/skopeo (containers-auth.json(5)) and docker do, first
 * file with a match wins: {@code --creds USER:PASS}; then {@code $REGISTRY_AUTH_FILE} if set, else
 * {@code $XDG_RUNTIME_DIR/containers/auth.json} (without XDG_RUNTIME_DIR: {@code /run/containers/UID/auth.json})
 * and {@code $XDG_CONFIG_HOME/containers/auth.json} (default {@code ~/.config}); then
 * {@code $DOCKER_CONFIG/config.json}, else {@code ~/.docker/config.json}. How one file is searched
 * (namespaced keys, credential helpers) is {@link AuthFile}'s.
 */
public final class Credentials {
    private final String username;
    private final String password;
    private final String identityToken;
    private final String origin;

    public Credentials(String username, String password, String origin) {
        this(username, password, null, origin);
    }

    private Credentials(String username, String password, String identityToken, String origin) {
        this.username = username;
        this.password = password;
        this.identityToken = identityToken;
        this.origin = origin;
    }

    /** An identity token (OAuth2 refresh token): exchanged at the registry's token service, never sent as Basic. */
    static Credentials identityToken(String username, String token, String origin) {
        return new Credentials(username == null || username.isEmpty() ? "<token>" : username, "", token, origin);
    }

    /** Parses {@code USER:PASS} (the password may contain ':'); a one-line error never echoes it. */
    public static Credentials parse(String userColonPass, String origin) {
        int colon = userColonPass.indexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException(origin + " must be USER:PASSWORD");
        }
        return new Credentials(userColonPass.substring(0, colon), userColonPass.substring(colon + 1), origin);
    }

    public String username() {
        return username;
    }

    String password() {
        return password;
    }

    /** The identity token, or empty for a user name and password. */
    Optional<String> identityToken() {
        return Optional.ofNullable(identityToken);
    }

    /** Where these came from (for messages): "--creds", an auth file's path, or a credential helper. */
    public String origin() {
        return origin;
    }

    /** {@code Basic base64(user:pass)}; empty for an identity token, which Basic auth cannot carry. */
    Optional<String> basicHeader() {
        if (identityToken != null) {
            return Optional.empty();
        }
        return Optional.of("Basic " + Base64.getEncoder().encodeToString((username + ":" + password).getBytes(StandardCharsets.UTF_8)));
    }

    @Override
    public String toString() {
        return "Credentials[user=" + username + (identityToken != null ? ", identity token" : "") + ", from " + origin + "]";
    }

    /**
     * The credentials for {@code repository} on {@code registry} ({@code HOST[:PORT]}), or empty.
     *
     * @param explicit {@code --creds}, if given (it applies to every registry of the run)
     * @param env the environment (System.getenv() in production; tests pass their own); PATH in it
     *     is where credential helpers are found
     */
    public static Optional<Credentials> lookup(String registry, String repository, Credentials explicit, Map<String, String> env)
            throws IOException {
        if (explicit != null) {
            return Optional.of(explicit);
        }
        for (Path file : authFiles(env, currentUid())) {
            Optional<Credentials> c = AuthFile.find(file, registry, repository, env);
            if (c.isPresent()) {
                return c;
            }
        }
        return Optional.empty();
    }

    static List<Path> authFiles(Map<String, String> env, Optional<Integer> uid) {
        List<Path> files = new ArrayList<>();
        String authFile = env.get("REGISTRY_AUTH_FILE");
        if (set(authFile)) {
            files.add(Path.of(authFile));
        } else {
            if (set(env.get("XDG_RUNTIME_DIR"))) {
                files.add(Path.of(env.get("XDG_RUNTIME_DIR"), "containers", "auth.json"));
            } else {
                // podman's fallback when there is no XDG_RUNTIME_DIR (a service, a cron job).
                uid.ifPresent(u -> files.add(Path.of("/run/containers", Integer.toString(u), "auth.json")));
            }
            if (set(env.get("XDG_CONFIG_HOME"))) {
                files.add(Path.of(env.get("XDG_CONFIG_HOME"), "containers", "auth.json"));
            } else if (set(env.get("HOME"))) {
                files.add(Path.of(env.get("HOME"), ".config", "containers", "auth.json"));
            }
        }
        String dockerConfig = env.get("DOCKER_CONFIG");
        if (set(dockerConfig)) {
            files.add(Path.of(dockerConfig, "config.json"));
        } else if (set(env.get("HOME"))) {
            files.add(Path.of(env.get("HOME"), ".docker", "config.json"));
        }
        return files;
    }

    private static boolean set(String value) {
        return value != null && !value.isEmpty();
    }

    private static Optional<Integer> currentUid() {
        try {
            return Optional.of((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid"));
        } catch (IOException | RuntimeException noProc) {
            return Optional.empty();
        }
    }
}
