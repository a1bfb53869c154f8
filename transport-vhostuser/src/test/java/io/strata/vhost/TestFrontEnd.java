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
    /** The err eventfd (SET_VRING_ERR): the back-end signals it when the queue stops on a guest error. */
    final int err;
    /** How long any read from the back-end may wait before the test fails (no test may hang). */
    static final int READ_TIMEOUT_MS = 5000;
    private final LibC libc = Native.libc();
    private int availIdx;
    private int seenUsed;

    private static final java.util.concurrent.atomic.AtomicInteger OPEN = new java.util.concurrent.atomic.AtomicInteger();

    /** Test front-ends open now (each maps its guest memory once). */
    static int open() {
        return OPEN.get();
    }

    TestFrontEnd(Path socket) throws IOException {
        channel = SocketChannel.open(UnixDomainSocketAddress.of(socket));
        sock = Native.fdOf(channel);
        memFd = Native.check(libc.memfd_create("test-guest", 0), "memfd_create");
        Native.check(libc.ftruncate(memFd, MEM_SIZE), "ftruncate");
        mem = libc.mmap(0, MEM_SIZE, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, memFd, 0);
        OPEN.incrementAndGet();
        kick = Native.check(libc.eventfd(0, 0), "eventfd");
        call = Native.check(libc.eventfd(0, LibC.EFD_NONBLOCK), "eventfd");
        err = Native.check(libc.eventfd(0, LibC.EFD_NONBLOCK), "eventfd");
    }

    /** Host address of a guest-physical address. */
    long host(long gpa) {
        return mem + (gpa - GPA_BASE);
    }

    // --- messages ----------------------------------------------------------------------------------

    /**
     * When set, every message sent is appended as a {@link VhostUserMessageFuzzTest} record (kind of
     * fd: 1 guest memory, 2 an eventfd, 3 another memfd), which is how its seeds were recorded.
     */
    static java.io.ByteArrayOutputStream recording;

    /** When 0 or more, the payload size the next headers announce instead of the payload's own (a message cut short). */
    int announce = -1;

    void send(int request, int flags, ByteBuffer payload, int... fds) throws IOException {
        if (recording != null) {
            record(request, flags, payload, fds);
        }
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        int size = payload == null ? 0 : payload.remaining();
        h.putInt(request).putInt(VERSION | flags).putInt(announce >= 0 ? announce : size).flip();
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
            int errno = POSIX_API.errno();
            if (n < 0 && (errno == 32 || errno == 104)) { // EPIPE, ECONNRESET
                throw new java.io.EOFException("back-end closed the session (errno " + errno + " on send)");
            }
            throw new IOException("sendmsg sent " + n + " (errno " + errno + ")");
        }
    }

    private void record(int request, int flags, ByteBuffer payload, int... fds) {
        int size = payload == null ? 0 : payload.remaining();
        ByteBuffer r = ByteBuffer.allocate(3 + HEADER_SIZE + size).order(ByteOrder.LITTLE_ENDIAN);
        int type = fds.length == 0 ? 0 : fds[0] == memFd ? 1 : fds[0] == kick || fds[0] == call || fds[0] == err ? 2 : 3;
        int kind = type | Math.max(0, fds.length - 1) << 2; // that many more copies of the same fd
        r.put((byte) kind).putShort((short) (HEADER_SIZE + size)).putInt(request).putInt(VERSION | flags).putInt(size);
        if (payload != null) {
            r.put(payload.duplicate());
        }
        recording.write(r.array(), 0, r.position());
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

    /** Reads a reply that carries an fd (SCM_RIGHTS); returns the fd (the caller closes it). */
    int replyFd(int request) throws IOException {
        if (!readable(sock, READ_TIMEOUT_MS)) {
            throw new java.net.SocketTimeoutException("no reply from the back-end in " + READ_TIMEOUT_MS + " ms");
        }
        ByteBuffer h = ByteBuffer.allocateDirect(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        MsgHdr msg = POSIX_API.allocateMsgHdr();
        msg.setIov(new ByteBuffer[] {h});
        msg.allocateControl(4);
        int n = POSIX_API.recvmsg(sock, msg, 0);
        if (n != HEADER_SIZE) {
            throw new IOException("recvmsg returned " + n + " for a reply header");
        }
        int fd = -1;
        for (CmsgHdr c : msg.getControls()) {
            fd = c.getData().order(ByteOrder.nativeOrder()).getInt(0);
        }
        if (h.getInt(0) != request || fd < 0) {
            throw new IOException("unexpected reply: request " + h.getInt(0) + ", fd " + fd);
        }
        readFully(ByteBuffer.allocate(h.getInt(8)));
        return fd;
    }

    /** Reads all of {@code b}, waiting at most {@link #READ_TIMEOUT_MS} for each piece. */
    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (!readable(sock, READ_TIMEOUT_MS)) {
                throw new java.net.SocketTimeoutException("no reply from the back-end in " + READ_TIMEOUT_MS + " ms");
            }
            int n;
            try {
                n = channel.read(b);
            } catch (java.net.SocketException e) { // a close with our request unread is a reset
                throw new java.io.EOFException("back-end closed the session (" + e.getMessage() + ")");
            }
            if (n < 0) {
                throw new java.io.EOFException("back-end closed the session");
            }
        }
    }

    /** poll(2) for input on {@code fd}: whether it became readable (or hung up) within the timeout. */
    static boolean readable(int fd, int timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        int[] pfd = {fd, LibC.POLLIN};
        for (;;) {
            pfd[1] = LibC.POLLIN;
            int left = (int) Math.max(0, (deadline - System.nanoTime()) / 1_000_000L);
            int r = Native.libc().poll(pfd, 1, left);
            if (r > 0) {
                return true;
            }
            if (r == 0) {
                return false;
            }
            if (Native.errno() != LibC.EINTR) {
                throw new IOException("poll failed: errno " + Native.errno());
            }
        }
    }

    /** Waits for the back-end to signal the err eventfd (the queue stopped); clears it. */
    boolean awaitQueueError(int timeoutMillis) throws IOException {
        if (!readable(err, timeoutMillis)) {
            return false;
        }
        libc.read(err, kickValue.address(), 8);
        return true;
    }

    /** Waits for an interrupt on {@code fd} (a call eventfd); clears it. */
    boolean awaitInterrupt(int fd, int timeoutMillis) throws IOException {
        if (!readable(fd, timeoutMillis)) {
            return false;
        }
        libc.read(fd, kickValue.address(), 8);
        return true;
    }

    /** The used ring's index as the back-end last published it. */
    int usedIdx() {
        return NativeMemory.getU16Acquire(host(USED) + 2);
    }

    /** The avail index this front-end has published. */
    int availIdx() {
        return availIdx;
    }

    /** Sets avail.idx to any value (a hostile guest) and kicks. */
    void publishAvailIdx(int idx) {
        availIdx = idx & 0xffff;
        NativeMemory.putU16Release(host(AVAIL) + 2, availIdx);
        NativeMemory.fullFence();
        NativeMemory.putLong(kickValue.address(), 1);
        libc.write(kick, kickValue.address(), 8);
    }

    /** After the back-end rewound or restarted a queue: expect used entries from {@code idx} on. */
    void expectUsedFrom(int idx) {
        seenUsed = idx & 0xffff;
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

    /** The usual start-up: features, owner, memory, one queue of 8, kick, call and err, enabled. */
    void setUp(boolean eventIdx) throws IOException {
        negotiate(eventIdx);
        ByteBuffer table = ByteBuffer.allocate(8 + 32).order(ByteOrder.LITTLE_ENDIAN);
        table.putInt(1).putInt(0).putLong(GPA_BASE).putLong(MEM_SIZE).putLong(UVA_BASE).putLong(0).flip();
        send(SET_MEM_TABLE, FLAG_NEED_REPLY, table, memFd);
        expectAck(SET_MEM_TABLE);
        startQueue(0);
    }

    /** Features (all offered, EVENT_IDX as asked), protocol features (all offered, so REPLY_ACK), owner. */
    void negotiate(boolean eventIdx) throws IOException {
        long features = getU64(GET_FEATURES);
        long proto = getU64(GET_PROTOCOL_FEATURES);
        send(SET_PROTOCOL_FEATURES, 0, u64(proto));
        send(SET_OWNER, 0, null);
        long want = features & ~(eventIdx ? 0 : 1L << VIRTIO_RING_F_EVENT_IDX);
        send(SET_FEATURES, 0, u64(want));
    }

    /** Queue 0's rings, as QEMU sets a queue up: num, base, addresses, kick, call, err, enable. */
    void startQueue(int base) throws IOException {
        send(SET_VRING_NUM, 0, state(0, QSIZE));
        send(SET_VRING_BASE, 0, state(0, base));
        send(SET_VRING_ADDR, 0, ringAddresses(uva(DESC), uva(USED), uva(AVAIL)));
        send(SET_VRING_KICK, 0, u64(0), kick);
        send(SET_VRING_CALL, 0, u64(0), call);
        send(SET_VRING_ERR, 0, u64(0), err);
        send(SET_VRING_ENABLE, FLAG_NEED_REPLY, state(0, 1));
        expectAck(SET_VRING_ENABLE);
    }

    /** Stops queue 0 as QEMU does at a device reset (GET_VRING_BASE); returns the back-end's avail index. */
    int stopQueue() throws IOException {
        send(GET_VRING_BASE, 0, state(0, 0));
        return reply(GET_VRING_BASE).getInt(4);
    }

    static ByteBuffer ringAddresses(long desc, long used, long avail) {
        ByteBuffer addr = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
        addr.putInt(0).putInt(0).putLong(desc).putLong(used).putLong(avail).putLong(0).flip();
        return addr;
    }

    /** Sends a request with NEED_REPLY and returns the REPLY_ACK value (0 success, nonzero failure). */
    long acked(int request, ByteBuffer payload, int... fds) throws IOException {
        send(request, FLAG_NEED_REPLY, payload, fds);
        return reply(request).getLong(0);
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

    /**
     * Spins until the next used entry appears (for benchmarks; allocation-free); returns its length.
     * Gives up after {@link #READ_TIMEOUT_MS} so that no test can spin forever.
     */
    int spinUsed() {
        int used;
        long deadline = 0;
        int spins = 0;
        while ((used = NativeMemory.getU16Acquire(host(USED) + 2)) == seenUsed) {
            Thread.onSpinWait();
            if ((++spins & 1023) == 0) {
                long now = System.nanoTime();
                if (deadline == 0) {
                    deadline = now + READ_TIMEOUT_MS * 1_000_000L;
                } else if (now - deadline > 0) {
                    throw new IllegalStateException("no completion in " + READ_TIMEOUT_MS + " ms");
                }
            }
        }
        long e = host(USED) + 4 + 8L * (seenUsed % QSIZE);
        seenUsed = used & 0xffff;
        return NativeMemory.getInt(e + 4);
    }

    /** Waits (polling the used ring, with a deadline) for the next used entry; returns {head, len}, or null. */
    int[] awaitUsed(long timeoutMillis) {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        while (System.nanoTime() < deadline) {
            int used = NativeMemory.getU16Acquire(host(USED) + 2);
            if (used != seenUsed) {
                long e = host(USED) + 4 + 8L * (seenUsed % QSIZE);
                seenUsed = (seenUsed + 1) & 0xffff;
                return new int[] {NativeMemory.getInt(e), NativeMemory.getInt(e + 4)};
            }
            java.util.concurrent.locks.LockSupport.parkNanos(100_000);
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

    /** Pre-fills the status byte (0 reads as OK: a status the back-end forgot to write would pass for success). */
    void status(int value) {
        NativeMemory.putByte(host(DATA + 0x800), (byte) value);
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
        OPEN.decrementAndGet();
        libc.close(memFd);
        libc.close(kick);
        libc.close(call);
        libc.close(err);
    }
}
