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

    int O_RDWR = 2;
    int O_CLOEXEC = 0x80000;
}
