package io.strata.vhost;

import static io.strata.vhost.TestFrontEnd.DATA;
import static io.strata.vhost.TestFrontEnd.GPA_BASE;
import static io.strata.vhost.TestFrontEnd.MEM_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.buffer.NativeMemory;
import org.junit.jupiter.api.Test;

/**
 * Chains the back-end rejects (issue 8, defect 1). A rejected request is completed only with its
 * status written: IOERR in the chain's last byte when that is a device-writable byte in guest memory.
 * The status byte is pre-filled with 0, which the guest would read as OK if the back-end completed the
 * request without writing it. Where the last byte cannot be found safely the queue stops: nothing is
 * completed, the err eventfd is signalled, and the queue serves again once the front-end resets it.
 */
class RejectedChainTest extends BackEndFixture {
    static final int R = 0;
    static final int W = Virtqueue.F_WRITE;
    static final int NEXT = Virtqueue.F_NEXT;
    static final long HDR = DATA;
    static final long BUF = DATA + 0x1000;
    static final long STATUS = DATA + 0x800;
    static final long TABLE = DATA + 0x8000;

    /** Submits head 0 and expects it completed with IOERR written over a pre-filled 0 (and used.len 1). */
    void failsWithIoError(TestFrontEnd fe) {
        fe.status(VirtioBlk.S_OK);
        fe.submit(0);
        int[] used = fe.awaitUsed(5000);
        assertNotNull(used, "a rejected chain whose last byte is a writable status must be completed");
        assertEquals(1, used[1], "used length: the status byte");
        assertEquals(VirtioBlk.S_IOERR, fe.status(), "the status byte must be written");
        assertReads(fe, 9, 512); // and the queue goes on
    }

    /** Submits head 0 and expects the queue to stop without completing it; then resets the queue and reads. */
    void stopsTheQueue(TestFrontEnd fe, long statusGpa) throws Exception {
        int usedBefore = fe.usedIdx();
        int headAt = fe.availIdx();
        if (statusGpa != 0) {
            NativeMemory.putByte(fe.host(statusGpa), (byte) 0x5a);
        }
        fe.submit(0);
        assertStoppedThenReset(fe, usedBefore, headAt, statusGpa);
    }

    /** The queue stopped (err eventfd) with nothing completed since {@code usedBefore}; reset, it serves again. */
    void assertStoppedThenReset(TestFrontEnd fe, int usedBefore, int headAt, long statusGpa) throws Exception {
        assertTrue(fe.awaitQueueError(5000), "the back-end must signal the err eventfd when the queue stops");
        assertEquals(usedBefore, fe.usedIdx(), "nothing may be completed");
        if (statusGpa != 0) {
            assertEquals(0x5a, NativeMemory.getByte(fe.host(statusGpa)), "no status may be written");
        }
        await(() -> queue0Worker() == null, 5000, () -> "the queue's worker to end");
        // Still stopped: a good request behind the bad one is not served (the bad head stays first).
        fe.submit(fe.request(VirtioBlk.T_IN, 1, 512));
        assertNull(fe.awaitUsed(50), "a stopped queue serves nothing until it is reset");
        // A device reset: GET_VRING_BASE reports the bad head as not consumed; the guest starts over.
        assertEquals(headAt, fe.stopQueue(), "the avail index of the request that was not completed");
        fe.publishAvailIdx(0);
        NativeMemory.putU16(fe.host(TestFrontEnd.USED) + 2, 0);
        fe.expectUsedFrom(0);
        fe.startQueue(0);
        assertReads(fe, 9, 512);
    }

