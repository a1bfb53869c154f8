package io.strata.nbd;

import java.nio.ByteBuffer;

/**
 * Reply headers: the 16-byte simple reply (magic u32, error u32, cookie u64) and the 20-byte
 * structured reply chunk header (magic u32, flags u16, type u16, cookie u64, length u32).
 */
final class ReplyHeaders {
    static final int SIMPLE_SIZE = 16;
    static final int STRUCTURED_SIZE = 20;

    private ReplyHeaders() {
    }

    /** Writes a simple reply header at the buffer's position. */
    static void simple(ByteBuffer b, int error, long cookie) {
        b.putInt(NbdProtocol.SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie);
    }

    /** Writes a structured chunk header at the buffer's position; {@code length} counts the payload. */
    static void structured(ByteBuffer b, int flags, int type, long cookie, int length) {
        b.putInt(NbdProtocol.STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putInt(length);
    }
}
