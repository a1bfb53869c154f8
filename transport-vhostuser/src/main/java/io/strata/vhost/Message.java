package io.strata.vhost;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One vhost-user message: the 12-byte header fields, the payload, and the file descriptors that
 * arrived with it (SCM_RIGHTS). Reused for every message of a session; fds are owned by whoever
 * takes them ({@link #takeFd}) and closed by the session otherwise.
 */
final class Message {
    static final int REQUEST_OFF = 0;
    static final int FLAGS_OFF = 4;
    static final int SIZE_OFF = 8;

    int request;
    int flags;
    int size;
    final ByteBuffer payload = ByteBuffer.allocateDirect(VhostUserProtocol.MAX_PAYLOAD).order(ByteOrder.LITTLE_ENDIAN);
    final int[] fds = new int[VhostUserProtocol.MAX_FDS];
    int fdCount;

    boolean needsReply() {
        return (flags & VhostUserProtocol.FLAG_NEED_REPLY) != 0;
    }

    /** Takes the first fd (the caller now owns it), or -1 when none came. */
    int takeFd() {
        if (fdCount == 0) {
            return -1;
        }
        int fd = fds[0];
        System.arraycopy(fds, 1, fds, 0, fdCount - 1);
        fdCount--;
        return fd;
    }

    void requireSize(int expected) throws VhostUserException {
        if (size < expected) {
            throw new VhostUserException(VhostUserProtocol.requestName(request) + " payload of " + size
                    + " bytes, expected " + expected);
        }
    }

    long u64(int at) {
        return payload.getLong(at);
    }

    int u32(int at) {
        return payload.getInt(at);
    }

    @Override
    public String toString() {
        return VhostUserProtocol.requestName(request) + " (size " + size + ", flags 0x" + Integer.toHexString(flags)
                + ", " + fdCount + " fd)";
    }
}
