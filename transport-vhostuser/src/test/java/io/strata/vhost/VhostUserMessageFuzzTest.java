package io.strata.vhost;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.RawImageDevice;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLongArray;
import jnr.posix.CmsgHdr;
import jnr.posix.MsgHdr;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/**
 * Bytes fed to a real {@link Session} over a connected unix socket, with fds riding on them as QEMU
 * sends them: guest memory (a 16 MiB memfd laid out as {@link TestFrontEnd}'s, with a read request
 * waiting in queue 0, so a session that starts the queue serves it), eventfds, a small memfd.
 * Contract: the session ends only because the front-end left or broke the protocol (the project's
 * {@link VhostUserException}), never another exception, never a hang (it must end within seconds of
 * the input's end), and it releases every worker.
 *
 * <p>Input: records of {u8 kind, u16 length (little-endian), bytes}, each sent with one sendmsg;
 * kind bits 0-1 pick the fd attached (none, the guest memfd, an eventfd, a 64 KiB memfd), bits 2-4
 * how many more copies of it (SET_MEM_TABLE sends one per region). The seeds are
 * sessions recorded from the test front-end ({@link TestFrontEnd#recording}).
 */
class VhostUserMessageFuzzTest {
    static final int MAX_INPUT = 32 << 10;
    static final int MAX_FD_RECORDS = 64;
    private static final POSIX POSIX_API = POSIXFactory.getNativePOSIX();

    static final VirtioBlk BLK;
    static final int GUEST;
    static final long GUEST_HOST;
    static final int EVENT;
    static final int SMALL;
    static final Path DIR;
    static final ServerSocketChannel LISTENER;

    static {
        try {
            LibC libc = Native.libc();
            DIR = Files.createTempDirectory("vhost-msg-fuzz");
            DIR.toFile().deleteOnExit();
            Path image = DIR.resolve("disk.img");
            Files.write(image, new byte[1 << 20]);
            image.toFile().deleteOnExit();
            BLK = new VirtioBlk(RawImageDevice.open(image), "fuzz".getBytes(), 2);
            GUEST = Native.check(libc.memfd_create("msg-fuzz-guest", 0), "memfd_create");
            Native.check(libc.ftruncate(GUEST, TestFrontEnd.MEM_SIZE), "ftruncate");
            GUEST_HOST = libc.mmap(0, TestFrontEnd.MEM_SIZE, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, GUEST, 0);
            EVENT = Native.check(libc.eventfd(0, LibC.EFD_NONBLOCK), "eventfd");
            SMALL = Native.check(libc.memfd_create("msg-fuzz-small", 0), "memfd_create");
            Native.check(libc.ftruncate(SMALL, 64 << 10), "ftruncate");
            Path sock = DIR.resolve("s");
            LISTENER = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            LISTENER.bind(UnixDomainSocketAddress.of(sock));
            sock.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Queue 0 as TestFrontEnd lays it out, with one 512-byte read at head 0 available. */
    static void resetGuest() {
        NativeMemory.zero(GUEST_HOST, 0x20000);
        long base = TestFrontEnd.GPA_BASE;
        long hdr = TestFrontEnd.DATA;
        NativeMemory.putInt(GUEST_HOST + (hdr - base), VirtioBlk.T_IN);
        NativeMemory.putLong(GUEST_HOST + (hdr - base) + 8, 1);
        long[][] descs = {{hdr, 16, Virtqueue.F_NEXT, 1}, {hdr + 0x1000, 512, Virtqueue.F_NEXT | Virtqueue.F_WRITE, 2},
            {hdr + 0x800, 1, Virtqueue.F_WRITE, 0}};
        for (int i = 0; i < descs.length; i++) {
            BackEndFixture.putDesc(GUEST_HOST + (TestFrontEnd.DESC - base), i, descs[i][0], (int) descs[i][1],
                    (int) descs[i][2], (int) descs[i][3]);
        }
        NativeMemory.putU16(GUEST_HOST + (TestFrontEnd.AVAIL - base) + 2, 1);
    }

    @FuzzTest
    void fuzz(byte[] input) throws Exception {
        resetGuest();
        AtomicLongArray counters = new AtomicLongArray(2);
        try (SocketChannel frontEnd = SocketChannel.open(LISTENER.getLocalAddress()); SocketChannel backEnd = LISTENER.accept()) {
            String[] reason = new String[1];
            Throwable[] thrown = new Throwable[1];
            Thread session = new Thread(() -> {
                try {
                    reason[0] = new Session("fuzz", Native.fdOf(backEnd), BLK, 2, counters).run();
                } catch (Throwable t) {
                    thrown[0] = t;
                }
            }, "fuzz-session");
            Thread replies = new Thread(() -> drain(frontEnd), "fuzz-replies");
            session.start();
            replies.start();
            try {
                send(Native.fdOf(frontEnd), input);
            } catch (IOException e) {
                // the session ended early (it refused a message): the rest of the input goes nowhere
            }
            frontEnd.shutdownOutput();
            session.join(10_000);
            if (session.isAlive()) {
                backEnd.shutdownInput();
                session.join(5_000);
                fail("the session did not end within 10 s of its input's end");
            }
            backEnd.shutdownOutput();
            replies.join(5_000);
            if (thrown[0] != null) {
                throw new AssertionError("the session threw", thrown[0]);
            }
            assertTrue(reason[0].equals("front-end disconnected") || reason[0].startsWith("protocol error: "),
                    "the session ended for another reason: " + reason[0]);
            assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().startsWith("fuzz-q")),
                    "a queue worker outlived its session");
        }
    }

