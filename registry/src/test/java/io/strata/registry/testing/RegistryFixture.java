package io.strata.registry.testing;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real OCI registry for tests: Debian's {@code docker-registry} (CNCF distribution 2.8) on 127.0.0.1
 * with a random free port, filesystem storage under the test's directory and a config this class
 * writes (the packaged /etc/docker/registry/config.yml turns htpasswd on, so it is never used).
 *
 * <p>Variants: {@link #anonymous}, {@link #htpasswd} (Basic auth; distribution needs bcrypt entries,
 * made with {@code htpasswd -B}) and {@link #bearer} (distribution's {@code silly} auth, which answers
 * 401 with a Bearer challenge and accepts any bearer token, pointed at a {@link TokenRealm} this
 * fixture runs, so the client walks the whole token flow).
 *
 * <p>The registry writes its logs, including one Apache combined-format access line per request, to
 * stderr; they go to {@link #logFile()}, and {@link #accessLog()} parses the access lines (a range
 * read shows as status 206 with the bytes sent). {@link #stop()} and {@link #restart()} keep the port
 * and the storage, for tests of a registry that goes away and comes back.
 *
 * <p>Missing tools fail the test under CI=true and skip it elsewhere ({@link HostTools#require}).
 */
public final class RegistryFixture implements AutoCloseable {
    /** How long the registry may take to answer GET /v2/ after starting (a loaded 2-core CI box). */
    private static final long READY_TIMEOUT_MS = 30_000;
    private static final long STOP_TIMEOUT_MS = 10_000;

    private final Path dir;
    private final Path storage;
    private final Path config;
    private final Path logFile;
    private final TokenRealm tokenRealm;
    private final String authSection;
    private int port;
    private Process process;

    private RegistryFixture(Path dir, String authSection, TokenRealm tokenRealm) throws IOException {
        this.dir = Files.createDirectories(dir);
        this.storage = Files.createDirectories(dir.resolve("storage"));
        this.config = dir.resolve("config.yml");
        this.logFile = dir.resolve("registry.log");
        this.authSection = authSection;
        this.tokenRealm = tokenRealm;
    }

    /** Fails (CI) or skips the calling test when docker-registry is not installed. */
    public static void requireTools() {
        HostTools.requireTool("docker-registry", "docker-registry");
    }

    /** A registry that needs no credentials. */
    public static RegistryFixture anonymous(Path dir) throws IOException {
        return startNew(new RegistryFixture(dir, "", null));
    }

    /** A registry with Basic auth: one user, stored bcrypt-hashed by {@code htpasswd -B}. */
    public static RegistryFixture htpasswd(Path dir, String user, String password) throws IOException {
        requireTools();
        HostTools.requireTool("htpasswd", "apache2-utils");
        Files.createDirectories(dir);
        Path file = dir.resolve("htpasswd");
        // -i reads the password from stdin, so it never shows in a process listing.
        ProcessBuilder pb = new ProcessBuilder("htpasswd", "-B", "-i", "-c", file.toString(), user)
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("htpasswd.out").toFile());
        Process p = pb.start();
        p.getOutputStream().write((password + "\n").getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        waitOrKill(p, 30_000, "htpasswd");
        if (p.exitValue() != 0) {
            throw new IOException("htpasswd exited " + p.exitValue() + ": " + Files.readString(dir.resolve("htpasswd.out")));
        }
        String auth = "auth:\n  htpasswd:\n    realm: strata-test\n    path: " + file + "\n";
        return startNew(new RegistryFixture(dir, auth, null));
    }

    /**
     * A registry whose 401 carries {@code Bearer realm=<token realm>,service="strata-test"}; the token
     * realm (run by this fixture) hands out tokens, optionally only to the given credentials.
     */
    public static RegistryFixture bearer(Path dir, TokenRealm realm) throws IOException {
        Objects.requireNonNull(realm, "realm");
        String auth = "auth:\n  silly:\n    realm: " + realm.uri() + "\n    service: " + TokenRealm.SERVICE + "\n";
        return startNew(new RegistryFixture(dir, auth, realm));
    }

    private static RegistryFixture startNew(RegistryFixture f) throws IOException {
        requireTools();
        IOException last = null;
        // A free port found now may be taken before the registry binds it; try a few.
        for (int attempt = 0; attempt < 3; attempt++) {
            f.port = freePort();
            try {
                f.start();
                return f;
            } catch (IOException e) {
                last = e;
                f.stop();
            }
        }
        if (f.tokenRealm != null) {
            f.tokenRealm.close();
        }
        throw last;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private void start() throws IOException {
        String yaml = "version: 0.1\n"
                + "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n"
                + "storage:\n  filesystem:\n    rootdirectory: " + storage + "\n  delete:\n    enabled: true\n"
                + "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                + "http:\n  addr: 127.0.0.1:" + port + "\n  secret: strata-test-secret\n"
                + authSection;
        Files.writeString(config, yaml);
        ProcessBuilder pb = new ProcessBuilder("docker-registry", "serve", config.toString())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
        // Settings in the environment override the config file; the test's config is the whole story.
        pb.environment().keySet().removeIf(k -> k.startsWith("REGISTRY_"));
        process = pb.start();
        awaitReady();
    }

    private void awaitReady() throws IOException {
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        URI v2 = baseUri().resolve("/v2/");
        while (true) {
            if (!process.isAlive()) {
                throw new IOException("docker-registry exited " + process.exitValue() + " before it was ready: " + logTail());
            }
            try {
                HttpURLConnection c = (HttpURLConnection) v2.toURL().openConnection();
                c.setConnectTimeout(1000);
                c.setReadTimeout(2000);
                int status = c.getResponseCode();
                c.disconnect();
                if (status == 200 || status == 401) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            if (System.currentTimeMillis() > deadline) {
                throw new IOException("docker-registry did not answer GET /v2/ within " + READY_TIMEOUT_MS + " ms: " + logTail());
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted waiting for docker-registry", e);
            }
        }
    }

    /** Stops the registry (SIGTERM, then SIGKILL after a deadline); storage and port are kept. */
    public synchronized void stop() {
        if (process != null) {
            process.destroy();
            try {
                waitOrKill(process, STOP_TIMEOUT_MS, "docker-registry");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            process = null;
        }
    }

    /** Starts the registry again on the same port with the same storage (after {@link #stop()}). */
    public synchronized void restart() throws IOException {
        stop();
        start();
    }

    public boolean isRunning() {
        Process p = process;
        return p != null && p.isAlive();
    }

    @Override
    public void close() {
        try {
            stop();
        } finally {
            if (tokenRealm != null) {
                tokenRealm.close();
            }
        }
    }

    private static void waitOrKill(Process p, long timeoutMs, String what) throws IOException {
        try {
            if (!p.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                if (!p.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) {
                    throw new IOException(what + " did not exit after SIGKILL");
                }
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for " + what, e);
        }
    }

    /** {@code 127.0.0.1:PORT}: the registry part of a reference. */
    public String registry() {
        return "127.0.0.1:" + port;
    }

    public int port() {
        return port;
    }

    /** {@code http://127.0.0.1:PORT} */
    public URI baseUri() {
        return URI.create("http://" + registry());
    }

    /** {@code 127.0.0.1:PORT/REPO_AND_TAG}, e.g. {@code reference("strata/demo:v1")}. */
    public String reference(String repositoryAndTag) {
        return registry() + "/" + repositoryAndTag;
    }

    /** The registry's storage root (filesystem driver). */
    public Path storageDir() {
        return storage;
    }

    public Path directory() {
        return dir;
    }

    /** Everything the registry printed (its log and access lines), across restarts. */
    public Path logFile() {
        return logFile;
    }

    /** The token realm of a {@link #bearer} registry, else null. */
    public TokenRealm tokenRealm() {
        return tokenRealm;
    }

    public String log() throws IOException {
        return Files.exists(logFile) ? Files.readString(logFile, StandardCharsets.UTF_8) : "";
    }

    private String logTail() {
        try {
            String all = log();
            return all.length() > 2000 ? all.substring(all.length() - 2000) : all;
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** One request as the registry's access log records it. */
    public record AccessLogEntry(String method, String path, int status, long bytes) {
        /** A blob read answered with part of the blob. */
        public boolean isRangeRead() {
            return method.equals("GET") && path.contains("/blobs/") && status == 206;
        }
    }

    // 127.0.0.1 - - [01/Dec/2026:15:36:19 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "curl/7.88.1"
    private static final Pattern ACCESS_LINE =
            Pattern.compile("^\\S+ \\S+ \\S+ \\[[^]]*] \"(\\S+) (\\S+) [^\"]*\" (\\d{3}) (\\d+|-) .*$");

    /** The access-log lines so far, in order. */
    public List<AccessLogEntry> accessLog() throws IOException {
        List<AccessLogEntry> out = new ArrayList<>();
        for (String line : log().split("\n")) {
            Matcher m = ACCESS_LINE.matcher(line);
            if (m.matches()) {
                long bytes = m.group(4).equals("-") ? 0 : Long.parseLong(m.group(4));
                out.add(new AccessLogEntry(m.group(1), m.group(2), Integer.parseInt(m.group(3)), bytes));
            }
        }
        return out;
    }
}
