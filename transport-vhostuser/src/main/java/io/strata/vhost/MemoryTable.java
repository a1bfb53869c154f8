package io.strata.vhost;

import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.IOException;

/**
 * The guest's memory as SET_MEM_TABLE describes it: regions mapped into this process (MAP_SHARED on
 * the received fds) and the two translations vhost-user needs. Descriptor addresses are
 * guest-physical; ring addresses (SET_VRING_ADDR) are the front-end's (QEMU's) virtual addresses.
 * A translation checks the whole range lies inside one region: anything else is the guest's error.
 */
final class MemoryTable implements AutoCloseable {
    /** The region layout in the message: 4 x u64, after a u32 count and u32 padding. */
    static final int REGION_SIZE = 32;
    static final int REGIONS_OFF = 8;
    static final int MAX_REGIONS = 8;

    private final int count;
    private final long[] guestPhys;
    private final long[] size;
    private final long[] userAddr;
    /** Host address of each region's first byte (mapping base + mmap_offset). */
    private final long[] host;
    private final long[] mapBase;
    private final long[] mapLength;

    private MemoryTable(int count) {
        this.count = count;
        guestPhys = new long[count];
        size = new long[count];
        userAddr = new long[count];
        host = new long[count];
        mapBase = new long[count];
        mapLength = new long[count];
    }

    static MemoryTable empty() {
        return new MemoryTable(0);
    }

    /** Maps the regions of a SET_MEM_TABLE message; closes every received fd either way. */
    static MemoryTable map(Message m) throws IOException {
        try {
            m.requireSize(REGIONS_OFF);
            int n = m.u32(0);
            if (n < 1 || n > MAX_REGIONS) {
                throw new VhostUserException("SET_MEM_TABLE with " + n + " regions (1.." + MAX_REGIONS + ")");
            }
            m.requireSize(REGIONS_OFF + n * REGION_SIZE);
            if (m.fdCount != n) {
                throw new VhostUserException("SET_MEM_TABLE with " + n + " regions but " + m.fdCount + " fds");
            }
            MemoryTable t = new MemoryTable(n);
            LibC libc = Native.libc();
            try {
                for (int i = 0; i < n; i++) {
                    int at = REGIONS_OFF + i * REGION_SIZE;
                    t.guestPhys[i] = m.payload.getLong(at);
                    t.size[i] = m.payload.getLong(at + 8);
                    t.userAddr[i] = m.payload.getLong(at + 16);
                    long mmapOffset = m.payload.getLong(at + 24);
                    if (t.size[i] <= 0 || mmapOffset < 0) {
                        throw new VhostUserException("SET_MEM_TABLE region " + i + ": size " + t.size[i] + ", mmap_offset " + mmapOffset);
                    }
                    // Map from offset 0 and skip mmap_offset, as libvhost-user does: the offset need
                    // not be page-aligned.
                    long len = t.size[i] + mmapOffset;
                    long addr = libc.mmap(0, len, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, m.fds[i], 0);
                    if (addr == LibC.MAP_FAILED || addr == 0) {
                        throw new IOException("mmap of region " + i + " (" + len + " bytes) failed: errno " + Native.errno());
                    }
                    t.mapBase[i] = addr;
                    t.mapLength[i] = len;
                    t.host[i] = addr + mmapOffset;
                }
            } catch (IOException | RuntimeException e) {
                t.close();
                throw e;
            }
            return t;
        } finally {
            MessageChannel.closeFds(m);
        }
    }

    /** Host address of guest-physical {@code gpa}, or 0 when [gpa, gpa+len) is not inside one region. */
    long guestToHost(long gpa, long len) {
        for (int i = 0; i < count; i++) {
            long off = gpa - guestPhys[i];
            if (off >= 0 && off < size[i] && len <= size[i] - off) {
                return host[i] + off;
            }
        }
        return 0;
    }

    /** How many bytes from {@code gpa} stay inside its region (0 when it is in none). */
    long contiguousFrom(long gpa) {
        for (int i = 0; i < count; i++) {
            long off = gpa - guestPhys[i];
            if (off >= 0 && off < size[i]) {
                return size[i] - off;
            }
        }
        return 0;
    }

    /** Host address of the front-end's virtual address {@code uva} (ring addresses), or 0. */
    long frontEndToHost(long uva, long len) {
        for (int i = 0; i < count; i++) {
            long off = uva - userAddr[i];
            if (off >= 0 && off < size[i] && len <= size[i] - off) {
                return host[i] + off;
            }
        }
        return 0;
    }

    int regions() {
        return count;
    }

    long totalBytes() {
        long t = 0;
        for (long s : size) {
            t += s;
        }
        return t;
    }

    @Override
    public void close() {
        LibC libc = Native.libc();
        for (int i = 0; i < count; i++) {
            if (mapBase[i] != 0) {
                libc.munmap(mapBase[i], mapLength[i]);
                mapBase[i] = 0;
            }
        }
    }
}
