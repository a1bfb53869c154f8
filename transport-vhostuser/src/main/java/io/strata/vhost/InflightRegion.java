package io.strata.vhost;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.IOException;

/**
 * The shared "inflight" memory of VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD: the back-end records which
 * descriptor heads it is working on; QEMU keeps the fd and hands it to the next back-end after a
 * restart (SET_INFLIGHT_FD). QEMU never reads the content, so the layout is the back-end's; Strata
 * uses libvhost-user's split-ring layout so the region means the same thing to anyone reading it:
 * per queue a 16-byte header {u64 features, u16 version, u16 desc_num, u16 last_batch_head,
 * u16 used_idx} and 16 bytes per descriptor {u8 inflight, u8 pad[5], u16 next, u64 counter},
 * the queue's area rounded up to 64 bytes.
 *
 * <p>QEMU rewinds a queue to its used index when a back-end dies, and the new back-end reads the
 * ring again from there; the region tells it how many requests were in flight. That is exact only
 * while requests complete in order: since a request waiting for a chunk load is handed to a loader
 * and those behind it may complete first, a back-end that dies with such a request in flight leaves
 * a completed one after it in the ring, which the new back-end serves again while the one in flight
 * is never served (libvhost-user resubmits the marked heads first; Strata does not yet).
 */
final class InflightRegion implements AutoCloseable {
    static final int QUEUE_HEADER = 16;
    static final int DESC_STATE = 16;
    static final int H_VERSION = 8;
    static final int H_DESC_NUM = 10;
    static final int H_USED_IDX = 14;
    static final int D_INFLIGHT = 0;
    static final int D_COUNTER = 8;
    static final int ALIGN = 64;
    static final int VERSION = 1;

    /** 32768 descriptors of 16 bytes for each of 255 queues fits well under this. */
    static final long MAX_SIZE = 1L << 30;

    final int fd;
    final long size;
    private final long base;
    private final int queues;
    private final int queueSize;
    private final long stride;
    private long counter;

    private InflightRegion(int fd, long base, long size, int queues, int queueSize) {
        this.fd = fd;
        this.base = base;
        this.size = size;
        this.queues = queues;
        this.queueSize = queueSize;
        this.stride = strideOf(queueSize);
    }

    static long strideOf(int queueSize) {
        return (QUEUE_HEADER + (long) DESC_STATE * queueSize + ALIGN - 1) & -ALIGN;
    }

    /** A fresh, zeroed region in a new memfd (GET_INFLIGHT_FD). */
    static InflightRegion create(int queues, int queueSize) throws IOException {
        LibC libc = Native.libc();
        long size = strideOf(queueSize) * queues;
        int fd = Native.check(libc.memfd_create("strata-inflight", LibC.MFD_CLOEXEC), "memfd_create");
        if (libc.ftruncate(fd, size) < 0) {
            libc.close(fd);
            throw new IOException("ftruncate inflight memfd: errno " + Native.errno());
        }
        InflightRegion r = map(fd, size, 0, queues, queueSize);
        for (int q = 0; q < queues; q++) {
            long h = r.base + q * r.stride;
            NativeMemory.putU16(h + H_VERSION, VERSION);
            NativeMemory.putU16(h + H_DESC_NUM, queueSize);
        }
        return r;
    }

    /** Maps a region QEMU hands back after a reconnect (SET_INFLIGHT_FD); takes ownership of fd. */
    static InflightRegion map(int fd, long size, long offset, int queues, int queueSize) throws IOException {
        if (size < strideOf(queueSize) * queues || size > MAX_SIZE) {
            Native.libc().close(fd);
            throw new VhostUserException("inflight region of " + size + " bytes for " + queues + " x " + queueSize
                    + " descriptors (needs " + strideOf(queueSize) * queues + ", at most " + MAX_SIZE + ")");
        }
        // The mapping must lie inside the file: touching a page past its end is SIGBUS, which kills the JVM.
        long fileSize = MemoryTable.fileSize(fd);
        if (offset < 0 || (offset & 4095) != 0 || offset > fileSize || size > fileSize - offset) {
            Native.libc().close(fd);
            throw new VhostUserException("inflight region of " + size + " bytes at offset " + offset
                    + " does not fit its file of " + fileSize + " bytes (or the offset is not page-aligned)");
        }
        long addr = Native.libc().mmap(0, size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, offset);
        if (addr == LibC.MAP_FAILED || addr == 0) {
            Native.libc().close(fd);
            throw new IOException("mmap inflight region failed: errno " + Native.errno());
        }
        return new InflightRegion(fd, addr, size, queues, queueSize);
    }

    int queues() {
        return queues;
    }

    int queueSize() {
        return queueSize;
    }

    /** Descriptors a previous back-end left marked in flight on queue {@code q}. */
    int countInflight(int q) {
        if (q >= queues) {
            return 0;
        }
        int n = 0;
        long h = base + q * stride;
        for (int d = 0; d < queueSize; d++) {
            if (NativeMemory.getByte(h + QUEUE_HEADER + (long) DESC_STATE * d + D_INFLIGHT) != 0) {
                n++;
            }
        }
        return n;
    }

    /** Forgets stale marks of queue {@code q} (its requests will be read from the ring again). */
    void clearQueue(int q) {
        if (q < queues) {
            NativeMemory.zero(base + q * stride + QUEUE_HEADER, (long) DESC_STATE * queueSize);
        }
    }

    void begin(int q, int head) {
        if (q < queues && head < queueSize) {
            long d = base + q * stride + QUEUE_HEADER + (long) DESC_STATE * head;
            NativeMemory.putLong(d + D_COUNTER, ++counter);
            NativeMemory.putByte(d + D_INFLIGHT, (byte) 1);
        }
    }

    /** Clears a head after its completion is visible in the used ring. */
    void end(int q, int head, int usedIdx) {
        if (q < queues && head < queueSize) {
            long h = base + q * stride;
            NativeMemory.putByte(h + QUEUE_HEADER + (long) DESC_STATE * head + D_INFLIGHT, (byte) 0);
            NativeMemory.putU16(h + H_USED_IDX, usedIdx);
        }
    }

    @Override
    public void close() {
        Native.libc().munmap(base, size);
        Native.libc().close(fd);
    }
}
