package io.strata.core.testing;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs host programs (mount, veritysetup, ...) for tests that check Strata against the real thing.
 * A missing tool or privilege skips the test on a developer's machine but fails it under CI
 * ({@code CI=true}), so CI can never count a test that did not run as passed.
 */
public final class HostTools {
    private HostTools() {
    }

    public static boolean underCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** Requires a condition the test's environment must meet; {@code what} says how to meet it. */
    public static void require(boolean condition, String what) {
        if (condition) {
            return;
        }
        if (underCi()) {
            fail("CI=true and this test cannot run: " + what);
        }
        assumeTrue(false, what);
    }

    public static void requireTool(String tool, String debianPackage) {
        require(onPath(tool), tool + " is not installed (apt-get install " + debianPackage + ")");
    }

    public static void requireRootWithErofsAndLoop() {
        require("root".equals(System.getProperty("user.name")), "mount tests need root");
        boolean erofs;
        try {
            erofs = Files.readString(Paths.get("/proc/filesystems")).contains("erofs");
        } catch (IOException e) {
            erofs = false;
        }
        if (!erofs) {
            try {
                run(List.of("modprobe", "erofs"));
                erofs = Files.readString(Paths.get("/proc/filesystems")).contains("erofs");
            } catch (IOException | RuntimeException e) {
                erofs = false;
            }
        }
        require(erofs, "the kernel has no EROFS (modprobe erofs)");
        require(Files.exists(Paths.get("/dev/loop-control")), "no loop devices (/dev/loop-control)");
    }

    public static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Paths.get(dir, tool))) {
                return true;
            }
        }
        return Files.isExecutable(Paths.get("/usr/sbin", tool)) || Files.isExecutable(Paths.get("/sbin", tool));
    }

    /** The result of a finished command. */
    public record Outcome(int exitCode, String output) {
    }

    /** How long a host command may run before the test fails instead of hanging. */
    private static final long COMMAND_TIMEOUT_SECONDS = 120;

    /**
     * Runs a command, returning its exit code and merged output (never throws on a non-zero exit).
     * The output goes to a file, not a pipe, so a command that hangs (or a child that keeps the pipe
     * open) cannot block the test past the timeout; then it is killed and the test fails.
     */
    public static Outcome execute(List<String> command) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        pb.environment().put("PATH", path + ":/usr/sbin:/sbin");
        Path out = Files.createTempFile("strata-host-tool", ".out");
        try {
            pb.redirectOutput(out.toFile());
            Process p = pb.start();
            try {
                if (!p.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(10, TimeUnit.SECONDS);
                    throw new IOException("timed out after " + COMMAND_TIMEOUT_SECONDS + " s: " + command + "; output: "
                            + Files.readString(out, StandardCharsets.UTF_8));
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new IOException("interrupted: " + command, e);
            }
            return new Outcome(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /** Runs a command that must succeed; returns its output. */
    public static String run(List<String> command) throws IOException {
        Outcome o = execute(command);
        if (o.exitCode() != 0) {
            throw new IOException(command + " exited " + o.exitCode() + ": " + o.output());
        }
        return o.output();
    }

    /** Mounts an EROFS image file read-only through a loop device. Close to unmount. */
    public static final class ErofsMount implements AutoCloseable {
        private final Path mountPoint;

        public ErofsMount(Path image, Path mountPoint) throws IOException {
            Files.createDirectories(mountPoint);
            run(List.of("mount", "-t", "erofs", "-o", "ro,loop", image.toString(), mountPoint.toString()));
            this.mountPoint = mountPoint;
        }

        public Path path() {
            return mountPoint;
        }

        @Override
        public void close() throws IOException {
            run(List.of("umount", mountPoint.toString()));
        }
    }
}
