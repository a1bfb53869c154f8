package io.strata.registry;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * Asks a docker credential helper ({@code docker-credential-NAME}, found on PATH) for a registry's
 * credentials, as docker and containers/image do: {@code NAME get} with the server URL on stdin,
 * answered on stdout with {@code {"ServerURL":..,"Username":..,"Secret":..}}; a user name of
 * {@code <token>} means the secret is an identity token. A helper that has none says so (exit 1,
 * "credentials not found in native keychain"): then the search goes on. The answer is never logged;
 * a failing helper's first line of output is quoted in the error, its stderr never.
 */
final class CredentialHelper {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    /** How long a helper may take: a keychain that asks the desktop to unlock can take a while. */
    static final long TIMEOUT_SECONDS = 30;
    private static final int MAX_ANSWER = 64 << 10;
    /** How long after the helper exits its stdout may stay open (a child it left behind holds it). */
    private static final long AFTER_EXIT_MILLIS = 1000;
    private static final String NOT_FOUND = "credentials not found";

    private CredentialHelper() {
    }

    static Optional<Credentials> get(String name, String serverUrl, Map<String, String> env, String configuredIn)
            throws IOException {
        return get(name, serverUrl, env, configuredIn, TIMEOUT_SECONDS);
    }

    static Optional<Credentials> get(String name, String serverUrl, Map<String, String> env, String configuredIn, long timeoutSeconds)
            throws IOException {
        if (!NAME.matcher(name).matches()) {
            throw new RegistryException(configuredIn + " names the credential helper '" + RegistryException.oneLine(name)
                    + "', which is not a helper name");
        }
        String program = "docker-credential-" + name;
        Path exe = onPath(program, env.get("PATH"))
                .orElseThrow(() -> new RegistryException(configuredIn + " names the credential helper '" + name + "', but "
                        + program + " is not on PATH (install it, or give --creds USER:PASS or another auth file)"));
        ProcessBuilder pb = new ProcessBuilder(exe.toString(), "get").redirectError(ProcessBuilder.Redirect.DISCARD);
        pb.environment().clear();
        pb.environment().putAll(env);
        Process p = pb.start();
        Answer answer = new Answer(p.getInputStream());
        Thread reader = new Thread(answer, program);
        reader.setDaemon(true);
        reader.start();
        int exit;
        try {
            try (OutputStream stdin = p.getOutputStream()) {
                stdin.write(serverUrl.getBytes(StandardCharsets.UTF_8));
            } catch (IOException helperClosedStdin) {
                // it may not read what it does not need; its answer says what happened
            }
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                throw new RegistryException(program + " (from " + configuredIn + ") did not answer within " + timeoutSeconds + " s");
            }
            exit = p.exitValue();
            // Its answer is complete when its stdout closes; a child it left running (an agent it
            // started) may hold that open: what arrived within a moment of its exit is the answer.
            reader.join(AFTER_EXIT_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while asking " + program);
        } finally {
            if (p.isAlive()) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
            }
        }
        byte[] out = answer.bytes();
        String text = new String(out, StandardCharsets.UTF_8);
        if (exit != 0) {
            if (text.contains(NOT_FOUND)) {
                return Optional.empty();
            }
            String first = text.strip().lines().findFirst().orElse("no output");
            throw new RegistryException(program + " (from " + configuredIn + ") failed for " + serverUrl + ": exit " + exit + ", "
                    + RegistryException.oneLine(first.length() > 200 ? first.substring(0, 200) : first));
        }
        JsonNode json;
        try {
            json = JsonTrees.read(out);
        } catch (IOException notJson) {
            // Not quoted: it may hold the secret.
            throw new RegistryException(program + " (from " + configuredIn + ") answered something that is not JSON");
        }
        String user = json == null ? "" : json.path("Username").asText("");
        String secret = json == null ? "" : json.path("Secret").asText("");
        if (secret.isEmpty()) {
            return Optional.empty();
        }
        if (user.equals("<token>")) {
            return Optional.of(Credentials.identityToken(null, secret, program));
        }
        return Optional.of(new Credentials(user, secret, program));
    }

    /** The helper's stdout as it arrives, at most {@link #MAX_ANSWER} bytes. */
    private static final class Answer implements Runnable {
        private final InputStream in;
        private final byte[] buf = new byte[MAX_ANSWER];
        private int len;

        Answer(InputStream in) {
            this.in = in;
        }

        @Override
        public void run() {
            byte[] piece = new byte[4096];
            try (in) {
                int n;
                while ((n = in.read(piece)) > 0) {
                    synchronized (this) {
                        int kept = Math.min(n, buf.length - len);
                        System.arraycopy(piece, 0, buf, len, kept);
                        len += kept;
                        if (len == buf.length) {
                            return;
                        }
                    }
                }
            } catch (IOException closed) {
                // what arrived is the answer
            }
        }

        synchronized byte[] bytes() {
            return java.util.Arrays.copyOf(buf, len);
        }
    }

    private static Optional<Path> onPath(String program, String path) {
        if (path == null) {
            return Optional.empty();
        }
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, program);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }
}
