package io.strata.registry;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * One auth file (podman's auth.json or docker's config.json) searched for one repository:
 * <ol>
 *   <li>{@code credHelpers.<host>}: that credential helper is asked;</li>
 *   <li>{@code credsStore}: docker's credential store for every registry (when it is set, docker
 *       keeps no passwords in the file; podman does not use it);</li>
 *   <li>{@code auths}: the most specific key wins (containers-auth.json(5)): for
 *       {@code quay.io/orga/app} first {@code quay.io/orga/app}, then {@code quay.io/orga}, then
 *       {@code quay.io}. A key written as a URL ({@code https://HOST/v1/}, docker's legacy form) names
 *       the whole host, and a key written as the host itself wins over it. An entry holds {@code auth}
 *       (base64 of user:password), or {@code identitytoken} (an OAuth2 refresh token), or
 *       {@code username} and {@code password}.</li>
 * </ol>
 * A helper or an entry that has nothing for the registry lets the search go on. Docker Hub's
 * helpers are asked for {@code https://index.docker.io/v1/} (docker's name), then for
 * {@code docker.io} (podman's).
 */
final class AuthFile {
    /** The key Docker Hub's credentials are stored under by docker login, and what its helpers are asked for. */
    static final String DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/";

    private AuthFile() {
    }

    static Optional<Credentials> find(Path file, String registry, String repository, Map<String, String> env) throws IOException {
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
        if (root == null || !root.isObject()) {
            return Optional.empty();
        }
        String host = normalizeHost(registry);
        List<String> serverNames = host.equals("docker.io") ? List.of(DOCKER_HUB_SERVER_URL, "docker.io") : List.of(registry);
        JsonNode helpers = root.path("credHelpers");
        for (Iterator<Map.Entry<String, JsonNode>> it = helpers.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (normalizeKey(e.getKey()).equals(host) && e.getValue().isTextual()) {
                Optional<Credentials> c = ask(e.getValue().asText(), serverNames, env, file + " credHelpers");
                if (c.isPresent()) {
                    return c;
                }
            }
        }
        JsonNode store = root.path("credsStore");
        if (store.isTextual() && !store.asText().isEmpty()) {
            Optional<Credentials> c = ask(store.asText(), serverNames, env, file + " credsStore");
            if (c.isPresent()) {
                return c;
            }
        }
        Map<String, JsonNode> auths = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.path("auths").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().contains("://")) {
                auths.putIfAbsent(normalizeKey(e.getKey()), e.getValue()); // docker's legacy form: only if nothing better
            } else {
                auths.put(normalizeKey(e.getKey()), e.getValue());
            }
        }
        for (String key : candidates(host, repository)) {
            JsonNode entry = auths.get(key);
            if (entry != null) {
                Optional<Credentials> c = decode(entry, file, key);
                if (c.isPresent()) {
                    return c;
                }
            }
        }
        return Optional.empty();
    }

    private static Optional<Credentials> ask(String helper, List<String> serverNames, Map<String, String> env, String configuredIn)
            throws IOException {
        for (String server : serverNames) {
            Optional<Credentials> c = CredentialHelper.get(helper, server, env, configuredIn);
            if (c.isPresent()) {
                return c;
            }
        }
        return Optional.empty();
    }

    /** {@code HOST/a/b/c}, {@code HOST/a/b}, {@code HOST/a}, {@code HOST}: most specific first. */
    static List<String> candidates(String host, String repository) {
        List<String> keys = new ArrayList<>();
        String path = repository == null ? "" : repository;
        while (!path.isEmpty()) {
            keys.add(host + "/" + path);
            int slash = path.lastIndexOf('/');
            path = slash < 0 ? "" : path.substring(0, slash);
        }
        keys.add(host);
        return keys;
    }

    private static Optional<Credentials> decode(JsonNode entry, Path file, String key) throws RegistryException {
        String user = null;
        String password = null;
        JsonNode auth = entry.get("auth");
        if (auth != null && auth.isTextual() && !auth.asText().isBlank()) {
            String decoded;
            try {
                decoded = new String(Base64.getDecoder().decode(auth.asText().trim()), StandardCharsets.UTF_8);
            } catch (IllegalArgumentException bad) {
                throw new RegistryException("auth file " + file + ": auths." + key + ".auth is not base64");
            }
            int colon = decoded.indexOf(':');
            if (colon <= 0) {
                throw new RegistryException("auth file " + file + ": auths." + key + ".auth is not base64(user:password)");
            }
            user = decoded.substring(0, colon);
            password = decoded.substring(colon + 1);
        } else if (entry.path("username").isTextual() && entry.path("password").isTextual()) {
            user = entry.path("username").asText();
            password = entry.path("password").asText();
        }
        JsonNode identity = entry.get("identitytoken");
        if (identity != null && identity.isTextual() && !identity.asText().isEmpty()) {
            return Optional.of(Credentials.identityToken(user, identity.asText(), file.toString()));
        }
        if (user == null || user.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Credentials(user, password, file.toString()));
    }

    /** An auths key: "https://Host:5000/v1/" -> "host:5000" (a URL names a host), "Quay.io/Orga/" -> "quay.io/orga". */
    static String normalizeKey(String key) {
        String k = key.trim().toLowerCase(Locale.ROOT);
        int scheme = k.indexOf("://");
        if (scheme >= 0) {
            k = k.substring(scheme + 3);
            int slash = k.indexOf('/');
            return normalizeHost(slash < 0 ? k : k.substring(0, slash));
        }
        while (k.endsWith("/")) {
            k = k.substring(0, k.length() - 1);
        }
        int slash = k.indexOf('/');
        return slash < 0 ? normalizeHost(k) : normalizeHost(k.substring(0, slash)) + k.substring(slash);
    }

    /** Docker Hub's several names -> "docker.io"; others lower case as they are. */
    static String normalizeHost(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        if (h.equals("index.docker.io") || h.equals(ImageReference.DOCKER_HUB_HOST) || h.equals("registry.hub.docker.com")) {
            return "docker.io";
        }
        return h;
    }
}
