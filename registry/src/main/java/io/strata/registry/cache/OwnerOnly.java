package io.strata.registry.cache;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * What the cache directory makes is its user's alone, whatever the umask: directories 0700, files
 * 0600. A private image's metadata and chunks would otherwise be readable by every local user, and
 * another user could hold a read lock on {@code .lock} and stall eviction. Existing entries keep
 * their modes (an operator may share a cache on purpose).
 */
public final class OwnerOnly {
    private static final FileAttribute<Set<PosixFilePermission>> DIRECTORY =
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
    private static final FileAttribute<Set<PosixFilePermission>> FILE =
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"));
    private static final Set<OpenOption> READ_WRITE_CREATE = Set.of(LinkOption.NOFOLLOW_LINKS, StandardOpenOption.CREATE,
            StandardOpenOption.READ, StandardOpenOption.WRITE);

    private OwnerOnly() {
    }

    /** {@code dir} and any missing parents, each made 0700; returns {@code dir}. */
    public static Path directories(Path dir) throws IOException {
        return Files.createDirectories(dir, DIRECTORY);
    }

    /** A read-write channel on {@code file}, made 0600 if missing; a symlink is not followed. */
    static FileChannel openReadWrite(Path file) throws IOException {
        return FileChannel.open(file, READ_WRITE_CREATE, FILE);
    }
}
