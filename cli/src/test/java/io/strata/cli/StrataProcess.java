package io.strata.cli;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the real launcher, bin/strata, on the JDK the build runs on, as a user would. */
final class StrataProcess {
    /** A finished run: exit code, standard output, standard error. */
    record Run(int code, String out, String err) {
    }

    private StrataProcess() {
    }

    static Path home() {
        String h = System.getenv("STRATA_HOME");
        return h != null ? Paths.get(h) : Paths.get("..").toAbsolutePath().normalize();
    }

    /** A server started in the background; {@link #close} stops it (SIGTERM) and waits for it. */
    static final class Server implements AutoCloseable {
        final Process process;
        final Path err;

        Server(Process process, Path err) {
            this.process = process;
            this.err = err;
        }

        /** Standard error so far (the servers log there). */
        String log() throws java.io.IOException {
            return Files.readString(err, StandardCharsets.UTF_8);
        }

        /** Waits up to 60 s for {@code text} in the log; fails (with the log) if the server exits first or it never comes. */
        String awaitLog(String text) throws Exception {
            return awaitText(err, text, process);
        }

        /** Waits up to {@code seconds} for a match of {@code pattern} in the log; fails as {@link #awaitLog(String)}. */
        String awaitLog(java.util.regex.Pattern pattern, int seconds) throws Exception {
            return awaitText(err, log -> pattern.matcher(log).find(), "/" + pattern + "/", process, seconds);
        }

        @Override
        public void close() throws Exception {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    /** Waits up to 60 s for {@code text} in {@code file}; fails as {@link #awaitText(Path, java.util.function.Predicate, String, Process, int)}. */
    static String awaitText(Path file, String text, Process process) throws Exception {
        return awaitText(file, t -> t.contains(text), "'" + text + "'", process, 60);
    }

    /**
     * Polls {@code file} (a log, or what a test's receiver writes) until its text satisfies
     * {@code holds}; returns that text. Fails, with the text, if {@code process} exits first or
     * {@code seconds} pass. {@code what} names the awaited text in the failure.
     */
    static String awaitText(Path file, java.util.function.Predicate<String> holds, String what, Process process, int seconds)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        for (;;) {
            String text = Files.exists(file) ? Files.readString(file, StandardCharsets.UTF_8) : "";
            if (holds.test(text)) {
                return text;
            }
            if (!process.isAlive() || System.nanoTime() > deadline) {
                throw new AssertionError("no " + what + " in " + file + " (" + (process.isAlive() ? "timed out" : "exited "
                        + process.exitValue()) + "):\n" + text);
            }
            Thread.sleep(50);
        }
    }

    /**
     * {@code strata serve nbd REFERENCE} on the unix socket {@code tmp/NAME.sock} (see {@link #nbdUri}),
     * its blob cache in {@code cacheDir}, a metrics line every second, and {@code extra} options;
     * returns once the export is up.
     */
    static Server serveReference(Path tmp, String name, String reference, Path cacheDir, String... extra) throws Exception {
        java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("serve", "nbd", reference,
                "--socket", tmp.resolve(name + ".sock").toString(), "--cache-dir", cacheDir.toString(), "--metrics-interval", "1"));
        args.addAll(java.util.List.of(extra));
        Server s = start(tmp, name, args.toArray(String[]::new));
        s.awaitLog("nbd: export");
        return s;
    }

    /** The NBD URI of a server started by {@link #serveReference} as {@code name}. */
    static String nbdUri(Path tmp, String name) {
        return "nbd+unix:///?socket=" + tmp.resolve(name + ".sock");
    }

    /** Starts {@code bin/strata args} in the background, its output under {@code tmp} (NAME.out, NAME.err). */
    static Server start(Path tmp, String name, String... args) throws Exception {
        return start(tmp, name, java.util.Map.of(), args);
    }

    /** As {@link #start(Path, String, String...)}, with {@code env} added to the environment. */
    static Server start(Path tmp, String name, java.util.Map<String, String> env, String... args) throws Exception {
        ProcessBuilder pb = builder(args);
        pb.environment().putAll(env);
        Path err = tmp.resolve(name + ".err");
        pb.redirectOutput(tmp.resolve(name + ".out").toFile()).redirectError(err.toFile());
        return new Server(pb.start(), err);
    }

    private static ProcessBuilder builder(String... args) {
        List<String> cmd = new ArrayList<>();
        // SIGHUP as systemd leaves it: a test run started under nohup passes SIGHUP on ignored, and
        // a JVM cannot catch a signal it inherited ignored (the daemon's reload tests need it).
        // env execs the launcher, which execs java: one process, one pid.
        cmd.addAll(List.of("env", "--default-signal=HUP"));
        cmd.add(home().resolve("bin/strata").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("SOURCE_DATE_EPOCH");
        pb.environment().remove("STRATA_DEBUG");
        return pb;
    }

    /** Runs {@code bin/strata args} with its output captured under {@code tmp}. */
    static Run run(Path tmp, String... args) throws Exception {
        return run(tmp, java.util.Map.of(), args);
    }

    /** As {@link #run(Path, String...)}, with {@code env} added to the environment. */
    static Run run(Path tmp, java.util.Map<String, String> env, String... args) throws Exception {
        ProcessBuilder pb = builder(args);
        pb.environment().putAll(env);
        Path out = tmp.resolve("stdout");
        Path err = tmp.resolve("stderr");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            fail("strata " + String.join(" ", args) + " timed out; stderr: " + Files.readString(err, StandardCharsets.UTF_8));
        }
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }
}
