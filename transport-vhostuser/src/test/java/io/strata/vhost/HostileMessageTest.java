package io.strata.vhost;

import static io.strata.vhost.TestFrontEnd.GPA_BASE;
import static io.strata.vhost.TestFrontEnd.MEM_SIZE;
import static io.strata.vhost.TestFrontEnd.UVA_BASE;
import static io.strata.vhost.TestFrontEnd.uva;
import static io.strata.vhost.VhostUserProtocol.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * vhost-user messages with fields at their extremes (issue 8). The defined behaviour: the back-end
 * refuses the message with one log line naming message, field and value; if the front-end asked for
 * REPLY_ACK it gets a failure reply (nonzero); the session then ends, with everything it had mapped,
 * opened or started released, and nothing of the refused message applied. After every case the
 * server is alive and a fresh session reads correct bytes ({@link BackEndFixture}).
 */
class HostileMessageTest extends BackEndFixture {
    static final int ALL_ONES = 0xffffffff;
    static final long HALF = MEM_SIZE / 2;

    static ByteBuffer bytes(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A memory table of regions {gpa, size, uva, mmap_offset}. */
    static ByteBuffer table(int count, long[]... regions) {
        ByteBuffer b = bytes(8 + 32 * regions.length).putInt(count).putInt(0);
        for (long[] r : regions) {
            b.putLong(r[0]).putLong(r[1]).putLong(r[2]).putLong(r[3]);
        }
        return b.flip();
    }

    /** The back-end refuses {@code request}: a failure ack when the message has no reply of its own, then EOF. */
    static void refused(TestFrontEnd fe, int request, ByteBuffer payload, int... fds) throws Exception {
        fe.send(request, FLAG_NEED_REPLY, payload, fds);
        boolean ownReply = request == GET_VRING_BASE || request == GET_CONFIG || request == GET_INFLIGHT_FD
                || request == GET_FEATURES || request == GET_PROTOCOL_FEATURES || request == GET_QUEUE_NUM;
        if (!ownReply) {
            assertNotEquals(0, fe.reply(request).getLong(0), requestName(request) + " must be refused with a failure ack");
        }
        assertSessionClosed(fe);
    }

    /** A session with features negotiated (REPLY_ACK on) and, if asked, guest memory and queue 0 running. */
    TestFrontEnd session(boolean running) throws Exception {
        TestFrontEnd fe = new TestFrontEnd(socket);
        if (running) {
            fe.setUp(true);
            assertReads(fe, 1, 512);
        } else {
            fe.negotiate(true);
        }
        return fe;
    }

    @Test
    void everyPerQueueMessageWithQueueIndexAllOnes() throws Exception {
        int[] plain = {SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE, GET_VRING_BASE};
        for (int request : plain) {
            try (TestFrontEnd fe = session(true)) {
                refused(fe, request, TestFrontEnd.state(ALL_ONES, 1));
            }
        }
        try (TestFrontEnd fe = session(true)) {
            ByteBuffer addr = bytes(40).putInt(ALL_ONES).putInt(0).putLong(uva(TestFrontEnd.DESC))
                    .putLong(uva(TestFrontEnd.USED)).putLong(uva(TestFrontEnd.AVAIL)).putLong(0).flip();
            refused(fe, SET_VRING_ADDR, addr);
        }
        for (int request : new int[] {SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR}) {
            try (TestFrontEnd fe = session(true)) { // index 0xff, no-fd flag set
                refused(fe, request, TestFrontEnd.u64(0xffffffffL));
            }
            try (TestFrontEnd fe = session(true)) { // every bit set, with an fd
                refused(fe, request, TestFrontEnd.u64(-1L), fe.kick);
            }
        }
    }

    @Test
    void queueSizesThatAreNotAPowerOfTwoUpTo32768() throws Exception {
        for (int num : new int[] {0, 3, 65536, ALL_ONES}) {
            try (TestFrontEnd fe = session(false)) {
                refused(fe, SET_VRING_NUM, TestFrontEnd.state(0, num));
            }
        }
    }

    @Test
    void memoryTablesThatDoNotAddUp() throws Exception {
        long[] good = {GPA_BASE, MEM_SIZE, UVA_BASE, 0};
        long[][] regions100 = new long[100][];
        java.util.Arrays.fill(regions100, good);
        ByteBuffer[] tables = {
            table(100, regions100),                                          // 100 regions, 1 fd
            table(0, good),                                                  // none
            table(1, new long[] {GPA_BASE, Long.MAX_VALUE, UVA_BASE, 4096}), // size + offset overflows
            table(1, new long[] {GPA_BASE, -1L, UVA_BASE, 0}),               // size 2^64 - 1
            table(1, new long[] {GPA_BASE, MEM_SIZE, UVA_BASE, -4096}),      // negative offset
            table(1, new long[] {-4096, MEM_SIZE, UVA_BASE, 0}),             // guest addresses wrap past 2^64
            table(1, new long[] {GPA_BASE, MEM_SIZE, -4096, 0}),             // front-end addresses wrap
            table(1, new long[] {GPA_BASE, MEM_SIZE + 4096, UVA_BASE, 0}),   // larger than its memfd (SIGBUS)
            table(1, new long[] {GPA_BASE, MEM_SIZE, UVA_BASE, 4096}),       // offset pushes the end past the memfd
            table(2, good),                                                  // 2 regions claimed, 1 described
        };
        for (ByteBuffer t : tables) {
            try (TestFrontEnd fe = session(false)) {
                refused(fe, SET_MEM_TABLE, t, fe.memFd);
            }
        }
        try (TestFrontEnd fe = session(true)) { // a running queue whose rings the new table does not map
            refused(fe, SET_MEM_TABLE, table(1, new long[] {GPA_BASE, MEM_SIZE, UVA_BASE + (1L << 40), 0}), fe.memFd);
        }
    }

    @Test
    void unalignedRingsAndRingsOutsideOrAcrossRegions() throws Exception {
        long desc = uva(TestFrontEnd.DESC);
        long used = uva(TestFrontEnd.USED);
        long avail = uva(TestFrontEnd.AVAIL);
        ByteBuffer[] addrs = {
            TestFrontEnd.ringAddresses(desc + 8, used, avail),  // desc: 16-byte alignment
            TestFrontEnd.ringAddresses(desc, used + 2, avail),  // used: 4-byte alignment
            TestFrontEnd.ringAddresses(desc, used, avail + 1),  // avail: 2-byte alignment
            TestFrontEnd.ringAddresses(-1L, -1L, -1L),
            TestFrontEnd.ringAddresses(UVA_BASE + MEM_SIZE - 64, used, avail), // desc's end past memory
        };
        for (ByteBuffer a : addrs) {
            try (TestFrontEnd fe = session(true)) {
                refused(fe, SET_VRING_ADDR, a);
            }
        }
        // Two regions, adjacent in both address spaces but mapped apart: a ring may not straddle them.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.negotiate(true);
            assertEquals(0, fe.acked(SET_MEM_TABLE, twoRegions(), fe.memFd, fe.memFd));
            fe.send(SET_VRING_NUM, 0, TestFrontEnd.state(0, TestFrontEnd.QSIZE));
            refused(fe, SET_VRING_ADDR, TestFrontEnd.ringAddresses(UVA_BASE + HALF - 64, used, avail));
        }
    }

