package io.strata.qemu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import jnr.constants.platform.Signal;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/**
 * {@code bin/strata serve vhost-user ...} as a separate process, as a user runs it: its log in a
 * file, started with the test's JDK, and always stopped with a deadline.
 */
final class BackEndProcess implements AutoCloseable {
    private static final POSIX POSIX = POSIXFactory.getPOSIX();

    private final Process process;
    private final Path log;

    private BackEndProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /** Starts {@code strata serve vhost-user --socket SOCKET args...} and waits for its socket. */
    static BackEndProcess start(Path socket, Path log, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(GuestKit.strataHome().resolve("bin/strata").toString(), "serve",
                "vhost-user", "--socket", socket.toString()));
        cmd.addAll(List.of(args));
        Files.deleteIfExists(socket);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        BackEndProcess b = new BackEndProcess(pb.start(), log);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(socket)) {
            if (!b.process.isAlive() || System.nanoTime() > deadline) {
                b.close();
                throw new AssertionError("back-end socket " + socket + " never appeared; log:\n" + b.log());
            }
            Thread.sleep(50);
        }
        return b;
    }

    long pid() {
        return process.pid();
    }

    String log() throws IOException {
        return Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
    }

    /**
     * SIGSTOP, and waits until every thread of the back-end is stopped: its shared memory (the
     * inflight region) then holds still for the test to read. {@link #thaw} or {@link #kill} after.
     */
    void freeze() throws IOException, InterruptedException {
        signal(Signal.SIGSTOP);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!allThreadsStopped()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("back-end " + pid() + " did not stop within 10 s of SIGSTOP");
            }
            Thread.sleep(1);
        }
    }

    void thaw() {
        signal(Signal.SIGCONT);
    }

    private void signal(Signal s) {
        if (POSIX.kill(pid(), s.intValue()) != 0) {
            throw new IllegalStateException("kill(" + pid() + ", " + s + ") failed: errno " + POSIX.errno());
        }
    }

    /** Every /proc/PID/task/TID/stat shows state T (stopped by a signal). */
    private boolean allThreadsStopped() throws IOException {
        try (Stream<Path> tasks = Files.list(Path.of("/proc/" + pid() + "/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                String stat;
                try {
                    stat = Files.readString(t.resolve("stat"));
                } catch (IOException exited) {
                    continue;
                }
                // "tid (comm) S ...": the state follows the last ')' (a thread name may hold one).
                char state = stat.charAt(stat.lastIndexOf(')') + 2);
                if (state != 'T' && state != 't' && state != 'Z' && state != 'X') {
                    return false;
                }
            }
        }
        return true;
    }

    /** SIGKILL, as in a crash: no cleanup, no goodbye to QEMU. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        assertTrue(process.waitFor(30, TimeUnit.SECONDS), "the killed back-end did not exit");
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(20, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
