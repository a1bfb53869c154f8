package io.strata.registry;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * A user name and password for one registry. {@link #toString()} never shows the password; nothing
 * in this module puts either into a log line or an exception message.
 *
 * <p>{@link #lookup} finds them the way podman/skopeo and docker do, first match wins:
 * {@code --creds USER:PASS}; {@code $REGISTRY_AUTH_FILE}, else {@code $XDG_RUNTIME_DIR/containers/auth.json};
 * {@code $DOCKER_CONFIG/config.json}, else {@code ~/.docker/config.json}. In the files,
 * {@code auths.<key>.auth} is base64(user:pass); the key is the registry's {@code HOST[:PORT]}, possibly
 * written as a URL ({@code https://HOST/v1/}), and Docker Hub's is {@code https://index.docker.io/v1/}.
 * Credential helpers ({@code credsStore}) are not run.
 */
public final class Credentials {
    private final String username;
    private final String password;
    private final String origin;

    public Credentials(String username, String password, String origin) {
        this.username = username;
        this.password = password;
        this.origin = origin;
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

    /** Where these came from (for messages): "--creds", or the auth file's path. */
    public String origin() {
        return origin;
    }

    String basicHeader() {
        return "Basic " + Base64.getEncoder().encodeToString((username + ":" + password).getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public String toString() {
        return "Credentials[user=" + username + ", from " + origin + "]";
    }

    /**
     * The credentials for {@code registry} ({@code HOST[:PORT]}), or empty.
     *
     * @param explicit {@code --creds}, if given (it applies to every registry of the run)
     * @param env the environment (System.getenv() in production; tests pass their own)
     */
    public static Optional<Credentials> lookup(String registry, Credentials explicit, Map<String, String> env)
            throws IOException {
        if (explicit != null) {
            return Optional.of(explicit);
        }
        for (Path file : authFiles(env)) {
            Optional<Credentials> c = fromAuthFile(file, registry);
            if (c.isPresent()) {
                return c;
            }
        }
        return Optional.empty();
    }

    static List<Path> authFiles(Map<String, String> env) {
        List<Path> files = new ArrayList<>();
        String authFile = env.get("REGISTRY_AUTH_FILE");
        if (authFile != null && !authFile.isEmpty()) {
            files.add(Path.of(authFile));
        } else if (env.get("XDG_RUNTIME_DIR") != null && !env.get("XDG_RUNTIME_DIR").isEmpty()) {
            files.add(Path.of(env.get("XDG_RUNTIME_DIR"), "containers", "auth.json"));
        }
        String dockerConfig = env.get("DOCKER_CONFIG");
        if (dockerConfig != null && !dockerConfig.isEmpty()) {
            files.add(Path.of(dockerConfig, "config.json"));
        } else if (env.get("HOME") != null && !env.get("HOME").isEmpty()) {
            files.add(Path.of(env.get("HOME"), ".docker", "config.json"));
        }
        return files;
    }

    static Optional<Credentials> fromAuthFile(Path file, String registry) throws IOException {
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        JsonNode root;
        try {
            root = JsonTrees.read(Files.readAllBytes(file));
        } catch (IOException e) {
            // Jackson's message quotes the input around the error, which may be a secret: say where only.
            throw new RegistryException("cannot read auth file " + file + ": not valid JSON");
        }
        JsonNode auths = root == null ? null : root.get("auths");
        if (auths == null || !auths.isObject()) {
            return Optional.empty();
        }
        String want = normalize(registry);
        for (Iterator<Map.Entry<String, JsonNode>> it = auths.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!normalize(e.getKey()).equals(want)) {
                continue;
            }
            JsonNode auth = e.getValue().get("auth");
            if (auth == null || !auth.isTextual() || auth.asText().isEmpty()) {
                continue;
            }
            String decoded;
            try {
                decoded = new String(Base64.getDecoder().decode(auth.asText().trim()), StandardCharsets.UTF_8);
            } catch (IllegalArgumentException bad) {
                throw new RegistryException("auth file " + file + ": auths." + e.getKey() + ".auth is not base64");
            }
            int colon = decoded.indexOf(':');
            if (colon <= 0) {
                throw new RegistryException("auth file " + file + ": auths." + e.getKey() + ".auth is not base64(user:password)");
            }
            return Optional.of(new Credentials(decoded.substring(0, colon), decoded.substring(colon + 1), file.toString()));
        }
        return Optional.empty();
    }

    /** "https://Host:5000/v1/" -> "host:5000"; Docker Hub's names -> "docker.io". */
    static String normalize(String key) {
        String k = key.trim().toLowerCase(Locale.ROOT);
        int scheme = k.indexOf("://");
        if (scheme >= 0) {
            k = k.substring(scheme + 3);
        }
        int slash = k.indexOf('/');
        if (slash >= 0) {
            k = k.substring(0, slash);
        }
        if (k.equals("index.docker.io") || k.equals(ImageReference.DOCKER_HUB_HOST) || k.equals("registry.hub.docker.com")) {
            return "docker.io";
        }
        return k;
    }
}