    private static void drain(SocketChannel ch) {
        ByteBuffer b = ByteBuffer.allocate(4096);
        try {
            while (ch.read(b.clear()) >= 0) {
                // replies are not checked: only that the session never blocks on them
            }
        } catch (IOException e) {
            // closed: done
        }
    }

    private static void send(int fd, byte[] input) throws IOException {
        ByteBuffer in = ByteBuffer.wrap(input, 0, Math.min(input.length, MAX_INPUT)).order(ByteOrder.LITTLE_ENDIAN);
        int withFds = 0;
        while (in.remaining() >= 3) {
            int kind = in.get() & 0xff;
            int length = Math.min(in.getShort() & 0xffff, in.remaining());
            ByteBuffer chunk = ByteBuffer.allocateDirect(Math.max(1, length));
            chunk.put(in.array(), in.position(), length).flip();
            in.position(in.position() + length);
            if (length == 0) {
                continue;
            }
            int type = kind & 3;
            int attach = type == 1 ? GUEST : type == 2 ? EVENT : type == 3 ? SMALL : -1;
            if (attach >= 0 && ++withFds > MAX_FD_RECORDS) {
                attach = -1;
            }
            MsgHdr msg = POSIX_API.allocateMsgHdr();
            msg.setIov(new ByteBuffer[] {chunk});
            if (attach >= 0) {
                int copies = 1 + (kind >> 2 & 7);
                CmsgHdr c = msg.allocateControl(4 * copies);
                c.setLevel(1);
                c.setType(1);
                ByteBuffer fds = ByteBuffer.allocate(4 * copies).order(ByteOrder.nativeOrder());
                for (int i = 0; i < copies; i++) {
                    fds.putInt(attach);
                }
                c.setData(fds.flip());
            }
            int n = POSIX_API.sendmsg(fd, msg, 0);
            if (n < 0) {
                throw new IOException("sendmsg: errno " + POSIX_API.errno());
            }
            if (n < length) { // a short send: the rest goes without fds
                chunk.position(n);
                while (chunk.hasRemaining()) {
                    long w = Native.libc().write(fd, Native.addressOf(chunk) + chunk.position(), chunk.remaining());
                    if (w < 0) {
                        throw new IOException("write: errno " + Native.errno());
                    }
                    chunk.position(chunk.position() + (int) w);
                }
            }
        }
    }
}
