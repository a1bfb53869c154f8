package io.strata.core.os;

/**
 * The libc calls Strata needs that the JDK does not offer, bound with jnr-ffi. Kept in one place for
 * both transports. jnr-ffi's x86-64 asm stubs must be off ({@code -Djnr.ffi.x86asm.enabled=false},
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

    int ftruncate(int fd, long length);

    int PROT_READ = 1;
    int PROT_WRITE = 2;
    int MAP_SHARED = 1;
    long MAP_FAILED = -1L;
    int EFD_CLOEXEC = 0x80000;
    int EFD_NONBLOCK = 0x800;
    int POLLIN = 1;
    int MFD_CLOEXEC = 1;
    int EINTR = 4;
    int EAGAIN = 11;

    int O_RDWR = 2;
    int O_CLOEXEC = 0x80000;
}
