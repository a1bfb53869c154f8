package io.strata.core.os;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/** The file of a listening unix socket, shared by the transports' servers. */
public final class UnixSocketFiles {
    /** Socket files are for their owner only unless asked otherwise (--socket-mode). */
    public static final int DEFAULT_MODE = 0600;

    private UnixSocketFiles() {
    }

    /**
     * Binds and listens on {@code path}, whose file gets permission bits {@code mode}, with no moment
     * in which it is open to more than that. bind(2) creates the file with 0777 & ~umask, so the
     * socket is bound inside a fresh directory of mode 0700 beside {@code path} (connecting needs
     * search permission on every directory of the path, so nobody else can reach it there), given
     * {@code mode} with chmod, and renamed into place: rename(2) moves the name atomically and the
     * bound socket with it. Changing the process umask around bind would do the same, but umask is
     * process-wide and would race with every other thread creating files.
     */
    /**
     * A fresh 0700 directory beside {@code socket} to bind in. Its name is random: a failure names the
     * socket and its directory instead (an unwritable directory said only ".../.c111bdcf7: permission denied").
     */
    public static Path stagingDirectory(Path socket, String prefix) throws IOException {
        Path parent = socket.toAbsolutePath().getParent();
        try {
            return Files.createDirectory(parent.resolve(prefix + Integer.toHexString(ThreadLocalRandom.current().nextInt() | 0x10000000)),
                    PosixFilePermissions.asFileAttribute(EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                            PosixFilePermission.OWNER_EXECUTE)));
        } catch (java.nio.file.AccessDeniedException e) {
            throw new java.nio.file.AccessDeniedException(socket.toString(), null,
                    "cannot create the socket: its directory " + parent + " is not writable by this user");
        } catch (java.nio.file.NoSuchFileException e) {
            throw new java.nio.file.NoSuchFileException(socket.toString(), null, "cannot create the socket: no directory " + parent);
        }
    }

    public static ServerSocketChannel bind(Path path, int mode, int backlog) throws IOException {
        removeStale(path);
        // Short names: the whole path must fit sun_path's 108 bytes.
        Path dir = stagingDirectory(path, ".s");
        Path staging = dir.resolve("s");
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(staging), backlog);
            Files.setPosixFilePermissions(staging, permissions(mode));
            Files.move(staging, path, StandardCopyOption.ATOMIC_MOVE);
            return server;
        } catch (IOException | RuntimeException e) {
            server.close();
            Files.deleteIfExists(staging);
            throw e;
        } finally {
            Files.deleteIfExists(dir);
        }
    }

    /** The POSIX permission set of mode bits (0..0777). */
    static Set<PosixFilePermission> permissions(int mode) {
        if ((mode & ~0777) != 0) {
            throw new IllegalArgumentException("mode 0" + Integer.toOctalString(mode) + " is not permission bits");
        }
        PosixFilePermission[] bits = PosixFilePermission.values(); // OWNER_READ (0400) ... OTHERS_EXECUTE (0001)
        Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
        for (int i = 0; i < 9; i++) {
            if ((mode & (0400 >> i)) != 0) {
                set.add(bits[i]);
            }
        }
        return set;
    }

    /**
     * Why no socket can be bound at {@code path} whatever runs: its directory is missing, or something
     * that is not a socket is there (never replaced). Null when it may be bound, a stale or live
     * socket there included (binding tells those apart). Commands ask before they open anything.
     */
    public static String unusablePath(Path path) {
        Path parent = path.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            return path + ": no directory " + parent + " to hold the socket";
        }
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (IOException | UnsupportedOperationException absentOrUntellable) {
            return null; // nothing there (or gone since): binding says what else is wrong
        }
        return (mode & InputFiles.S_IFMT) != InputFiles.S_IFSOCK ? path + " exists and is not a socket; not replacing it" : null;
    }

    /**
     * Makes {@code path} free to bind: a socket left by a server that died is removed, but a socket a
     * running server still answers on is an error (two servers must not share one path), and so is
     * anything at the path that is not a socket: a mistyped path must never cost someone a file. A
     * missing directory is named here too (the binders' staging directory beside the path would
     * otherwise fail with only its own name, ".s1a2b3c4d").
     */
    public static void removeStale(Path path) throws IOException {
        String problem = unusablePath(path);
        if (problem != null) {
            throw new IOException(problem);
        }
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        boolean live;
        try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
            live = true;
        } catch (IOException refused) {
            live = false;
        }
        if (live) {
            throw new IOException("socket " + path + " is in use by a running server");
        }
        Files.delete(path);
    }
}
