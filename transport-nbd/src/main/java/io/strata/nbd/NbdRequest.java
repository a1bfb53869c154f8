package io.strata.nbd;

import java.nio.ByteBuffer;

/**
 * The 28-byte transmission request header: magic u32, flags u16, type u16, cookie u64,
 * offset u64, length u32. Instances are reused: one per in-flight slot of a connection.
 */
final class NbdRequest {
    static final int SIZE = 28;
    static final int MAGIC_OFF = 0;
    static final int FLAGS_OFF = 4;
    static final int TYPE_OFF = 6;
    static final int COOKIE_OFF = 8;
    static final int OFFSET_OFF = 16;
    static final int LENGTH_OFF = 24;

    int flags;
    int type;
    long cookie;
    long offset;
    long length;

    /** Decodes from {@code buf} (big-endian, 28 bytes at index 0). Returns false on a bad magic. */
    boolean decode(ByteBuffer buf) {
        return decode(buf, 0);
    }

    /** Decodes the 28 bytes at index {@code at} of {@code buf}. Returns false on a bad magic. */
    boolean decode(ByteBuffer buf, int at) {
        if (buf.getInt(at + MAGIC_OFF) != NbdProtocol.REQUEST_MAGIC) {
            return false;
        }
        flags = Short.toUnsignedInt(buf.getShort(at + FLAGS_OFF));
        type = Short.toUnsignedInt(buf.getShort(at + TYPE_OFF));
        cookie = buf.getLong(at + COOKIE_OFF);
        offset = buf.getLong(at + OFFSET_OFF);
        length = Integer.toUnsignedLong(buf.getInt(at + LENGTH_OFF));
        return true;
    }

    /** The request's first bytes as found, for the log line about a bad magic. */
    static int magicAt(ByteBuffer buf, int at) {
        return buf.getInt(at + MAGIC_OFF);
    }
}
