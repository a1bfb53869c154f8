package io.strata.vhost;

import io.strata.core.buffer.NativeMemory;

/**
 * One request's descriptor chain, followed (including an indirect table) and translated to host
 * addresses: device-readable segments first, then device-writable ones, each inside one memory
 * region. Reused for every request of a queue; the chain is a byte stream, not a fixed layout.
 */
final class DescriptorChain {
    private final int capacity;
    final long[] addr;
    final int[] len;
    final boolean[] writable;
    int count;
    long readableBytes;
    long writableBytes;
    int head;
    /**
     * Host address of the chain's last byte when the last descriptor is device-writable and not empty
     * (virtio-blk's status byte), else 0.
     */
    long lastByte;
    /** When the worker took the chain off the ring ({@link System#nanoTime}): a request's latency runs from here. */
    long takenAt;
    /** Set once the request is counted as received (a request handed to a loader is counted when handed). */
    boolean counted;

    /**
     * Largest indirect table accepted: the largest queue's worth of descriptors. The spec sets no bound,
     * but a chain longer than that is a loop or a mistake, and following it costs time per request.
     */
    static final long MAX_INDIRECT_BYTES = (long) Virtqueue.DESC_SIZE * Virtqueue.MAX_SIZE;

    DescriptorChain(int capacity) {
        this.capacity = capacity;
        this.addr = new long[capacity];
        this.len = new int[capacity];
        this.writable = new boolean[capacity];
    }

    /** Follows the chain starting at {@code head}. */
    void load(Virtqueue q, MemoryTable memory, int head) throws BadChainException {
        this.head = head;
        takenAt = System.nanoTime();
        counted = false;
        count = 0;
        readableBytes = 0;
        writableBytes = 0;
        lastByte = 0;
        long table = q.desc;
        int tableSize = q.size;
        boolean indirect = false;
        int i = head;
        int visited = 0;
        for (;;) {
            if (++visited > tableSize) {
                throw new BadChainException("chain from head " + head + " is longer than its table of " + tableSize
                        + " (a loop?)");
            }
            long d = table + (long) Virtqueue.DESC_SIZE * i;
            long gpa = NativeMemory.getLong(d + Virtqueue.DESC_ADDR);
            long length = Integer.toUnsignedLong(NativeMemory.getInt(d + Virtqueue.DESC_LEN));
            int flags = NativeMemory.getU16(d + Virtqueue.DESC_FLAGS);
            int next = NativeMemory.getU16(d + Virtqueue.DESC_NEXT);
            if ((flags & Virtqueue.F_INDIRECT) != 0) {
                if (indirect) {
                    throw new BadChainException("nested indirect table in chain " + head);
                }
                if ((flags & Virtqueue.F_NEXT) != 0) {
                    throw new BadChainException("indirect descriptor with NEXT in chain " + head);
                }
                if (length == 0 || length % Virtqueue.DESC_SIZE != 0 || length > MAX_INDIRECT_BYTES) {
                    throw new BadChainException("indirect table of " + length + " bytes in chain " + head);
                }
                long host = memory.guestToHost(gpa, length);
                if (host == 0) {
                    throw new BadChainException("indirect table at guest 0x" + Long.toHexString(gpa) + "+" + length
                            + " is outside guest memory");
                }
                table = host;
                tableSize = (int) Math.min(Integer.MAX_VALUE, length / Virtqueue.DESC_SIZE);
                indirect = true;
                visited = 0;
                i = 0;
                continue;
            }
            boolean write = (flags & Virtqueue.F_WRITE) != 0;
            add(memory, gpa, length, write);
            if ((flags & Virtqueue.F_NEXT) == 0) {
                if (write && length > 0) {
                    lastByte = addr[count - 1] + len[count - 1] - 1;
                }
                return;
            }
            if (next >= tableSize) {
                throw new BadChainException("descriptor " + i + " points to " + next + " past its table of " + tableSize);
            }
            i = next;
        }
    }