    @Test
    void aDataBufferOutsideGuestMemoryGetsIoError() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(1, 0xdead0000000L, 512, NEXT | W, 2);
            failsWithIoError(fe);
            // A buffer ending one byte past the end of guest memory.
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(1, GPA_BASE + MEM_SIZE - 511, 512, NEXT | W, 2);
            failsWithIoError(fe);
            // A buffer whose length wraps the 64-bit address space.
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(1, -256L, 512, NEXT | W, 2);
            failsWithIoError(fe);
        }
    }

    @Test
    void aBufferEndingAtTheLastByteOfGuestMemoryIsServed() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            long last = GPA_BASE + MEM_SIZE - 512;
            fe.request(VirtioBlk.T_IN, 4, 512);
            fe.desc(1, last, 512, NEXT | W, 2);
            fe.status(0x7f);
            fe.submit(0);
            assertEquals(513, fe.awaitUsed(5000)[1]);
            assertEquals(VirtioBlk.S_OK, fe.status());
            for (int i = 0; i < 512; i++) {
                assertEquals(image[4 * 512 + i], NativeMemory.getByte(fe.host(last) + i));
            }
            // The status byte itself as the very last byte of guest memory.
            long lastByte = GPA_BASE + MEM_SIZE - 1;
            fe.request(VirtioBlk.T_IN, 4, 512);
            fe.desc(2, lastByte, 1, W, 0);
            NativeMemory.putByte(fe.host(lastByte), (byte) 0x7f);
            fe.submit(0);
            assertEquals(513, fe.awaitUsed(5000)[1]);
            assertEquals(VirtioBlk.S_OK, NativeMemory.getByte(fe.host(lastByte)));
        }
    }

    @Test
    void aReadableDescriptorAfterAWritableOneGetsIoError() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(1, BUF, 512, NEXT | W, 3);
            fe.desc(3, BUF + 512, 16, NEXT | R, 2); // readable after writable; the status (2) is still last
            failsWithIoError(fe);
        }
    }

    @Test
    void aBadIndirectTableGetsIoErrorWhenItsLastDescriptorIsAStatusByte() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.blkHeader(HDR, VirtioBlk.T_IN, 0);
            long t = fe.host(TABLE);
            putDesc(t, 0, HDR, 16, NEXT, 1);
            putDesc(t, 1, BUF, 512, NEXT | W, 2);
            putDesc(t, 2, STATUS, 1, W, 0);
            // A length that is not a whole number of descriptors: read up to the last whole one.
            fe.desc(0, TABLE, 3 * 16 + 8, Virtqueue.F_INDIRECT, 0);
            failsWithIoError(fe);
            // A data buffer outside guest memory inside the table.
            putDesc(t, 1, 0xdead0000000L, 512, NEXT | W, 2);
            fe.desc(0, TABLE, 3 * 16, Virtqueue.F_INDIRECT, 0);
            failsWithIoError(fe);
            // More segments than a request may have (a chain longer than the back-end takes).
            for (int i = 0; i < 300; i++) {
                putDesc(t, i, i == 0 ? HDR : BUF, i == 0 ? 16 : 512, NEXT | (i == 0 ? R : W), i + 1);
            }
            putDesc(t, 300, STATUS, 1, W, 0);
            fe.desc(0, TABLE, 301 * 16, Virtqueue.F_INDIRECT, 0);
            failsWithIoError(fe);
        }
    }

    @Test
    void aDescriptorLoopStopsTheQueue() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(1, BUF, 512, NEXT | W, 0); // 0 -> 1 -> 0: the chain has no last descriptor
            stopsTheQueue(fe, STATUS);
            // The same inside an indirect table (a chain longer than its table).
            long t = fe.host(TABLE);
            putDesc(t, 0, HDR, 16, NEXT, 1);
            putDesc(t, 1, BUF, 512, NEXT | W, 0);
            fe.desc(0, TABLE, 2 * 16, Virtqueue.F_INDIRECT, 0);
            stopsTheQueue(fe, STATUS);
        }
    }

    @Test
    void aLinkPastTheTableStopsTheQueue() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(1, BUF, 512, NEXT | W, 200);
            stopsTheQueue(fe, STATUS);
        }
    }

    @Test
    void anIndirectTableOutsideGuestMemoryStopsTheQueue() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.desc(0, GPA_BASE + MEM_SIZE - 32, 3 * 16, Virtqueue.F_INDIRECT, 0); // its end is past memory
            stopsTheQueue(fe, 0);
            fe.desc(0, TABLE, 0, Virtqueue.F_INDIRECT, 0); // an empty table
            stopsTheQueue(fe, 0);
            fe.desc(0, TABLE, 3 * 16, Virtqueue.F_INDIRECT | NEXT, 1); // INDIRECT with NEXT: which chain?
            stopsTheQueue(fe, 0);
        }
    }

    @Test
    void aChainWithoutAWritableLastByteStopsTheQueue() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            // Everything device-readable.
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(1, BUF, 512, NEXT, 2);
            fe.desc(2, STATUS, 1, R, 0);
            stopsTheQueue(fe, STATUS);
            // A writable status descriptor of length 0.
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(2, STATUS, 0, W, 0);
            stopsTheQueue(fe, STATUS);
            // The status byte one byte past the end of guest memory.
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(2, GPA_BASE + MEM_SIZE, 1, W, 0);
            stopsTheQueue(fe, 0);
            // A readable-after-writable chain whose last descriptor is the readable one.
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.desc(2, STATUS, 1, R, 0);
            stopsTheQueue(fe, STATUS);
        }
    }

    @Test
    void aGuestThatMovesAvailIdxBackwardsOrFarAheadStopsTheQueue() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            assertReads(fe, 1, 512);
            assertReads(fe, 2, 512);
            // Backwards: from 2 to 1 reads as 65535 new entries in a queue of 8.
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.publishAvailIdx(1);
            assertStoppedThenReset(fe, 2, 2, 0); // ends with one good read: avail and used at 1
            // Far ahead: more new entries than the queue holds.
            assertReads(fe, 3, 512);
            int at = fe.availIdx();
            fe.request(VirtioBlk.T_IN, 0, 512);
            fe.publishAvailIdx(at + TestFrontEnd.QSIZE + 1);
            assertStoppedThenReset(fe, at, at, 0);
            // An avail entry naming a descriptor past the table.
            NativeMemory.putU16(fe.host(TestFrontEnd.AVAIL) + 4 + 2L * fe.availIdx(), TestFrontEnd.QSIZE);
            at = fe.availIdx();
            fe.publishAvailIdx(at + 1);
            assertStoppedThenReset(fe, at, at, 0);
        }
    }

    @Test
    void exactlyAQueueFullOfNewEntriesIsServed() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.request(VirtioBlk.T_FLUSH, 0, 0);
            fe.desc(1, BUF, 0, NEXT | W, 2); // an empty data descriptor: the flush's status is still last
            for (int i = 0; i < TestFrontEnd.QSIZE; i++) {
                NativeMemory.putU16(fe.host(TestFrontEnd.AVAIL) + 4 + 2L * i, 0);
            }
            fe.publishAvailIdx(TestFrontEnd.QSIZE);
            for (int i = 0; i < TestFrontEnd.QSIZE; i++) {
                assertNotNull(fe.awaitUsed(5000), "completion " + i);
            }
            assertEquals(VirtioBlk.S_OK, fe.status());
        }
    }
}
