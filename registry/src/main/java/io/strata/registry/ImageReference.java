package io.strata.registry;

import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A reference to an image in an OCI registry: {@code [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]}.
 *
 * <p>The grammar follows the distribution project's reference grammar ({@code reference/regexp.go}):
 * the first path component is a registry host when it contains a '.' or a ':' or is {@code localhost}
 * (an IPv6 literal goes in brackets); otherwise the reference names Docker Hub, whose API host is
 * {@code registry-1.docker.io} and whose one-component names live under {@code library/}; so do
 * references that start with {@code docker.io/} or {@code index.docker.io/}. Repository
 * components are lower case. A reference with a digest names that exact manifest (a tag next to it is
 * kept for display only); one with neither means tag {@code latest}.
 */
public final class ImageReference {
    /** The scheme prefix skopeo and containers/image use; accepted and dropped. */
    public static final String DOCKER_SCHEME = "docker://";
    public static final String DEFAULT_TAG = "latest";
    static final String DOCKER_HUB_HOST = "registry-1.docker.io";
    /** What people write for Docker Hub in a reference; its API answers at {@link #DOCKER_HUB_HOST}. */
    private static final java.util.Set<String> DOCKER_HUB_NAMES = java.util.Set.of("docker.io", "index.docker.io");

    private static final Pattern COMPONENT = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern DIGEST = Pattern.compile("sha256:[a-f0-9]{64}");
    private static final Pattern HOST_NAME =
            Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*");
    private static final Pattern IPV6 = Pattern.compile("\\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?]");
    private static final Pattern HOST_PORT = Pattern.compile("(\\[[^]]*]|[^:]+)(?::([0-9]+))?");

    private final String host;
    private final int port;
    private final String repository;
    private final String tag;
    private final String digest;

    private ImageReference(String host, int port, String repository, String tag, String digest) {
        this.host = host;
        this.port = port;
        this.repository = repository;
        this.tag = tag;
        this.digest = digest;
    }

    /**
     * Parses a reference.
     *
     * @throws IllegalArgumentException with a one-line message naming the reference and what is wrong
     */
    public static ImageReference parse(String text) {
        Objects.requireNonNull(text, "reference");
        String s = text.startsWith(DOCKER_SCHEME) ? text.substring(DOCKER_SCHEME.length()) : text;
        if (s.isEmpty()) {
            throw bad(text, "it is empty");
        }
        String digest = null;
        int at = s.indexOf('@');
        if (at >= 0 && !s.startsWith("sha256:", at + 1)) {
            // USER:PASS@HOST/... is URL habit, not reference grammar: say so without echoing the secret.
            String masked = (text.startsWith(DOCKER_SCHEME) ? DOCKER_SCHEME : "") + "***" + s.substring(s.lastIndexOf('@'));
            throw bad(masked, "a reference carries no user name or password; give --creds USER:PASS or an auth file");
        }
        if (at >= 0) {
            digest = s.substring(at + 1);
            s = s.substring(0, at);
            if (!DIGEST.matcher(digest).matches()) {
                throw bad(text, "the digest must be sha256: and 64 lower-case hex digits");
            }
        }
        String host;
        int port = -1;
        String path;
        int slash = s.indexOf('/');
        String first = slash < 0 ? "" : s.substring(0, slash);
        if (slash > 0 && (first.contains(".") || first.contains(":") || first.equals("localhost")
                || first.startsWith("["))) {
            Matcher hp = HOST_PORT.matcher(first);
            if (!hp.matches()) {
                throw bad(text, "the registry host '" + first + "' is not HOST[:PORT]");
            }
            host = hp.group(1);
            if (!(HOST_NAME.matcher(host).matches() || IPV6.matcher(host).matches())) {
                throw bad(text, "the registry host '" + host + "' is not a host name or address");
            }
            if (hp.group(2) != null) {
                port = parsePort(text, hp.group(2));
            }
            path = s.substring(slash + 1);
            if (port < 0 && DOCKER_HUB_NAMES.contains(host.toLowerCase(Locale.ROOT))) {
                // docker.io/x and index.docker.io/x are Docker Hub's names for it, not API hosts
                // (containers/image docker_reference normalizes them the same way).
                host = DOCKER_HUB_HOST;
            }
        } else {
            host = DOCKER_HUB_HOST;
            path = s;
        }
        String tag = null;
        int lastSlash = path.lastIndexOf('/');
        int colon = path.indexOf(':', lastSlash + 1);
        if (colon >= 0) {
            tag = path.substring(colon + 1);
            path = path.substring(0, colon);
            if (!TAG.matcher(tag).matches()) {
                throw bad(text, "the tag '" + tag + "' must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'");
            }
        }
        if (path.isEmpty()) {
            throw bad(text, "it names no repository");
        }
        for (String component : path.split("/", -1)) {
            if (!COMPONENT.matcher(component).matches()) {
                throw bad(text, "the repository component '" + component
                        + "' must be lower-case letters and digits, separated by '.', '_', '__' or '-'");
            }
        }
        if (path.length() > 255) {
            throw bad(text, "the repository name is longer than 255 characters");
        }
        if (host.equals(DOCKER_HUB_HOST) && !path.contains("/")) {
            path = "library/" + path;
        }
        if (tag == null && digest == null) {
            tag = DEFAULT_TAG;
        }
        return new ImageReference(host.toLowerCase(Locale.ROOT), port, path, tag, digest);
    }

