package io.strata.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.RawImageDevice;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Random descriptor tables and avail rings over a fake guest memory (two adjacent regions of one
 * memfd), served by the real {@link QueueWorker} and {@link BlkRequestHandler} without the thread.
 * Contract: nothing but a normal return (a BadChainException is the worker's own business), no hang
 * (the drain terminates), and every request either completed with its status byte written (the byte
 * is poisoned before the handler runs) or the queue stopped with that request not completed.
 *
 * <p>Input: byte 0 the queue size (1 << (b % 7)), byte 1 bit 0 EVENT_IDX, bytes 2-3 the worker's
 * starting avail index; the rest is copied to guest memory from its first byte: the descriptor table
 * at {@link #DESC}, the avail ring at {@link #AVAIL}, the used ring at {@link #USED}, anything after
 * (indirect tables, headers, buffers). The device is 64 KiB of zeros, so data never looks like poison.
 */
class DescriptorChainFuzzTest {
    static final long GPA = 0x100000;
    static final long REGION = 64 << 10;
    static final long UVA = 0x7f0000000000L;
    static final long DESC = GPA;
    static final long AVAIL = GPA + 0x400;
    static final long USED = GPA + 0x800;
    static final byte POISON = (byte) 0xee;

    static final MemoryTable MEMORY;
    static final long HOST;
    static final VirtioBlk BLK;

    static {
        try {
            LibC libc = Native.libc();
            int fd = Native.check(libc.memfd_create("chain-fuzz", 0), "memfd_create");
            Native.check(libc.ftruncate(fd, 2 * REGION), "ftruncate");
            HOST = libc.mmap(0, 2 * REGION, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
            Message m = new Message();
            m.request = VhostUserProtocol.SET_MEM_TABLE;
            m.payload.putInt(0, 2).putInt(4, 0);
            m.payload.putLong(8, GPA).putLong(16, REGION).putLong(24, UVA).putLong(32, 0);
            m.payload.putLong(40, GPA + REGION).putLong(48, REGION).putLong(56, UVA + REGION).putLong(64, REGION);
            m.size = 72;
            m.fds[0] = fd;
            m.fds[1] = jnr.posix.POSIXFactory.getNativePOSIX().dup(fd);
            m.fdCount = 2;
            MEMORY = MemoryTable.map(m); // closes both fds; HOST keeps the test's own view
            Path image = Files.createTempFile("chain-fuzz", ".img");
            Files.write(image, new byte[64 << 10]);
            image.toFile().deleteOnExit();
            BLK = new VirtioBlk(RawImageDevice.open(image), "fuzz".getBytes(), 1);
        } catch (Exception e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The real handler, checked: every completion it reports has its status byte written. */
    static final class CheckedHandler implements VirtioDevice.RequestHandler {
        final VirtioDevice.RequestHandler real = BLK.newHandler("fuzz");
        int completed;

        @Override
        public int handle(DescriptorChain chain) {
            if (chain.lastByte != 0) {
                NativeMemory.putByte(chain.lastByte, POISON);
            }
            int len = real.handle(chain);
            check(len, chain.lastByte, false);
            return len;
        }

        @Override
        public int reject(long lastByte) {
            if (lastByte != 0) {
                NativeMemory.putByte(lastByte, POISON);
            }
            int len = real.reject(lastByte);
            check(len, lastByte, true);
            return len;
        }

        private void check(int len, long status, boolean rejected) {
            if (len == CANNOT_COMPLETE) {
                return;
            }
            assertTrue(len >= 1 && status != 0, "completed (len " + len + ") without a status byte");
            byte s = NativeMemory.getByte(status);
            assertTrue(s == VirtioBlk.S_OK || s == VirtioBlk.S_IOERR || s == VirtioBlk.S_UNSUPP, "status " + s + " not written");
            if (rejected) {
                assertEquals(VirtioBlk.S_IOERR, s);
            }
            completed++;
        }
    }

    @FuzzTest
    void fuzz(byte[] input) throws Exception {
        if (input.length < 4) {
            return;
        }
        int size = 1 << ((input[0] & 0xff) % 7);
        boolean eventIdx = (input[1] & 1) != 0;
        int lastAvail = (input[2] & 0xff) | (input[3] & 0xff) << 8;
        NativeMemory.zero(HOST, 2 * REGION);
        int n = (int) Math.min(input.length - 4, 2 * REGION);
        for (int i = 0; i < n; i++) {
            NativeMemory.putByte(HOST + i, input[4 + i]);
        }
        long[] rings = new long[3];
        String why = Virtqueue.translate(MEMORY, size, UVA + (DESC - GPA), UVA + (AVAIL - GPA), UVA + (USED - GPA), rings);
        assertEquals(null, why);
        Virtqueue q = new Virtqueue(0, size, rings, eventIdx, -1, -1, lastAvail);
        int usedBefore = q.usedIdx;
        CheckedHandler handler = new CheckedHandler();
        QueueWorker worker = new QueueWorker(q, MEMORY, handler, null, -1, "fuzz-q0", new AtomicLongArray(1), false);
        try {
            boolean ok = worker.drain();
            int published = (q.usedIdx - usedBefore) & 0xffff;
            assertEquals(handler.completed, published, "every completion published once, none without its status");
            assertEquals(published, (NativeMemory.getU16(HOST + (USED - GPA) + 2) - usedBefore) & 0xffff);
            assertEquals(!ok, worker.broken(), "the queue stops only on a guest error, and says so");
            if (ok) {
                assertEquals(NativeMemory.getU16(HOST + (AVAIL - GPA) + 2), q.lastAvail, "a working queue drains the ring");
            }
        } finally {
            worker.stop();
        }
    }
}
