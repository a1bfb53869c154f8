package io.strata.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/** Blocking reads and writes of whole buffers on a channel. */
final class Wire {
    private Wire() {
    }

    /** Fills {@code buf} to its limit; EOF before that is an error. */
    static void readFully(ReadableByteChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            if (ch.read(buf) < 0) {
                throw new EOFException("peer closed the connection");
            }
        }
    }

    static void writeFully(WritableByteChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    /** Reads and discards {@code n} bytes using {@code scratch}. */
    static void skip(ReadableByteChannel ch, long n, ByteBuffer scratch) throws IOException {
        long left = n;
        while (left > 0) {
            scratch.clear().limit((int) Math.min(scratch.capacity(), left));
            readFully(ch, scratch);
            left -= scratch.limit();
        }
    }
}
