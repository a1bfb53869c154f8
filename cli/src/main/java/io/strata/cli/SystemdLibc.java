package io.strata.cli;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;

/**
 * The few socket calls systemd's protocols need that the JDK lacks: a unix datagram socket for
 * NOTIFY_SOCKET, and inspecting the listening sockets passed by socket activation. Bound with
 * jnr-ffi (bin/strata turns its x86-64 asm stubs off, see core's LibC), which needs the interface
 * public: it implements it in a class loader of its own.
 */
public interface SystemdLibc {
    int socket(int domain, int type, int protocol);

    long sendto(int fd, @In byte[] buf, long len, int flags, @In byte[] addr, int addrlen);

    int getsockopt(int fd, int level, int optname, @Out int[] optval, @In @Out int[] optlen);

    int fcntl(int fd, int cmd, int arg);

    int close(int fd);

    int AF_UNIX = 1;
    int AF_INET = 2;
    int AF_INET6 = 10;
    int SOCK_STREAM = 1;
    int SOCK_DGRAM = 2;
    int SOCK_CLOEXEC = 0x80000;
    int MSG_NOSIGNAL = 0x4000;
    int SOL_SOCKET = 1;
    int SO_TYPE = 3;
    int SO_ACCEPTCONN = 30;
    int SO_DOMAIN = 39;
    int F_SETFD = 2;
    int F_GETFL = 3;
    int F_SETFL = 4;
    int FD_CLOEXEC = 1;
    int O_NONBLOCK = 0x800;

    /** Loaded on first use: commands that never meet systemd never load it. */
    final class Holder {
        private static volatile SystemdLibc libc;

        private Holder() {
        }

        static SystemdLibc libc() {
            SystemdLibc l = libc;
            if (l == null) {
                synchronized (Holder.class) {
                    if (libc == null) {
                        libc = LibraryLoader.create(SystemdLibc.class).load("c");
                    }
                    l = libc;
                }
            }
            return l;
        }

        static int errno() {
            return Runtime.getRuntime(libc()).getLastError();
        }
    }
}
