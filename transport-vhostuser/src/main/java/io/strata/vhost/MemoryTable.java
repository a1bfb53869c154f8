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
                    checkRegion(i, t.guestPhys[i], t.size[i], t.userAddr[i], mmapOffset, m.fds[i]);
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

    /**
     * A region must fit both address spaces without wrapping past 2^64 and lie inside its fd: a mapping
     * past the end of the file would turn the guest's first access there into SIGBUS, which kills the JVM.
     */
    private static void checkRegion(int i, long gpa, long size, long uva, long mmapOffset, int fd) throws VhostUserException {
        String what = "SET_MEM_TABLE region " + i + " (guest 0x" + Long.toHexString(gpa) + ", size 0x" + Long.toHexString(size)
                + ", user 0x" + Long.toHexString(uva) + ", mmap_offset 0x" + Long.toHexString(mmapOffset) + ")";
        if (size <= 0 || mmapOffset < 0 || mmapOffset > Long.MAX_VALUE - size) {
            throw new VhostUserException(what + ": size and offset must be positive and not overflow");
        }
        if (Long.compareUnsigned(gpa + size - 1, gpa) < 0 || Long.compareUnsigned(uva + size - 1, uva) < 0) {
            throw new VhostUserException(what + " runs past the end of the address space");
        }
        long fileSize = fileSize(fd);
        if (fileSize < mmapOffset + size) {
            throw new VhostUserException(what + " ends past its file of " + fileSize + " bytes");
        }
    }

    /** The size of the file behind {@code fd} (fstat), or -1 when it cannot be had. */
    static long fileSize(int fd) {
        try {
            jnr.posix.FileStat st = POSIX_API.fstat(fd);
            return st == null ? -1 : st.st_size();
        } catch (RuntimeException e) { // jnr-posix reports errno by throwing
            return -1;
        }
    }

    private static final jnr.posix.POSIX POSIX_API = jnr.posix.POSIXFactory.getNativePOSIX();

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

    /** Whether every byte of [gpa, gpa+len) is guest memory (the range may cross from one region into the next). */
    boolean covers(long gpa, long len) {
        long at = gpa;
        long left = len;
        for (int pieces = 0; left > 0; pieces++) {
            long n = contiguousFrom(at);
            if (n == 0 || pieces > count) {
                return false;
            }
            if (n >= left) {
                return true;
            }
            if (at + n == 0) { // the region ends at 2^64: the range would wrap to guest address 0
                return false;
            }
            at += n;
            left -= n;
        }
        return true;
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
