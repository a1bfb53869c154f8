package io.strata.vhost;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
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

    final int index;
    int size;
    long desc;
    long avail;
    long used;
    int lastAvail;
    int usedIdx;
    boolean eventIdx;
    int kickFd = -1;
    int callFd = -1;
    boolean enabled;
    boolean addressesSet;
    /** The front-end's ring addresses, kept so a new memory table can re-translate them. */
    long descUva;
    long availUva;
    long usedUva;
    /** The 8-byte value written to the call eventfd (kept referenced: its memory must not be freed). */
    private final io.strata.core.buffer.NativeBuffer callValueBuffer = io.strata.core.buffer.NativeBuffer.allocate(8);
    private final long callValue = callValueBuffer.address();

    Virtqueue(int index) {
        this.index = index;
        NativeMemory.putLong(callValue, 1);
    }

    /** Translates and checks the ring addresses against the memory table; false if any is unmapped. */
    boolean translate(MemoryTable memory) {
        long d = memory.frontEndToHost(descUva, (long) DESC_SIZE * size);
        long a = memory.frontEndToHost(availUva, AVAIL_RING + 2L * size + 2);
        long u = memory.frontEndToHost(usedUva, USED_RING + (long) USED_ELEM_SIZE * size + 2);
        if (d == 0 || a == 0 || u == 0) {
            return false;
        }
        desc = d;
        avail = a;
        used = u;
        return true;
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
            throw new BadChainException("avail ring names descriptor " + head + " in a queue of " + size);
        }
        return head;
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

    /** With EVENT_IDX, tells the driver to kick only once it passes {@code lastAvail}. */
    void setAvailEvent() {
        NativeMemory.putU16(used + USED_RING + (long) USED_ELEM_SIZE * size, lastAvail);
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
            Native.libc().write(callFd, callValue, 8);
        }
    }

    boolean ready() {
        return enabled && addressesSet && kickFd >= 0 && size > 0;
    }

    void closeFds() {
        LibC libc = Native.libc();
        if (kickFd >= 0) {
            libc.close(kickFd);
            kickFd = -1;
        }
        if (callFd >= 0) {
            libc.close(callFd);
            callFd = -1;
        }
    }
}
