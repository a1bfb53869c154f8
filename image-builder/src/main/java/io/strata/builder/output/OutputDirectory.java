package io.strata.builder.output;

import io.strata.builder.data.FinishedBlob;
import io.strata.core.os.ExitCleanup;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;

/**
 * The build's output directory: {@code bootstrap} and {@code blobs/<blob id>} (design section 1).
 * Everything is written under temporary names and made durable (fsync); {@link #commit} renames the
 * blobs into place and the bootstrap last, so a directory with a new bootstrap always has its blobs,
 * even after a crash. A build that fails or is
 * interrupted removes its temporary files and any blob it had already published that was not there
 * before, leaving nothing that looks like a finished image.
 */
public final class OutputDirectory implements AutoCloseable {
    public static final String BOOTSTRAP = "bootstrap";
    public static final String BLOBS = "blobs";
    private static final String TEMP_PREFIX = ".strata-partial-";

    private final Path dir;
    private final Path blobs;
    private final List<Path> temps = new ArrayList<>();
    private final List<Path> published = new ArrayList<>();
    private boolean committed;
    private boolean closed;
    private FutureTask<Void> sync;
    /** Closes this directory if a signal stops the JVM during the build (shutdown hooks run then, not close). */
    private ExitCleanup onSignal;

    private OutputDirectory(Path dir) {
        this.dir = dir;
        this.blobs = dir.resolve(BLOBS);
    }

    public static OutputDirectory open(Path dir) throws IOException {
        Files.createDirectories(dir.resolve(BLOBS));
        OutputDirectory out = new OutputDirectory(dir);
        out.onSignal = ExitCleanup.register("build", () -> {
            try {
                out.close();
            } catch (IOException ignored) {
                // Best effort at exit.
            }
        });
        return out;
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new IOException(dir + ": the build was stopped");
        }
    }

    public Path dir() {
        return dir;
    }

    public Path bootstrap() {
        return dir.resolve(BOOTSTRAP);
    }

    public Path blobDir() {
        return blobs;
    }

    public synchronized Path newTempBlob() throws IOException {
        checkOpen();
        Path p = newTempFile(blobs);
        temps.add(p);
        return p;
    }

    public synchronized Path newTempBootstrap() throws IOException {
        checkOpen();
        Path p = newTempFile(dir);
        temps.add(p);
        return p;
    }

    /**
     * A new empty file under a name nobody else has, made with the mode every file gets (0666 less
     * the umask), as mkfs.erofs and nydus-image make their output: Files.createTempFile makes it 0600
     * whatever the umask, so an image built as root could not be read by the service that serves it
     * (strata.service runs as a DynamicUser).
     */
    private static Path newTempFile(Path in) throws IOException {
        for (int tries = 0; ; tries++) {
            Path p = in.resolve(TEMP_PREFIX + Long.toUnsignedString(TEMP_NAMES.nextLong(), 36));
            try {
                return Files.createFile(p);
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (tries == 100) {
                    throw e;
                }
            }
        }
    }

    private static final java.security.SecureRandom TEMP_NAMES = new java.security.SecureRandom();

    /**
     * Starts writing the finished blobs to disk (fsync) on a thread of its own, so that it overlaps
     * the bootstrap's writing; {@link #commit} waits for it before renaming anything.
     */
    public synchronized void startSync(List<FinishedBlob> finished) {
        FutureTask<Void> task = new FutureTask<>(() -> {
            for (FinishedBlob b : finished) {
                try (FileChannel ch = FileChannel.open(b.file(), StandardOpenOption.WRITE)) {
                    ch.force(false);
                }
            }
            return null;
        });
        Thread t = new Thread(task, "strata-sync");
        t.setDaemon(true);
        t.start();
        sync = task;
    }

    /** Publishes the blobs under their ids, then the bootstrap: only files already on disk are renamed. */
    public synchronized void commit(List<FinishedBlob> finished, Path tempBootstrap) throws IOException {
        checkOpen();
        if (sync == null) {
            startSync(finished);
        }
        try {
            sync.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while syncing blobs");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException("syncing blobs failed: " + e.getCause(), e);
        }
        for (FinishedBlob b : finished) {
            Path target = blobs.resolve(b.id());
            boolean existed = Files.exists(target);
            Files.move(b.file(), target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            temps.remove(b.file());
            if (!existed) {
                published.add(target);
            }
        }
        Files.move(tempBootstrap, bootstrap(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        temps.remove(tempBootstrap);
        committed = true;
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        onSignal.close();
        IOException first = null;
        List<Path> remove = new ArrayList<>(temps);
        if (!committed) {
            remove.addAll(published);
        }
        for (Path p : remove) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        temps.clear();
        if (first != null) {
            throw first;
        }
    }
}
