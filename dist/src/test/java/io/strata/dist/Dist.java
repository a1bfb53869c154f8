package io.strata.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** What {@code mvn package} built in dist/target, and a way to run commands on it with a deadline. */
final class Dist {
    private Dist() {
    }

    static String version() {
        return System.getenv().getOrDefault("STRATA_VERSION", "0.1.0-SNAPSHOT");
    }

    static Path target() {
        String d = System.getenv("STRATA_DIST");
        return d != null ? Paths.get(d) : Paths.get("target").toAbsolutePath();
    }

    /** The one file in dist/target whose name starts with {@code prefix} and ends with {@code suffix}. */
    static Path built(String prefix, String suffix) throws IOException {
        try (Stream<Path> files = Files.list(target())) {
            List<Path> found = files.filter(p -> p.getFileName().toString().startsWith(prefix)
                    && p.getFileName().toString().endsWith(suffix)).toList();
            assertEquals(1, found.size(), "one " + prefix + "*" + suffix + " in " + target() + ": " + found);
            return found.get(0);
        }
    }

    /** A finished command: exit code and merged output. */
    record Outcome(int code, String output) {
    }

    /**
     * Runs {@code command} with {@code env} added (an empty value removes the variable), output to a file (a child keeping a pipe open cannot
     * block the test); kills it and fails after {@code seconds}.
     */
    static Outcome execute(List<String> command, Map<String, String> env, int seconds, Path scratch) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        env.forEach((k, v) -> {
            if (v.isEmpty()) {
                pb.environment().remove(k);
            } else {
                pb.environment().put(k, v);
            }
        });
        Path out = Files.createTempFile(scratch, "cmd", ".out");
        pb.redirectOutput(out.toFile());
        Process p = pb.start();
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            fail(command + " timed out after " + seconds + " s: " + Files.readString(out, StandardCharsets.UTF_8));
        }
        return new Outcome(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    }

    /** As {@link #execute}; the command must exit 0. Returns its output. */
    static String run(List<String> command, Map<String, String> env, int seconds, Path scratch) throws Exception {
        Outcome o = execute(command, env, seconds, scratch);
        assertEquals(0, o.code(), command + ": " + o.output());
        return o.output();
    }

    /** SIGTERM to a process and everything it started, then waits (SIGKILL after 30 s). */
    static void stop(Process process) throws InterruptedException {
        List<ProcessHandle> all = new java.util.ArrayList<>(process.descendants().toList());
        all.add(process.toHandle());
        all.forEach(ProcessHandle::destroy);
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
                h.destroyForcibly();
            }
        }
    }

    /** Waits up to {@code seconds} for {@code text} in {@code file}; fails with the file's text if {@code process} exits first. */
    static void awaitText(Path file, String text, Process process, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        for (;;) {
            String now = Files.exists(file) ? Files.readString(file, StandardCharsets.UTF_8) : "";
            if (now.contains(text)) {
                return;
            }
            if (!process.isAlive() || System.nanoTime() > deadline) {
                throw new AssertionError("no '" + text + "' in " + file + " (" + (process.isAlive() ? "timed out" : "exited "
                        + process.exitValue()) + "):\n" + now);
            }
            Thread.sleep(50);
        }
    }

    static void assertContains(String text, String part) {
        assertTrue(text.contains(part), "expected '" + part + "' in:\n" + text);
    }
}
