package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.*;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import jnr.posix.CmsgHdr;
import jnr.posix.MsgHdr;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/**
 * A minimal vhost-user front-end for unit tests, playing QEMU's part: guest memory in a memfd mapped
 * here too, one split queue of 8 descriptors, kick and call eventfds. It lets tests build exactly the
 * malformed chains and messages a real QEMU never sends.
 */
public final class TestFrontEnd implements AutoCloseable {
    static final long MEM_SIZE = 16 << 20;
    static final long GPA_BASE = 0x100000;
    /** The "front-end virtual address" of guest memory; the back-end only uses it to translate rings. */
    static final long UVA_BASE = 0x7f0000000000L;
    static final int QSIZE = 8;
    static final long DESC = GPA_BASE + 0x1000;
    static final long AVAIL = GPA_BASE + 0x2000;
    static final long USED = GPA_BASE + 0x3000;
    static final long DATA = GPA_BASE + 0x10000;

    private static final POSIX POSIX_API = POSIXFactory.getNativePOSIX();
    final SocketChannel channel;
    final int sock;
    final int memFd;
    final long mem;
    final int kick;
    final int call;
    private final LibC libc = Native.libc();
    private int availIdx;
    private int seenUsed;

    TestFrontEnd(Path socket) throws IOException {
        channel = SocketChannel.open(UnixDomainSocketAddress.of(socket));
        sock = Native.fdOf(channel);
        memFd = Native.check(libc.memfd_create("test-guest", 0), "memfd_create");
        Native.check(libc.ftruncate(memFd, MEM_SIZE), "ftruncate");
        mem = libc.mmap(0, MEM_SIZE, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, memFd, 0);
        kick = Native.check(libc.eventfd(0, 0), "eventfd");
        call = Native.check(libc.eventfd(0, LibC.EFD_NONBLOCK), "eventfd");
    }

    /** Host address of a guest-physical address. */
    long host(long gpa) {
        return mem + (gpa - GPA_BASE);
    }

    // --- messages ----------------------------------------------------------------------------------

