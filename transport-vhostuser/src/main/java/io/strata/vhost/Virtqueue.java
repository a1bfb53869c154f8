package io.strata.vhost;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.Native;

/**
 * A split virtqueue (virtio 1.x section 2.7) living in mapped guest memory: descriptor table, avail
 * ring (driver to device), used ring (device to driver). It knows nothing of block devices: it hands
 * out available heads, takes completions, and decides when the guest needs an interrupt.
 *
 * <p>Memory ordering, as the spec asks: avail->idx is read with acquire before the entries it
 * publishes; used->idx is written with release after the entries; a full fence separates publishing
 * used->idx from reading the driver's used_event / flags.
 */
final class Virtqueue {
    static final int DESC_SIZE = 16;
    static final int DESC_ADDR = 0;
    static final int DESC_LEN = 8;
    static final int DESC_FLAGS = 12;
    static final int DESC_NEXT = 14;
    static final int F_NEXT = 1;
    static final int F_WRITE = 2;
    static final int F_INDIRECT = 4;

    static final int AVAIL_FLAGS = 0;
    static final int AVAIL_IDX = 2;
    static final int AVAIL_RING = 4;
    static final int AVAIL_F_NO_INTERRUPT = 1;
    static final int USED_IDX = 2;
    static final int USED_RING = 4;
    static final int USED_ELEM_SIZE = 8;
    static final int MAX_SIZE = 32768;

    // The configuration, fixed for the life of one worker: a change starts a new worker with a new
    // Virtqueue (see Vring), so the worker never reads a field the session thread writes.
    final int index;
    final int size;
    final long desc;
    final long avail;
    final long used;
    final boolean eventIdx;
    final int callFd;
    final int errFd;
    // The ring position: the worker's alone while it runs; the session reads it back after the worker stopped.
    int lastAvail;
    int usedIdx;
    /** The 8-byte value written to the call and err eventfds (kept referenced: its memory must not be freed). */
    private final io.strata.core.buffer.NativeBuffer oneBuffer = io.strata.core.buffer.NativeBuffer.allocate(8);
    private final long one = oneBuffer.address();

    /** A queue whose rings lie at host addresses {@code desc}, {@code avail}, {@code used} (see {@link #translate}). */
    Virtqueue(int index, int size, long[] rings, boolean eventIdx, int callFd, int errFd, int lastAvail) {
        this.index = index;
        this.size = size;
        this.desc = rings[0];
        this.avail = rings[1];
        this.used = rings[2];
        this.eventIdx = eventIdx;
        this.callFd = callFd;
        this.errFd = errFd;
        this.lastAvail = lastAvail;
        NativeMemory.putLong(one, 1);
        syncUsedIndex();
    }

    /**
     * Host addresses of a queue's three rings (desc, avail, used) from the front-end's addresses, or a
     * reason why not: each ring must lie inside one region and be aligned as virtio 1.x section 2.7
     * asks (16, 2 and 4 bytes), so that the 16-bit indexes are read and written whole.
     */
    static String translate(MemoryTable memory, int size, long descUva, long availUva, long usedUva, long[] out) {
        long d = memory.frontEndToHost(descUva, (long) DESC_SIZE * size);
        long a = memory.frontEndToHost(availUva, AVAIL_RING + 2L * size + 2);
        long u = memory.frontEndToHost(usedUva, USED_RING + (long) USED_ELEM_SIZE * size + 2);
        if (d == 0 || a == 0 || u == 0) {
            return "a ring of " + size + " at 0x" + Long.toHexString(d == 0 ? descUva : a == 0 ? availUva : usedUva)
                    + " is not inside one region of the memory table";
        }
        if ((d & 15) != 0 || (a & 1) != 0 || (u & 3) != 0) {
            return "rings at host 0x" + Long.toHexString(d) + ", 0x" + Long.toHexString(a) + ", 0x" + Long.toHexString(u)
                    + " are not aligned to 16, 2 and 4 bytes";
        }
        out[0] = d;
        out[1] = a;
        out[2] = u;
        return null;
    }

    /** Takes up where the used ring stands (after SET_VRING_BASE, or a reconnect). */
    void syncUsedIndex() {
        usedIdx = NativeMemory.getU16Acquire(used + USED_IDX);
    }

    /** The next available head, or -1 when the driver has published nothing new. */
    int nextHead() throws BadChainException {
        int availIdx = NativeMemory.getU16Acquire(avail + AVAIL_IDX);
        if (availIdx == lastAvail) {
            return -1;
        }
        if (((availIdx - lastAvail) & 0xffff) > size) {
            throw new BadChainException("avail idx " + availIdx + " runs " + ((availIdx - lastAvail) & 0xffff)
                    + " entries ahead of " + lastAvail + " in a queue of " + size);
        }
        int head = NativeMemory.getU16(avail + AVAIL_RING + 2L * (lastAvail % size));
        lastAvail = (lastAvail + 1) & 0xffff;
        if (head >= size) {
            unpop();
            throw new BadChainException("avail ring names descriptor " + head + " in a queue of " + size);
        }
        return head;
    }

    /** Gives back the head {@link #nextHead} took: it was not completed, and stays available. */
    void unpop() {
        lastAvail = (lastAvail - 1) & 0xffff;
    }

    /** Records a completion (not yet visible to the guest: see {@link #publishUsed}). */
    void putUsed(int head, int length) {
        long e = used + USED_RING + (long) USED_ELEM_SIZE * (usedIdx % size);
        NativeMemory.putInt(e, head);
        NativeMemory.putInt(e + 4, length);
        usedIdx = (usedIdx + 1) & 0xffff;
    }

    void publishUsed() {
        NativeMemory.putU16Release(used + USED_IDX, usedIdx);
    }

    /**
     * With EVENT_IDX, tells the driver to kick only once it passes {@code lastAvail}. The full fence
     * keeps the store ahead of the caller's next read of the avail index (a store may otherwise pass
     * a later load, on x86 too): else the driver could add a request, read the old avail_event and not
     * kick, while this side reads the old index and sleeps (QEMU's virtio_queue_split_set_notification
     * has smp_mb() there, "Expose avail event/used flags before caller checks the avail idx").
     */
    void setAvailEvent() {
        NativeMemory.putU16(used + USED_RING + (long) USED_ELEM_SIZE * size, lastAvail);
        NativeMemory.fullFence();
    }

    /** Whether the guest wants an interrupt for the completions published since {@code oldUsed}. */
    boolean needsNotify(int oldUsed) {
        NativeMemory.fullFence();
        if (eventIdx) {
            int usedEvent = NativeMemory.getU16(avail + AVAIL_RING + 2L * size);
            // vring_need_event(): notify if used_event lies in (oldUsed, usedIdx].
            return ((usedIdx - usedEvent - 1) & 0xffff) < ((usedIdx - oldUsed) & 0xffff);
        }
        return (NativeMemory.getU16(avail + AVAIL_FLAGS) & AVAIL_F_NO_INTERRUPT) == 0;
    }

    /** Signals the guest through the call eventfd. */
    void notifyGuest() {
        if (callFd >= 0) {
            Native.libc().write(callFd, one, 8);
        }
    }

    /** Signals the front-end through the err eventfd (SET_VRING_ERR) that the queue stopped on an error. */
    void notifyError() {
        if (errFd >= 0) {
            Native.libc().write(errFd, one, 8);
        }
    }
}