    private void add(MemoryTable memory, long gpa, long length, boolean write) throws BadChainException {
        if (!write && writableBytes > 0) {
            throw new BadChainException("device-readable descriptor after a writable one in chain " + head);
        }
        long at = gpa;
        long left = length;
        while (left > 0) {
            long n = Math.min(left, memory.contiguousFrom(at));
            long host = n > 0 ? memory.guestToHost(at, n) : 0;
            if (host == 0) {
                throw new BadChainException("buffer at guest 0x" + Long.toHexString(at) + "+" + left
                        + " is outside guest memory (chain " + head + ")");
            }
            if (count == capacity) {
                throw new BadChainException("chain " + head + " has more than " + capacity + " segments");
            }
            n = Math.min(n, Integer.MAX_VALUE);
            addr[count] = host;
            len[count] = (int) n;
            writable[count] = write;
            count++;
            if (write) {
                writableBytes += n;
            } else {
                readableBytes += n;
            }
            at += n;
            left -= n;
            if (at == 0 && left > 0) { // a region ends at 2^64: the next byte is not guest address 0
                throw new BadChainException("buffer at guest 0x" + Long.toHexString(gpa) + "+" + length
                        + " wraps past the end of the address space (chain " + head + ")");
            }
        }
    }

    int capacity() {
        return capacity;
    }

    /** Makes this chain a copy of {@code other} (a request handed to a loader keeps its own). */
    void copyFrom(DescriptorChain other) {
        if (other.count > capacity) {
            throw new IllegalStateException("chain of " + other.count + " segments in a copy of capacity " + capacity);
        }
        System.arraycopy(other.addr, 0, addr, 0, other.count);
        System.arraycopy(other.len, 0, len, 0, other.count);
        System.arraycopy(other.writable, 0, writable, 0, other.count);
        count = other.count;
        readableBytes = other.readableBytes;
        writableBytes = other.writableBytes;
        head = other.head;
        lastByte = other.lastByte;
        takenAt = other.takenAt;
        counted = other.counted;
    }

    /** Copies the first {@code n} device-readable bytes (a request header) to {@code target}. */
    void copyReadable(long target, int n) {
        int done = 0;
        for (int s = 0; s < count && done < n && !writable[s]; s++) {
            int take = Math.min(len[s], n - done);
            NativeMemory.copy(addr[s], target + done, take);
            done += take;
        }
    }

    /**
     * For a chain {@link #load} rejected: the host address of its last byte if that can be found safely,
     * else 0. Only the chain's structure is followed (next links, one level of indirection, within each
     * table's bounds and guest memory); data descriptors are not checked, because one bad buffer is no
     * reason to leave the request without a status. The last descriptor must be device-writable, not
     * empty and wholly inside guest memory. A loop, a link out of its table, a table outside guest
     * memory or an ambiguous indirect descriptor (nested, or with NEXT) give 0: nothing to complete with.
     * An indirect table whose length is not a multiple of 16 is read up to its last whole descriptor.
     */
    static long findLastByte(Virtqueue q, MemoryTable memory, int head) {
        long table = q.desc;
        int tableSize = q.size;
        boolean indirect = false;
        int i = head;
        int visited = 0;
        for (;;) {
            if (i >= tableSize || ++visited > tableSize) {
                return 0;
            }
            long d = table + (long) Virtqueue.DESC_SIZE * i;
            long gpa = NativeMemory.getLong(d + Virtqueue.DESC_ADDR);
            long length = Integer.toUnsignedLong(NativeMemory.getInt(d + Virtqueue.DESC_LEN));
            int flags = NativeMemory.getU16(d + Virtqueue.DESC_FLAGS);
            if ((flags & Virtqueue.F_INDIRECT) != 0) {
                long entries = Math.min(length, MAX_INDIRECT_BYTES) / Virtqueue.DESC_SIZE;
                if (indirect || (flags & Virtqueue.F_NEXT) != 0 || entries == 0) {
                    return 0;
                }
                long host = memory.guestToHost(gpa, entries * Virtqueue.DESC_SIZE);
                if (host == 0) {
                    return 0;
                }
                table = host;
                tableSize = (int) entries;
                indirect = true;
                visited = 0;
                i = 0;
                continue;
            }
            if ((flags & Virtqueue.F_NEXT) == 0) {
                if ((flags & Virtqueue.F_WRITE) == 0 || length == 0 || !memory.covers(gpa, length)) {
                    return 0;
                }
                return memory.guestToHost(gpa + length - 1, 1);
            }
            i = NativeMemory.getU16(d + Virtqueue.DESC_NEXT);
        }
    }
}