    void send(int request, int flags, ByteBuffer payload, int... fds) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        int size = payload == null ? 0 : payload.remaining();
        h.putInt(request).putInt(VERSION | flags).putInt(size).flip();
        ByteBuffer whole = ByteBuffer.allocateDirect(HEADER_SIZE + size);
        whole.put(h);
        if (payload != null) {
            whole.put(payload.duplicate());
        }
        whole.flip();
        MsgHdr msg = POSIX_API.allocateMsgHdr();
        msg.setIov(new ByteBuffer[] {whole});
        if (fds.length > 0) {
            CmsgHdr c = msg.allocateControl(4 * fds.length);
            c.setLevel(1);
            c.setType(1);
            ByteBuffer d = ByteBuffer.allocate(4 * fds.length).order(ByteOrder.nativeOrder());
            for (int fd : fds) {
                d.putInt(fd);
            }
            c.setData(d.flip());
        }
        int n = POSIX_API.sendmsg(sock, msg, 0);
        if (n != whole.limit()) {
            throw new IOException("sendmsg sent " + n + " (errno " + POSIX_API.errno() + ")");
        }
    }

    /** Reads a reply's payload. */
    ByteBuffer reply(int request) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        readFully(h);
        if (h.getInt(0) != request || (h.getInt(4) & FLAG_REPLY) == 0) {
            throw new IOException("unexpected reply header: request " + h.getInt(0) + " flags " + h.getInt(4));
        }
        ByteBuffer p = ByteBuffer.allocate(h.getInt(8)).order(ByteOrder.LITTLE_ENDIAN);
        readFully(p);
        return p.flip();
    }

    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                throw new java.io.EOFException("back-end closed the session");
            }
        }
    }

    static ByteBuffer u64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).flip();
    }

    static ByteBuffer state(int index, int num) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(index).putInt(num).flip();
    }

    long getU64(int request) throws IOException {
        send(request, 0, null);
        return reply(request).getLong(0);
    }

    /** The usual start-up: features, owner, memory, one queue of 8, kick and call, enabled. */
    void setUp(boolean eventIdx) throws IOException {
        long features = getU64(GET_FEATURES);
        long proto = getU64(GET_PROTOCOL_FEATURES);
        send(SET_PROTOCOL_FEATURES, 0, u64(proto));
        send(SET_OWNER, 0, null);
        long want = features & ~(eventIdx ? 0 : 1L << VIRTIO_RING_F_EVENT_IDX);
        send(SET_FEATURES, 0, u64(want));
        ByteBuffer table = ByteBuffer.allocate(8 + 32).order(ByteOrder.LITTLE_ENDIAN);
        table.putInt(1).putInt(0).putLong(GPA_BASE).putLong(MEM_SIZE).putLong(UVA_BASE).putLong(0).flip();
        send(SET_MEM_TABLE, FLAG_NEED_REPLY, table, memFd);
        expectAck(SET_MEM_TABLE);
        send(SET_VRING_NUM, 0, state(0, QSIZE));
        send(SET_VRING_BASE, 0, state(0, 0));
        ByteBuffer addr = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
        addr.putInt(0).putInt(0).putLong(uva(DESC)).putLong(uva(USED)).putLong(uva(AVAIL)).putLong(0).flip();
        send(SET_VRING_ADDR, 0, addr);
        send(SET_VRING_KICK, 0, u64(0), kick);
        send(SET_VRING_CALL, 0, u64(0), call);
        send(SET_VRING_ENABLE, FLAG_NEED_REPLY, state(0, 1));
        expectAck(SET_VRING_ENABLE);
    }

    void expectAck(int request) throws IOException {
        long v = reply(request).getLong(0);
        if (v != 0) {
            throw new IOException("NACK " + v + " for " + requestName(request));
        }
    }

    static long uva(long gpa) {
        return UVA_BASE + (gpa - GPA_BASE);
    }

    // --- the ring --------------------------------------------------------------------------------

    void desc(int i, long gpa, int len, int flags, int next) {
        long d = host(DESC) + 16L * i;
        NativeMemory.putLong(d, gpa);
        NativeMemory.putInt(d + 8, len);
        NativeMemory.putU16(d + 12, flags);
        NativeMemory.putU16(d + 14, next);
    }

    /** Publishes head {@code head} in the avail ring and kicks. */
    void submit(int head) {
        NativeMemory.putU16(host(AVAIL) + 4 + 2L * (availIdx % QSIZE), head);
        availIdx = (availIdx + 1) & 0xffff;
        NativeMemory.putU16Release(host(AVAIL) + 2, availIdx);
        NativeMemory.fullFence();
        NativeMemory.putLong(kickValue.address(), 1);
        libc.write(kick, kickValue.address(), 8);
    }

    private final io.strata.core.buffer.NativeBuffer kickValue = io.strata.core.buffer.NativeBuffer.allocate(8);

    /** Spins until the next used entry appears (for benchmarks); returns its length. */
    int spinUsed() {
        int used;
        while ((used = NativeMemory.getU16Acquire(host(USED) + 2)) == seenUsed) {
            Thread.onSpinWait();
        }
        long e = host(USED) + 4 + 8L * (seenUsed % QSIZE);
        seenUsed = used & 0xffff;
        return NativeMemory.getInt(e + 4);
    }

    /** Waits for the next used entry; returns {head, len}. */
    int[] awaitUsed(long timeoutMillis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (System.currentTimeMillis() < deadline) {
            int used = NativeMemory.getU16Acquire(host(USED) + 2);
            if (used != seenUsed) {
                long e = host(USED) + 4 + 8L * (seenUsed % QSIZE);
                seenUsed = (seenUsed + 1) & 0xffff;
                return new int[] {NativeMemory.getInt(e), NativeMemory.getInt(e + 4)};
            }
            Thread.sleep(1);
        }
        return null;
    }

    /** A virtio-blk request header at {@code gpa}. */
    void blkHeader(long gpa, int type, long sector) {
        NativeMemory.putInt(host(gpa), type);
        NativeMemory.putInt(host(gpa) + 4, 0);
        NativeMemory.putLong(host(gpa) + 8, sector);
    }

    /** A 3-descriptor request: header (readable), data (writable), status (writable). Returns the head. */
    int request(int type, long sector, int dataLen) {
        long hdr = DATA;
        long data = DATA + 0x1000;
        long status = DATA + 0x800;
        blkHeader(hdr, type, sector);
        NativeMemory.putByte(host(status), (byte) 0x7f);
        desc(0, hdr, 16, Virtqueue.F_NEXT, 1);
        desc(1, data, dataLen, Virtqueue.F_NEXT | Virtqueue.F_WRITE, 2);
        desc(2, status, 1, Virtqueue.F_WRITE, 0);
        return 0;
    }

    int status() {
        return NativeMemory.getByte(host(DATA + 0x800));
    }

    byte[] data(int len) {
        byte[] out = new byte[len];
        for (int i = 0; i < len; i++) {
            out[i] = NativeMemory.getByte(host(DATA + 0x1000) + i);
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        channel.close();
        libc.munmap(mem, MEM_SIZE);
        libc.close(memFd);
        libc.close(kick);
        libc.close(call);
    }
}
