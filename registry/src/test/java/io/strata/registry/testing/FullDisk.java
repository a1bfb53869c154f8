package io.strata.registry.testing;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** A small tmpfs the test mounts (root only) and can fill up: a cache on a disk that is full. */
public final class FullDisk implements AutoCloseable {
    private final Path dir;

    private FullDisk(Path dir) {
        this.dir = dir;
    }

    /** Mounts a tmpfs of {@code size} (mount's size=, e.g. "2m") at {@code dir}, made if missing. */
    public static FullDisk mount(Path dir, String size) throws IOException {
        HostTools.require("root".equals(System.getProperty("user.name")), "mounting a tmpfs needs root");
        Files.createDirectories(dir);
        HostTools.run(List.of("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir.toString()));
        return new FullDisk(dir);
    }

    public Path dir() {
        return dir;
    }

    /** Writes a file until the disk has no space left. */
    public void fill() {
        try (OutputStream fill = Files.newOutputStream(dir.resolve("filler"))) {
            byte[] k = new byte[4096];
            while (true) {
                fill.write(k);
                fill.flush();
            }
        } catch (IOException full) {
            // No space left on device: what the caller wants
        }
    }

    /** Deletes what {@link #fill} wrote: the disk has room again. */
    public void free() throws IOException {
        Files.deleteIfExists(dir.resolve("filler"));
    }

    @Override
    public void close() throws IOException {
        HostTools.run(List.of("umount", "--lazy", dir.toString()));
    }
}
