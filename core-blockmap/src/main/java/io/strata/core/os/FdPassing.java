package io.strata.core.os;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jnr.posix.CmsgHdr;
import jnr.posix.MsgHdr;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/**
 * Sending and receiving file descriptors over a connected unix socket (SCM_RIGHTS ancillary data,
 * unix(7)), which the JDK's channels cannot do: vhost-user hands memory regions and eventfds this
 * way. Built on jnr-posix's msghdr support; with {@link LibC}, the only native code Strata binds.
 * A control-plane path: it allocates per message.
 */
public final class FdPassing {
    private static final int SCM_RIGHTS = 1;
    /** recvmsg(2) flag: the ancillary data did not fit, some descriptors were dropped by the kernel. */
    private static final int MSG_CTRUNC = 0x8;

    private FdPassing() {
    }

    /** What one {@link #receive} got: payload bytes (0 at end of stream), descriptors kept, and whether any were lost. */
    public record Received(int bytes, int descriptors, boolean truncated) {
    }

    private static final class Api {
        static final POSIX POSIX = POSIXFactory.getNativePOSIX();
    }

    /**
     * One recvmsg(2) into {@code dst} (from its position to its limit; the position is not moved),
     * keeping up to {@code fds.length} descriptors that arrive with it in {@code fds}. Descriptors
     * beyond that are closed at once, so a peer cannot leak them into this process.
     */
    public static Received receive(int socket, ByteBuffer dst, int[] fds) throws IOException {
        MsgHdr msg = Api.POSIX.allocateMsgHdr();
        msg.setIov(new ByteBuffer[] {dst});
        msg.allocateControl(4 * Math.max(1, fds.length));
        int n = Api.POSIX.recvmsg(socket, msg, 0);
        if (n < 0) {
            throw new IOException("recvmsg failed: errno " + Api.POSIX.errno());
        }
        int kept = 0;
        for (CmsgHdr c : msg.getControls()) {
            if (c.getLevel() == LibC.SOL_SOCKET && c.getType() == SCM_RIGHTS) {
                ByteBuffer data = c.getData().order(ByteOrder.nativeOrder());
                while (data.remaining() >= 4) {
                    int received = data.getInt();
                    if (kept < fds.length) {
                        fds[kept++] = received;
                    } else {
                        Native.libc().close(received);
                    }
                }
            }
        }
        return new Received(n, kept, (msg.getFlags() & MSG_CTRUNC) != 0);
    }

    /** One sendmsg(2) of {@code src} (position to limit) carrying descriptor {@code fd}; returns the bytes sent. */
    public static int send(int socket, ByteBuffer src, int fd) throws IOException {
        MsgHdr msg = Api.POSIX.allocateMsgHdr();
        msg.setIov(new ByteBuffer[] {src});
        CmsgHdr c = msg.allocateControl(4);
        c.setLevel(LibC.SOL_SOCKET);
        c.setType(SCM_RIGHTS);
        c.setData(ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(fd).flip());
        int n = Api.POSIX.sendmsg(socket, msg, 0);
        if (n < 0) {
            throw new IOException("sendmsg failed: errno " + Api.POSIX.errno());
        }
        return n;
    }
}