    /**
     * Whether a command-line argument is meant as a reference rather than a local path: it starts with
     * {@code docker://}, or its first component names a registry host (has a '.' or ':' and is not an
     * existing file, which the caller checks first).
     */
    public static boolean looksLikeReference(String text) {
        if (text.startsWith(DOCKER_SCHEME)) {
            return true;
        }
        int slash = text.indexOf('/');
        if (slash <= 0 || text.startsWith(".")) {
            return false;
        }
        String first = text.substring(0, slash);
        return first.contains(".") || first.contains(":") || first.equals("localhost");
    }

    private static int parsePort(String text, String digits) {
        int p;
        try {
            p = digits.length() > 5 ? -1 : Integer.parseInt(digits);
        } catch (NumberFormatException e) {
            p = -1;
        }
        if (p < 1 || p > 65535) {
            throw bad(text, "the port " + digits + " is not in 1-65535");
        }
        return p;
    }

    private static IllegalArgumentException bad(String text, String why) {
        return new IllegalArgumentException("bad image reference '" + printable(text) + "': " + printable(why));
    }

    /** Keeps a one-line message one line whatever the user typed. */
    private static String printable(String text) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < text.length() && i < 400; i++) {
            char c = text.charAt(i);
            b.append(c < 0x20 || c == 0x7f ? '?' : c);
        }
        return b.toString();
    }

    /** The registry host name or address (an IPv6 address keeps its brackets), lower case. */
    public String host() {
        return host;
    }

    /** The port given in the reference, or empty for the scheme's default. */
    public Optional<Integer> port() {
        return port < 0 ? Optional.empty() : Optional.of(port);
    }

    /** {@code HOST[:PORT]} as written: the key for per-registry state, --insecure-registry and auth files. */
    public String registry() {
        return port < 0 ? host : host + ":" + port;
    }

    public String repository() {
        return repository;
    }

    public Optional<String> tag() {
        return Optional.ofNullable(tag);
    }

    public Optional<String> digest() {
        return Optional.ofNullable(digest);
    }

    /** What goes after {@code /manifests/}: the digest when there is one, else the tag. */
    public String manifestReference() {
        return digest != null ? digest : tag;
    }

    /** The same repository with another tag (no digest): push targets and tests. */
    public ImageReference withTag(String newTag) {
        if (!TAG.matcher(newTag).matches()) {
            throw bad(newTag, "not a valid tag");
        }
        return new ImageReference(host, port, repository, newTag, null);
    }

    /** The same repository pinned to a digest (keeps the tag for display). */
    public ImageReference withDigest(String newDigest) {
        if (!DIGEST.matcher(newDigest).matches()) {
            throw bad(newDigest, "not a sha256 digest");
        }
        return new ImageReference(host, port, repository, tag, newDigest);
    }

    /** Another repository on the same registry: the source of a cross-repository mount. */
    public ImageReference inRepository(String otherRepository) {
        return parse(registry() + "/" + otherRepository);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder(registry()).append('/').append(repository);
        if (tag != null) {
            b.append(':').append(tag);
        }
        if (digest != null) {
            b.append('@').append(digest);
        }
        return b.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ImageReference r && r.toString().equals(toString());
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }
}
