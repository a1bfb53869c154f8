package io.strata.vhost;

import io.strata.core.os.FdPassing;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The vhost-user socket: messages in (header through recvmsg, so that the fds riding on it arrive as
 * SCM_RIGHTS; then the payload) and replies out (sendmsg when a reply carries an fd). Works on the
 * raw fd of a connected unix socket.
 */
final class MessageChannel {
    private final int fd;
    private final LibC libc = Native.libc();
    private final ByteBuffer header = ByteBuffer.allocateDirect(VhostUserProtocol.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer reply = ByteBuffer.allocateDirect(VhostUserProtocol.HEADER_SIZE + VhostUserProtocol.MAX_PAYLOAD)
            .order(ByteOrder.LITTLE_ENDIAN);

    MessageChannel(int fd) {
        this.fd = fd;
    }

    /**
     * Reads the next message into {@code m}; EOFException when the front-end has gone. The file
     * descriptors that came with its first bytes are closed if the rest of it never comes or is
     * refused: a front-end cutting a message short must not leak them (memfds keep their memory).
     */
    void receive(Message m) throws IOException {
        header.clear();
        FdPassing.Received got = FdPassing.receive(fd, header, m.fds);
        m.fdCount = got.descriptors();
        try {
            readRest(m, got);
        } catch (IOException | RuntimeException e) {
            closeFds(m);
            throw e;
        }
    }

    private void readRest(Message m, FdPassing.Received got) throws IOException {
        int n = got.bytes();
        if (n == 0) {
            closeFds(m);
            throw new EOFException("front-end closed the socket");
        }
        if (got.truncated()) {
            closeFds(m);
            throw new VhostUserException("file descriptors were truncated (MSG_CTRUNC)");
        }
        if (n < VhostUserProtocol.HEADER_SIZE) {
            readFully(header, n, VhostUserProtocol.HEADER_SIZE - n);
        }
        m.request = header.getInt(Message.REQUEST_OFF);
        m.flags = header.getInt(Message.FLAGS_OFF);
        m.size = header.getInt(Message.SIZE_OFF);
        if ((m.flags & VhostUserProtocol.VERSION_MASK) != VhostUserProtocol.VERSION) {
            closeFds(m);
            throw new VhostUserException("message version " + (m.flags & VhostUserProtocol.VERSION_MASK) + " (flags 0x"
                    + Integer.toHexString(m.flags) + "), expected 1");
        }
        if (m.size < 0 || m.size > VhostUserProtocol.MAX_PAYLOAD) {
            closeFds(m);
            throw new VhostUserException(VhostUserProtocol.requestName(m.request) + " announces a payload of "
                    + Integer.toUnsignedString(m.size) + " bytes (at most " + VhostUserProtocol.MAX_PAYLOAD + ")");
        }
        m.payload.clear();
        readFully(m.payload, 0, m.size);
        m.payload.limit(m.size);
    }

    private void readFully(ByteBuffer buf, int at, int length) throws IOException {
        long base = io.strata.core.os.Native.addressOf(buf);
        int done = 0;
        while (done < length) {
            long r = libc.read(fd, base + at + done, length - done);
            if (r == 0) {
                throw new EOFException("front-end closed the socket inside a message");
            }
            if (r < 0) {
                int e = Native.errno();
                if (e == LibC.EINTR) {
                    continue;
                }
                throw new IOException("read failed: errno " + e);
            }
            done += (int) r;
        }
    }

    static void closeFds(Message m) {
        for (int i = 0; i < m.fdCount; i++) {
            Native.libc().close(m.fds[i]);
        }
        m.fdCount = 0;
    }

    /** Starts a reply to {@code m}: returns the payload buffer to fill (little-endian, at position 0). */
    ByteBuffer beginReply() {
        reply.clear().position(VhostUserProtocol.HEADER_SIZE);
        return reply.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Sends a reply whose payload (of {@code size} bytes) was written into {@link #beginReply}'s buffer. */
    void sendReply(Message m, int size, int fdToSend) throws IOException {
        reply.putInt(0, m.request);
        reply.putInt(4, VhostUserProtocol.VERSION | VhostUserProtocol.FLAG_REPLY);
        reply.putInt(8, size);
        reply.position(0).limit(VhostUserProtocol.HEADER_SIZE + size);
        if (fdToSend < 0) {
            long base = Native.addressOf(reply);
            int done = 0;
            int total = VhostUserProtocol.HEADER_SIZE + size;
            while (done < total) {
                long w = libc.write(fd, base + done, total - done);
                if (w < 0) {
                    int e = Native.errno();
                    if (e == LibC.EINTR) {
                        continue;
                    }
                    throw new IOException("write failed: errno " + e);
                }
                done += (int) w;
            }
            return;
        }
        int n = FdPassing.send(fd, reply, fdToSend);
        if (n != VhostUserProtocol.HEADER_SIZE + size) {
            throw new IOException("sendmsg sent " + n + " of " + (VhostUserProtocol.HEADER_SIZE + size) + " bytes");
        }
    }
}
