package io.strata.cli;

import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.FileDescriptor;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.net.ProtocolFamily;
import java.net.StandardProtocolFamily;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.spi.SelectorProvider;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Listening sockets passed by systemd socket activation (sd_listen_fds(3), issue 11 part 4): when
 * LISTEN_PID is this process, LISTEN_FDS sockets start at file descriptor 3. Each must be a
 * listening stream socket (unix, IPv4 or IPv6), as sd_is_socket checks; anything else is refused
 * with a clear error. They are made close-on-exec and blocking, as the JDK channel expects.
 */
final class SocketActivation {
    static final int FIRST_FD = 3;

    private SocketActivation() {
    }

    /** The passed sockets as JDK channels; empty when the variables are absent or name another process. */
    static List<ServerSocketChannel> listeners(Map<String, String> env) throws IOException {
        String pid = env.get("LISTEN_PID");
        String fds = env.get("LISTEN_FDS");
        if (pid == null || fds == null) {
            return List.of();
        }
        long listenPid;
        int count;
        try {
            listenPid = Long.parseLong(pid.strip());
            count = Integer.parseInt(fds.strip());
        } catch (NumberFormatException e) {
            throw new IOException("socket activation: LISTEN_PID=" + pid + " LISTEN_FDS=" + fds + " are not numbers");
        }
        if (listenPid != ProcessHandle.current().pid()) {
            return List.of(); // meant for another process (a parent that did not unset them)
        }
        if (count < 0 || count > 1024) {
            throw new IOException("socket activation: LISTEN_FDS=" + fds + " is out of range");
        }
        List<ServerSocketChannel> channels = new ArrayList<>();
        for (int fd = FIRST_FD; fd < FIRST_FD + count; fd++) {
            channels.add(channel(fd, family(fd)));
        }
        return channels;
    }

    /** The socket's protocol family, after checking it is a listening stream socket. */
    private static ProtocolFamily family(int fd) throws IOException {
        LibC libc = Native.libc();
        int type = option(libc, fd, LibC.SO_TYPE);
        int listening = option(libc, fd, LibC.SO_ACCEPTCONN);
        int domain = option(libc, fd, LibC.SO_DOMAIN);
        if (type != LibC.SOCK_STREAM || listening != 1) {
            throw new IOException("socket activation: fd " + fd + " is not a listening stream socket (type " + type + ", listening " + listening + ")");
        }
        ProtocolFamily family = switch (domain) {
            case LibC.AF_UNIX -> StandardProtocolFamily.UNIX;
            case LibC.AF_INET -> StandardProtocolFamily.INET;
            case LibC.AF_INET6 -> StandardProtocolFamily.INET6;
            default -> throw new IOException("socket activation: fd " + fd + " has address family " + domain + ", not unix, IPv4 or IPv6");
        };
        if (libc.fcntl(fd, LibC.F_SETFD, LibC.FD_CLOEXEC) < 0) {
            throw new IOException("socket activation: fcntl(" + fd + ", F_SETFD): errno " + Native.errno());
        }
        int flags = libc.fcntl(fd, LibC.F_GETFL, 0);
        if (flags < 0 || libc.fcntl(fd, LibC.F_SETFL, flags & ~LibC.O_NONBLOCK) < 0) {
            throw new IOException("socket activation: fcntl(" + fd + ", F_SETFL): errno " + Native.errno());
        }
        return family;
    }

    private static int option(LibC libc, int fd, int name) throws IOException {
        int[] value = new int[1];
        int[] length = {4};
        if (libc.getsockopt(fd, LibC.SOL_SOCKET, name, value, length) < 0) {
            int errno = Native.errno();
            throw new IOException("socket activation: fd " + fd + " from LISTEN_FDS is not a socket (getsockopt: errno " + errno + ")");
        }
        return value[0];
    }

    /**
     * The JDK has no public way to adopt a socket it did not open, except System.inheritedChannel
     * for fd 0 (inetd). Its own ServerSocketChannelImpl(provider, family, fd, bound) constructor,
     * the one InheritedChannel uses, exists unchanged from JDK 17 to 25; bin/strata opens
     * sun.nio.ch and java.io to reach it.
     */
    private static ServerSocketChannel channel(int fd, ProtocolFamily family) throws IOException {
        try {
            FileDescriptor descriptor = new FileDescriptor();
            Field raw = FileDescriptor.class.getDeclaredField("fd");
            raw.setAccessible(true);
            raw.setInt(descriptor, fd);
            Class<?> impl = Class.forName("sun.nio.ch.ServerSocketChannelImpl");
            Constructor<?> c = impl.getDeclaredConstructor(SelectorProvider.class, ProtocolFamily.class, FileDescriptor.class, boolean.class);
            c.setAccessible(true);
            return (ServerSocketChannel) c.newInstance(SelectorProvider.provider(), family, descriptor, true);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IOException("socket activation: cannot adopt fd " + fd + " as a server socket channel (" + e + ")", e);
        }
    }
}
