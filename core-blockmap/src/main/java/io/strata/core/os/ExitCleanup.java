package io.strata.core.os;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Cleanup that must also happen when the JVM is stopped by a signal (SIGINT, SIGTERM, SIGHUP) while a
 * command writes temporary files: the JVM then runs its shutdown hooks, not the commands' finally
 * blocks. {@link #register} adds a hook for as long as the work runs; {@link #close} removes it once
 * the work has cleaned up (or kept) its files itself. A hook may run while the work still writes the
 * files it removes; Linux keeps an unlinked file's data until it is closed, and the JVM exits next.
 */
public final class ExitCleanup implements AutoCloseable {
    private final Thread hook;

    private ExitCleanup(Thread hook) {
        this.hook = hook;
    }

    /** Runs {@code cleanup} if the JVM shuts down before {@link #close}. */
    public static ExitCleanup register(String what, Runnable cleanup) throws IOException {
        Thread hook = new Thread(cleanup, "strata-cleanup-" + what);
        try {
            Runtime.getRuntime().addShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            throw new IOException(what + ": not started, the process is stopping");
        }
        return new ExitCleanup(hook);
    }

    /** Removes the hook: the work is over and has removed, or kept, its files itself. */
    @Override
    public void close() {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // The hook runs, or ran, anyway.
        }
    }

    /** Removes {@code path} and, if it is a directory, everything under it; errors are ignored (best effort at exit). */
    public static void deleteQuietly(Path path) {
        try (Stream<Path> s = Files.walk(path)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // Best effort.
                }
            });
        } catch (IOException | UncheckedIOException ignored) {
            // Gone already, or unreadable: nothing more to do at exit.
        }
    }
}
