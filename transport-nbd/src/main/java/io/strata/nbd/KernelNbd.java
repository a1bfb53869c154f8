package io.strata.nbd;

/** The kernel nbd driver's ioctls ({@code include/uapi/linux/nbd.h}): {@code _IO(0xab, n)}. */
final class KernelNbd {
    private KernelNbd() {
    }

    private static long io(int n) {
        return (0xabL << 8) | n;
    }

    static final long SET_SOCK = io(0);
    static final long SET_BLKSIZE = io(1);
    static final long SET_SIZE = io(2);
    static final long DO_IT = io(3);
    static final long CLEAR_SOCK = io(4);
    static final long CLEAR_QUE = io(5);
    static final long SET_SIZE_BLOCKS = io(7);
    static final long DISCONNECT = io(8);
    static final long SET_TIMEOUT = io(9);
    static final long SET_FLAGS = io(10);
}
