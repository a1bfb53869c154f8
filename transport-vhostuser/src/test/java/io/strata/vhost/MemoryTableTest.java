package io.strata.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import org.junit.jupiter.api.Test;

/** Address translation: guest-physical for descriptors, front-end virtual for rings, whole ranges only. */
class MemoryTableTest {
    static int memfd(long size) throws Exception {
        LibC libc = Native.libc();
        int fd = Native.check(libc.memfd_create("mt-test", 0), "memfd_create");
        Native.check(libc.ftruncate(fd, size), "ftruncate");
        return fd;
    }

    /** Two regions: [0, 1 MiB) and [4 GiB, 4 GiB + 2 MiB), the second mapped from offset 4096 of its fd. */
    static Message twoRegions() throws Exception {
        Message m = new Message();
        m.request = VhostUserProtocol.SET_MEM_TABLE;
        m.payload.clear();
        m.payload.putInt(0, 2).putInt(4, 0);
        m.payload.putLong(8, 0).putLong(16, 1 << 20).putLong(24, 0x7000_0000_0000L).putLong(32, 0);
        m.payload.putLong(40, 4L << 30).putLong(48, 2 << 20).putLong(56, 0x7100_0000_0000L).putLong(64, 4096);
        m.size = 72;
        m.fds[0] = memfd(1 << 20);
        m.fds[1] = memfd((2 << 20) + 4096);
        m.fdCount = 2;
        return m;
    }

    @Test
    void translatesWholeRangesOnly() throws Exception {
        try (MemoryTable t = MemoryTable.map(twoRegions())) {
            assertEquals(2, t.regions());
            long a = t.guestToHost(0x1000, 16);
            long b = t.guestToHost((4L << 30) + 0x1000, 16);
            assertEquals(true, a != 0 && b != 0);
            // The same byte through both address spaces.
            assertEquals(a, t.frontEndToHost(0x7000_0000_1000L, 16));
            assertEquals(b, t.frontEndToHost(0x7100_0000_1000L, 16));
            NativeMemory.putLong(a, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, NativeMemory.getLong(t.frontEndToHost(0x7000_0000_1000L, 8)));
            // Ranges that leave their region, or start in none, do not translate.
            assertEquals(0, t.guestToHost((1 << 20) - 8, 16));
            assertEquals(0, t.guestToHost(2 << 20, 1));
            assertEquals(0, t.guestToHost((4L << 30) - 1, 2));
            assertEquals(0, t.frontEndToHost(0x7000_0000_0000L - 1, 1));
            assertEquals(8, t.contiguousFrom((1 << 20) - 8));
            assertEquals(0, t.contiguousFrom(3 << 20));
        }
    }

    @Test
    void rejectsTablesThatDoNotAddUp() throws Exception {
        Message m = twoRegions();
        m.fdCount = 1; // two regions, one fd
        Native.libc().close(m.fds[1]);
        assertThrows(VhostUserException.class, () -> MemoryTable.map(m));
        Message none = new Message();
        none.request = VhostUserProtocol.SET_MEM_TABLE;
        none.payload.putInt(0, 0);
        none.size = 8;
        assertThrows(VhostUserException.class, () -> MemoryTable.map(none));
    }
}