    /** Guest memory as two regions of the same memfd: [GPA_BASE, +8 MiB) and [GPA_BASE + 8 MiB, +8 MiB). */
    static ByteBuffer twoRegions() {
        return table(2, new long[] {GPA_BASE, HALF, UVA_BASE, 0}, new long[] {GPA_BASE + HALF, HALF, UVA_BASE + HALF, HALF});
    }

    @Test
    void aBufferAcrossTwoRegionsIsServedAndOneBytePastTheLastIsNot() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.negotiate(true);
            assertEquals(0, fe.acked(SET_MEM_TABLE, twoRegions(), fe.memFd, fe.memFd));
            fe.startQueue(0);
            long across = GPA_BASE + HALF - 256; // 256 bytes in the first region, 256 in the second
            fe.request(VirtioBlk.T_IN, 6, 512);
            fe.desc(1, across, 512, Virtqueue.F_NEXT | Virtqueue.F_WRITE, 2);
            fe.submit(0);
            assertEquals(513, fe.awaitUsed(5000)[1]);
            assertEquals(VirtioBlk.S_OK, fe.status());
            for (int i = 0; i < 512; i++) {
                assertEquals(image[6 * 512 + i], NativeMemory.getByte(fe.host(across) + i), "byte " + i);
            }
            fe.request(VirtioBlk.T_IN, 6, 512);
            fe.desc(1, GPA_BASE + MEM_SIZE - 511, 512, Virtqueue.F_NEXT | Virtqueue.F_WRITE, 2);
            fe.status(0);
            fe.submit(0);
            assertEquals(1, fe.awaitUsed(5000)[1]);
            assertEquals(VirtioBlk.S_IOERR, fe.status());
        }
    }

    /**
     * A region that ends at 2^64 and another at guest address 0 are not one range: a buffer running
     * off the top of the address space is refused like any wrapping buffer, though each of its two
     * pieces lies in guest memory (it was served, half from the top region, half from address 0).
     */
    @Test
    void aBufferWrappingFromTheTopOfTheAddressSpaceToZeroGetsIoError() throws Exception {
        long mib = 1 << 20;
        long top = -mib; // [2^64 - 1 MiB, 2^64)
        ByteBuffer threeRegions = table(3, new long[] {GPA_BASE, HALF, UVA_BASE, 0},
                new long[] {top, mib, UVA_BASE + HALF, HALF}, new long[] {0, mib, UVA_BASE + HALF + mib, HALF + mib});
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.negotiate(true);
            assertEquals(0, fe.acked(SET_MEM_TABLE, threeRegions, fe.memFd, fe.memFd, fe.memFd));
            fe.startQueue(0);
            fe.request(VirtioBlk.T_IN, 6, 512);
            fe.desc(1, -256L, 512, Virtqueue.F_NEXT | Virtqueue.F_WRITE, 2); // 256 bytes at the top, 256 at 0
            fe.status(0);
            fe.submit(0);
            assertEquals(1, fe.awaitUsed(5000)[1], "used length: the status byte only");
            assertEquals(VirtioBlk.S_IOERR, fe.status());
            // Each region on its own still serves: the top region's last 512 bytes.
            fe.request(VirtioBlk.T_IN, 6, 512);
            fe.desc(1, -512L, 512, Virtqueue.F_NEXT | Virtqueue.F_WRITE, 2);
            fe.status(0x7f);
            fe.submit(0);
            assertEquals(513, fe.awaitUsed(5000)[1]);
            assertEquals(VirtioBlk.S_OK, fe.status());
            for (int i = 0; i < 512; i++) {
                assertEquals(image[6 * 512 + i], NativeMemory.getByte(fe.mem + HALF + mib - 512 + i), "byte " + i);
            }
        }
    }

    @Test
    void payloadSizesThatLie() throws Exception {
        // Larger than any message: refused before anything is read.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.channel.write(bytes(12).putInt(GET_FEATURES).putInt(VERSION).putInt(ALL_ONES).flip());
            assertSessionClosed(fe);
        }
        // Larger than what follows: the back-end reads the announced bytes, so the next message becomes
        // this one's payload (it gets no reply) and the one after is answered in order.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            ByteBuffer two = bytes(36).putInt(GET_FEATURES).putInt(VERSION).putInt(12)
                    .putInt(GET_QUEUE_NUM).putInt(VERSION).putInt(0)
                    .putInt(GET_PROTOCOL_FEATURES).putInt(VERSION).putInt(0).flip();
            fe.channel.write(two);
            fe.reply(GET_FEATURES);
            fe.reply(GET_PROTOCOL_FEATURES); // not GET_QUEUE_NUM: that was payload
            fe.setUp(true);
            assertReads(fe, 2, 512);
        }
        // Smaller than the request needs (empty, or 4 bytes: a queue index and no more).
        int[] sized = {SET_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE,
            SET_VRING_ADDR, SET_VRING_KICK, SET_MEM_TABLE, GET_CONFIG, GET_INFLIGHT_FD, SET_INFLIGHT_FD};
        for (int request : sized) {
            for (int size : new int[] {0, 4}) {
                try (TestFrontEnd fe = session(false)) {
                    refused(fe, request, size == 0 ? null : bytes(4).putInt(0).flip());
                }
            }
        }
    }

    @Test
    void configAndInflightFieldsAtTheirExtremes() throws Exception {
        for (int[] c : new int[][] {{ALL_ONES, ALL_ONES}, {0, 257}, {250, 8}, {ALL_ONES, 1}}) {
            try (TestFrontEnd fe = session(false)) {
                refused(fe, GET_CONFIG, bytes(12).putInt(c[0]).putInt(c[1]).putInt(0).flip());
            }
        }
        try (TestFrontEnd fe = session(false)) {
            refused(fe, GET_INFLIGHT_FD, bytes(24).putLong(0).putLong(0).putShort((short) -1).putShort((short) -1).putInt(0).flip());
        }
        LibC libc = Native.libc();
        long[][] sizeOffset = {{1L << 30, 0}, {4096, 4096}, {4096, -4096}, {Long.MAX_VALUE, 0}, {4096, 1}};
        for (long[] so : sizeOffset) {
            int small = Native.check(libc.memfd_create("inflight-test", 0), "memfd_create");
            Native.check(libc.ftruncate(small, 4096), "ftruncate");
            try (TestFrontEnd fe = session(true)) {
                refused(fe, SET_INFLIGHT_FD, bytes(24).putLong(so[0]).putLong(so[1]).putShort((short) 1)
                        .putShort((short) 8).putInt(0).flip(), small);
            } finally {
                libc.close(small);
            }
        }
    }
}
