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
 * <p>When a back-end dies QEMU rewinds the queue to its used index (the front-end keeps no other
 * record of where the back-end was) and hands the region to the next one. Since a request waiting for
 * a chunk load is handed to a loader and those behind it may complete first, the ring after the used
 * index mixes requests already completed with requests still in flight, so reading it again from
 * there would serve some twice and others never. The queue resumes as libvhost-user's
 * vu_check_queue_inflights does instead: the heads still marked here are served again first, oldest
 * first, and the ring is read on from used index + their number, where the dead back-end stopped
 * taking requests (every request it took is either in the used ring or marked). See {@link #resume}.
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
    /** Per queue, the age stamp of the last request begun: each queue's worker touches only its own. */
    private final long[] counters;

    private InflightRegion(int fd, long base, long size, int queues, int queueSize) {
        this.fd = fd;
        this.base = base;
        this.size = size;
        this.queues = queues;
        this.queueSize = queueSize;
        this.stride = strideOf(queueSize);
        this.counters = new long[queues];
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

    /** What a queue resuming over this region must do before it reads its ring on. */
    record Resumption(int[] heads, boolean signalGuest) {
        static final Resumption NONE = new Resumption(new int[0], false);
    }

    /**
     * Settles queue {@code q}'s marks against {@code ring}'s used ring and returns the heads a
     * previous back-end left in flight, oldest first. A completion published in the used ring whose
     * mark the back-end died before clearing lies between the region's used index and the ring's
     * ({@link #end} clears the mark, then records the used index): it is unmarked here, as
     * libvhost-user unmarks its last batch. The guest must be signalled when either was found: the
     * dead back-end may have published a completion and never sent its interrupt.
     */
    Resumption resume(int q, Virtqueue ring) {
        if (q >= queues) {
            return Resumption.NONE;
        }
        long h = base + q * stride;
        int ringUsed = ring.usedIdx;
        int regionUsed = NativeMemory.getU16(h + H_USED_IDX);
        int published = (ringUsed - regionUsed) & 0xffff;
        if (published <= ring.size) { // more is not this region's record of this ring: settle nothing
            for (int i = regionUsed; i != ringUsed; i = (i + 1) & 0xffff) {
                long id = Integer.toUnsignedLong(NativeMemory.getInt(
                        ring.used + Virtqueue.USED_RING + (long) Virtqueue.USED_ELEM_SIZE * (i % ring.size)));
                if (id < queueSize) {
                    NativeMemory.putByte(desc(h, (int) id) + D_INFLIGHT, (byte) 0);
                }
            }
        }
        int marked = 0;
        long[] byAge = new long[Math.min(queueSize, ring.size)];
        for (int d = 0; d < queueSize; d++) {
            long state = desc(h, d);
            if (NativeMemory.getByte(state + D_INFLIGHT) == 0) {
                continue;
            }
            if (d >= ring.size) { // not a head of this ring: nothing to serve again
                NativeMemory.putByte(state + D_INFLIGHT, (byte) 0);
                continue;
            }
            long age = NativeMemory.getLong(state + D_COUNTER);
            counters[q] = Math.max(counters[q], age); // later requests must sort after these at the next resume
            byAge[marked++] = age << 16 | d; // counters count requests: far below 2^47
        }
        java.util.Arrays.sort(byAge, 0, marked);
        int[] heads = new int[marked];
        for (int i = 0; i < marked; i++) {
            heads[i] = (int) (byAge[i] & 0xffff);
        }
        NativeMemory.putU16(h + H_USED_IDX, ringUsed);
        return new Resumption(heads, marked > 0 || published != 0);
    }

    /** Where descriptor {@code head}'s state lies in the queue whose header is at {@code queueHeader}. */
    private static long desc(long queueHeader, int head) {
        return queueHeader + QUEUE_HEADER + (long) DESC_STATE * head;
    }

    void begin(int q, int head) {
        if (q < queues && head < queueSize) {
            long d = desc(base + q * stride, head);
            NativeMemory.putLong(d + D_COUNTER, ++counters[q]);
            NativeMemory.putByte(d + D_INFLIGHT, (byte) 1);
        }
    }

    /** Clears the mark of a head given back to the avail ring uncompleted (it will be taken from there again). */
    void forget(int q, int head) {
        if (q < queues && head < queueSize) {
            NativeMemory.putByte(desc(base + q * stride, head) + D_INFLIGHT, (byte) 0);
        }
    }

    /** Clears a head after its completion is visible in the used ring. */
    void end(int q, int head, int usedIdx) {
        if (q < queues && head < queueSize) {
            long h = base + q * stride;
            NativeMemory.putByte(desc(h, head) + D_INFLIGHT, (byte) 0);
            NativeMemory.putU16(h + H_USED_IDX, usedIdx);
        }
    }

    @Override
    public void close() {
        Native.libc().munmap(base, size);
        Native.libc().close(fd);
    }
}
