package io.strata.core.os;

/**
 * The libc calls Strata needs that the JDK does not offer, bound with jnr-ffi: the one place where
 * Strata declares native functions (the transports, the image builder's xattrs, the systemd
 * protocols; file-descriptor passing over unix sockets is {@link FdPassing}). Binding it costs a few
 * hundred milliseconds the first time ({@link Native#libc} does it once, on first use). jnr-ffi's x86-64 asm stubs must be off ({@code -Djnr.ffi.x86asm.enabled=false},
 * set by bin/strata and the build): they pass a garbage sixth argument, which breaks mmap.
 */
public interface LibC {
    int open(String path, int flags);

    int close(int fd);

    /** {@code ioctl(fd, request, arg)} with an integer argument (all the nbd ioctls take one). */
    int ioctl(int fd, long request, long arg);

    long mmap(long addr, long length, int prot, int flags, int fd, long offset);

    int munmap(long addr, long length);

    int eventfd(int initval, int flags);

    /** {@code read(2)} into native memory. */
    long read(int fd, long buf, long count);

    /** {@code write(2)} from native memory. */
    long write(int fd, long buf, long count);

    /** {@code pread(2)} straight into native memory (a file segment into mapped guest memory). */
    long pread(int fd, long buf, long count, long offset);

    /** {@code preadv(2)}: one positional read scattered over {@code iovcnt} {base, len} pairs at {@code iov}. */
    long preadv(int fd, long iov, int iovcnt, long offset);

    /** {@code poll(2)}; {@code fds} holds struct pollfd as int pairs: fd, then events | revents << 16. */
    int poll(@jnr.ffi.annotations.In @jnr.ffi.annotations.Out int[] fds, long nfds, int timeout);

    int memfd_create(String name, int flags);

    /** {@code llistxattr(2)}: the xattr names of {@code path} (NUL-terminated bytes) without following a symlink. */
    long llistxattr(@jnr.ffi.annotations.In byte[] path, @jnr.ffi.annotations.Out byte[] list, long size);

    /** {@code lgetxattr(2)}: one xattr's value, without following a symlink. */
    long lgetxattr(@jnr.ffi.annotations.In byte[] path, @jnr.ffi.annotations.In byte[] name,
                   @jnr.ffi.annotations.Out byte[] value, long size);

    /** {@code socket(2)}: systemd's NOTIFY_SOCKET is a unix datagram socket, which the JDK cannot open. */
    int socket(int domain, int type, int protocol);

    long sendto(int fd, @jnr.ffi.annotations.In byte[] buf, long len, int flags, @jnr.ffi.annotations.In byte[] addr, int addrlen);

    /** {@code getsockopt(2)} of an int option (what socket activation checks of an inherited socket). */
    int getsockopt(int fd, int level, int optname, @jnr.ffi.annotations.Out int[] optval,
                   @jnr.ffi.annotations.In @jnr.ffi.annotations.Out int[] optlen);

    int fcntl(int fd, int cmd, int arg);

    int ftruncate(int fd, long length);

    /** {@code lseek(2)}; with SEEK_DATA / SEEK_HOLE it finds a sparse file's data and holes without reading it. */
    long lseek(int fd, long offset, int whence);

    int PROT_READ = 1;
    int PROT_WRITE = 2;
    int MAP_SHARED = 1;
    long MAP_FAILED = -1L;
    int EFD_CLOEXEC = 0x80000;
    int EFD_NONBLOCK = 0x800;
    int POLLIN = 1;
    int POLLERR = 8;
    int POLLHUP = 16;
    int POLLNVAL = 32;
    int MFD_CLOEXEC = 1;
    int EINTR = 4;
    int EAGAIN = 11;
    int EBUSY = 16;

    int O_RDWR = 2;
    int O_CLOEXEC = 0x80000;

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
    int O_RDONLY = 0;
    /** x86-64 and aarch64 value (asm-generic). */
    int O_NOFOLLOW = 0x20000;
    int ELOOP = 40;
    int SEEK_DATA = 3;
    int SEEK_HOLE = 4;
    /** lseek SEEK_DATA: no data at or after the offset. */
    int ENXIO = 6;
}
