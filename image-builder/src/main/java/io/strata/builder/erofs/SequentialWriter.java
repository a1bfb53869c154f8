package io.strata.builder.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/** Writes a file front to back through a buffer, filling skipped ranges with zeros. */
final class SequentialWriter implements AutoCloseable {
    private static final int BUFFER = 1 << 20;
    private static final byte[] ZEROS = new byte[4096];
    private final FileChannel channel;
    private final ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER);
    private long position;

    SequentialWriter(FileChannel channel) {
        this.channel = channel;
    }

    long position() {
        return position;
    }

    /** Writes zeros up to {@code target}, which must not be behind the current position. */
    void zeroTo(long target) throws IOException {
        if (target < position) {
            throw new IllegalStateException("layout overlap: at " + position + ", asked to continue at " + target);
        }
        while (position < target) {
            int n = (int) Math.min(ZEROS.length, target - position);
            write(ZEROS, 0, n);
        }
    }

    void write(byte[] data, int off, int len) throws IOException {
        int done = 0;
        while (done < len) {
            if (!buf.hasRemaining()) {
                drain();
            }
            int n = Math.min(buf.remaining(), len - done);
            buf.put(data, off + done, n);
            done += n;
        }
        position += len;
    }

    void write(byte[] data) throws IOException {
        write(data, 0, data.length);
    }

    private void drain() throws IOException {
        buf.flip();
        while (buf.hasRemaining()) {
            channel.write(buf);
        }
        buf.clear();
    }

    @Override
    public void close() throws IOException {
        drain();
        channel.force(false);
    }
}
