package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * Ring state changed while the queue runs (issue 8, defect 3). The worker reads an immutable snapshot
 * of its queue's configuration; a change is applied with the worker stopped, and a new worker starts
 * from a new snapshot at the ring position the old one reached. So a change takes effect at once, on
 * a new worker thread, and no request is lost or served twice.
 */
class RingStateChangeTest extends BackEndFixture {
    /** The avail_event slot (EVENT_IDX): the u16 after the used ring's entries, which the device writes. */
    static long availEvent(TestFrontEnd fe) {
        return fe.host(TestFrontEnd.USED) + 4 + 8L * TestFrontEnd.QSIZE;
    }

    @Test
    void featuresChangedOnARunningQueueApplyThroughANewWorker() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(false);
            NativeMemory.putU16(availEvent(fe), 0xabcd);
            assertReads(fe, 1, 512);
            assertEquals(0xabcd, NativeMemory.getU16(availEvent(fe)), "without EVENT_IDX avail_event is not written");
            Thread before = queue0Worker();
            assertNotNull(before);

            long features = fe.getU64(GET_FEATURES);
            assertEquals(0, fe.acked(SET_FEATURES, TestFrontEnd.u64(features)), "SET_FEATURES on a running queue");
            Thread after = queue0Worker();
            assertNotSame(before, after, "the change is applied with the old worker stopped and a new one started");
            assertFalse(before.isAlive());
            assertReads(fe, 2, 512);
            // The worker may publish avail_event a moment after the used index moves: wait for it, bounded.
            int availIdx = fe.availIdx();
            await(() -> NativeMemory.getU16Acquire(availEvent(fe)) == availIdx, 5000,
                    () -> "with EVENT_IDX the worker publishes avail_event " + availIdx + " (it is "
                            + NativeMemory.getU16Acquire(availEvent(fe)) + ")");
            assertEquals(2, fe.usedIdx(), "every request served once");
        }
    }

    @Test
    void setVringBaseOnARunningQueueRestartsItAtTheNewBase() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            assertReads(fe, 1, 512);
            assertReads(fe, 2, 512);
            // The front-end says where the queue is (where it already is): the queue must go on serving.
            assertEquals(0, fe.acked(SET_VRING_BASE, TestFrontEnd.state(0, 2)));
            assertReads(fe, 3, 512);
            assertEquals(3, fe.usedIdx());
        }
    }

    @Test
    void aNewCallFdOnARunningQueueGetsTheInterrupts() throws Exception {
        LibC libc = Native.libc();
        int newCall = Native.check(libc.eventfd(0, LibC.EFD_NONBLOCK), "eventfd");
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(false); // without EVENT_IDX and with flags 0 every completion interrupts
            assertReads(fe, 1, 512);
            assertTrue(fe.awaitInterrupt(fe.call, 5000), "the first call fd is signalled");
            assertEquals(0, fe.acked(SET_VRING_CALL, TestFrontEnd.u64(0), newCall));
            assertReads(fe, 2, 512);
            assertTrue(fe.awaitInterrupt(newCall, 5000), "the new call fd is signalled");
            assertFalse(TestFrontEnd.readable(fe.call, 0), "the old call fd is not");
        } finally {
            libc.close(newCall);
        }
    }

    @Test
    void aNewInflightRegionOnARunningQueueIsTheOneWritten() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            int fd1 = getInflightFd(fe);
            assertReads(fe, 1, 512);
            // A second GET_INFLIGHT_FD replaces the region under the running queue; the worker must use the new one.
            int fd2 = getInflightFd(fe);
            long size = InflightRegion.strideOf(TestFrontEnd.QSIZE);
            long region = Native.libc().mmap(0, size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd2, 0);
            try {
                assertReads(fe, 2, 512);
                assertReads(fe, 3, 512);
                // The worker may write the inflight region's used index a moment after the used ring's: wait for it, bounded.
                await(() -> NativeMemory.getU16Acquire(region + InflightRegion.H_USED_IDX) == 3, 5000,
                        () -> "the new region's used index to be 3 (it is " + NativeMemory.getU16Acquire(region + InflightRegion.H_USED_IDX) + ")");
            } finally {
                Native.libc().munmap(region, size);
                Native.libc().close(fd1);
                Native.libc().close(fd2);
            }
        }
    }

    /**
     * A back-end killed after putting a request in the used ring but before signalling the guest
     * (and before clearing the request's mark in the inflight region) leaves a guest that waits for
     * that interrupt forever: VhostUserGuestTest's kill-and-restart hung that way once in 600 s. The
     * back-end that resumes the queue must signal the guest once, though it has nothing new to serve.
     */
    @Test
    void aQueueResumedWithRequestsInFlightSignalsTheGuest() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(false);
            int fd = getInflightFd(fe);
            long size = InflightRegion.strideOf(TestFrontEnd.QSIZE);
            long region = Native.libc().mmap(0, size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
            try {
                assertReads(fe, 1, 512);
                assertTrue(fe.awaitInterrupt(fe.call, 5000), "the completion is signalled");
                int base = fe.stopQueue();
                // The state a back-end killed between publishing the completion and clearing its mark
                // leaves: completed in the used ring, still marked in flight, the region's used index behind.
                NativeMemory.putByte(region + InflightRegion.QUEUE_HEADER + InflightRegion.D_INFLIGHT, (byte) 1);
                NativeMemory.putU16(region + InflightRegion.H_USED_IDX, base - 1);
                fe.startQueue(base);
                assertTrue(fe.awaitInterrupt(fe.call, 5000), "the resumed queue signals the guest");
                assertEquals(1, fe.usedIdx(), "nothing was served twice");
                // A plain restart (nothing left in flight) does not.
                fe.startQueue(fe.stopQueue());
                assertFalse(fe.awaitInterrupt(fe.call, 500), "no interrupt without requests left in flight");
                assertReads(fe, 2, 512);
            } finally {
                Native.libc().munmap(region, size);
                Native.libc().close(fd);
            }
        }
    }

    /** GET_INFLIGHT_FD for 1 queue of QSIZE; returns the region's fd (received with SCM_RIGHTS). */
    static int getInflightFd(TestFrontEnd fe) throws Exception {
        ByteBuffer p = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        p.putLong(0).putLong(0).putShort((short) 1).putShort((short) TestFrontEnd.QSIZE).putInt(0).flip();
        fe.send(GET_INFLIGHT_FD, 0, p);
        return fe.replyFd(GET_INFLIGHT_FD);
    }
}
