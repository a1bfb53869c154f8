package io.strata.nbd;

import static io.strata.nbd.NbdProtocol.*;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.device.SegmentSink;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import io.strata.core.os.OpenFile;
import java.nio.channels.FileChannel;

/**
 * Puts replies on a socket, a batch at a time: small replies (headers, statuses, reads up to
 * {@link #GATHER_LIMIT}) are assembled in one direct buffer (pread for file regions, a copy for
 * cached chunks) and the batch goes out in as few writes as fit; larger reads stream file regions
 * with {@code transferTo} (sendfile). Zeros come from a shared zero page, or are OFFSET_HOLE chunks
 * when structured replies are on. One per connection (only its thread writes), reused for every batch.
 *
 * <p>Over TLS there is no sendfile: every byte must pass the SSLEngine, so large file regions are
 * read (pread) through the same staging buffer cached chunks use, then encrypted and written.
 * Plaintext connections keep the zero-copy path.
 */
final class ReplyWriter implements SegmentSink, AutoCloseable {
    private static final int COPY_BUFFER = 256 << 10;
    /**
     * Reads up to this size are gathered, header and data, into one buffer and sent with one write:
     * for small replies a pread + write beats write + sendfile (fewer syscalls, no sendfile setup).
     */
    static final int GATHER_LIMIT = 128 << 10;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    /**
     * Native memory freed by {@link #close} when the connection ends rather than by a GC: the server
     * allocates so little heap that a GC can be many minutes away, and until then the direct
     * buffers of every closed connection stayed resident (bench/soak.sh: 20 MiB a minute).
     */
    private final NativeBuffer headerMemory = NativeBuffer.allocate(64);
    private final NativeBuffer copyMemory = NativeBuffer.allocate(COPY_BUFFER);
    private final ByteBuffer header = headerMemory.view().duplicate().order(ByteOrder.BIG_ENDIAN);
    private final ByteBuffer copy = copyMemory.view().duplicate().order(ByteOrder.BIG_ENDIAN);
    private final ByteBuffer zeros = ZEROS.duplicate();
    private ConnectionIo socket;
    private boolean structured;
    private long cookie;
    /** Device offset of the next segment (for OFFSET_DATA / OFFSET_HOLE chunks). */
    private long offset;
    /** Device offset where the current read ends: its chunk reaching it carries the DONE flag. */
    private long readEnd;
    /** True while a small reply is being assembled in {@link #copy} rather than sent piece by piece. */
    private boolean gathering;
    long bytesSent;

    /** Room kept beside a gathered read's data for its headers (structured chunks cost 20-32 bytes each). */
    private static final int HEADER_SLACK = 8 << 10;

    /** Starts a batch of replies, sent by {@link #endBatch}. */
    void beginBatch(ConnectionIo socket, boolean structured) {
        this.socket = socket;
        this.structured = structured;
        this.gathering = false;
        copy.clear();
    }

    /** Sends what the batch assembled. */
    void endBatch() throws IOException {
        flush();
    }

    private void flush() throws IOException {
        copy.flip();
        socket.write(copy);
        copy.clear();
    }

    /** Makes room for a small reply of about {@code bytes} in the batch buffer and gathers into it. */
    private void gather(long bytes) throws IOException {
        if (copy.remaining() < bytes + HEADER_SLACK) {
            flush();
        }
        gathering = true;
    }

    /** Starts a read reply of {@code length} bytes (inside a batch). */
    void beginRead(long cookie, long offset, long length) throws IOException {
        this.cookie = cookie;
        this.offset = offset;
        this.readEnd = offset + length;
        if (length <= GATHER_LIMIT) {
            gather(length);
        } else {
            flush();
            gathering = false;
        }
        if (!structured) {
            header.clear();
            ReplyHeaders.simple(header, 0, cookie);
            send(header.flip());
        }
    }

    /**
     * Ends a read reply. Structured: the last data or hole chunk already carried DONE (spec,
     * "Structured reply chunk message": any chunk type may be the final one), which spares the
     * client a separate NONE chunk to parse, one receive per read for libnbd.
     */
    void endRead() {
        gathering = false;
    }

    /** A reply with no payload (inside a batch): simple, or a final structured NONE / ERROR chunk. */
    void status(long cookie, int error) throws IOException {
        this.cookie = cookie;
        gather(64);
        if (!structured) {
            header.clear();
            ReplyHeaders.simple(header, error, cookie);
            send(header.flip());
        } else {
            done(error);
        }
        gathering = false;
    }

    private void done(int error) throws IOException {
        header.clear();
        if (error == 0) {
            ReplyHeaders.structured(header, REPLY_FLAG_DONE, REPLY_TYPE_NONE, cookie, 0);
        } else {
            ReplyHeaders.structured(header, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, cookie, 6);
            header.putInt(error).putShort((short) 0);
        }
        send(header.flip());
    }

    /** The base:allocation reply (inside a batch): one BLOCK_STATUS chunk with DONE. */
    void blockStatus(long cookie, ByteBuffer descriptors) throws IOException {
        gather(descriptors.remaining() + 64);
        header.clear();
        ReplyHeaders.structured(header, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, cookie, 4 + descriptors.remaining());
        header.putInt(Negotiated.ALLOCATION_CONTEXT_ID);
        send(header.flip());
        send(descriptors);
        gathering = false;
    }

    /** DONE for the chunk that ends the read (segments arrive in order and cover the read exactly). */
    private int lastChunkFlag(long length) {
        return offset + length == readEnd ? REPLY_FLAG_DONE : 0;
    }

    private void dataChunkHeader(long length) throws IOException {
        if (structured) {
            header.clear();
            ReplyHeaders.structured(header, lastChunkFlag(length), REPLY_TYPE_OFFSET_DATA, cookie, (int) (8 + length));
            header.putLong(offset);
            send(header.flip());
        }
        offset += length;
    }

    @Override
    public void file(OpenFile region, long position, long length) throws IOException {
        FileChannel file = region.channel();
        dataChunkHeader(length);
        if (gathering) {
            int end = copy.position() + (int) length;
            copy.limit(end);
            long pos = position;
            while (copy.hasRemaining()) {
                int n = file.read(copy, pos);
                if (n < 0) {
                    throw new IOException("file ends at " + pos + " inside its segment");
                }
                pos += n;
            }
            copy.limit(copy.capacity());
            bytesSent += length;
            return;
        }
        if (socket.zeroCopy()) {
            socket.transfer(file, position, length);
        } else {
            copyFile(file, position, length);
        }
        bytesSent += length;
    }

    /** A large file region through the staging buffer, for connections sendfile cannot feed (TLS). */
    private void copyFile(FileChannel file, long position, long length) throws IOException {
        long pos = position;
        long end = position + length;
        while (pos < end) {
            copy.clear().limit((int) Math.min(copy.capacity(), end - pos));
            while (copy.hasRemaining()) {
                int n = file.read(copy, pos);
                if (n < 0) {
                    throw new IOException("file ends at " + pos + " inside its segment");
                }
                pos += n;
            }
            send(copy.flip());
        }
        copy.clear(); // the staging is sent: the batch buffer starts empty again
    }

    @Override
    public void memory(NativeBuffer buffer, int off, int length) throws IOException {
        dataChunkHeader(length);
        if (gathering) {
            buffer.copyTo(off, copy, length);
            bytesSent += length;
            return;
        }
        int done = 0;
        while (done < length) {
            int n = Math.min(copy.capacity(), length - done);
            copy.clear();
            buffer.copyTo(off + done, copy, n);
            send(copy.flip());
            done += n;
        }
        copy.clear(); // the staging is sent: the batch buffer starts empty again
        bytesSent += length;
    }

    @Override
    public void zeros(long length) throws IOException {
        if (structured) {
            header.clear();
            ReplyHeaders.structured(header, lastChunkFlag(length), REPLY_TYPE_OFFSET_HOLE, cookie, 12);
            header.putLong(offset).putInt((int) length);
            send(header.flip());
            offset += length;
            return;
        }
        long left = length;
        while (left > 0) {
            int n = (int) Math.min(zeros.capacity(), left);
            zeros.clear().limit(n);
            send(zeros);
            left -= n;
        }
        bytesSent += length;
    }

    private void send(ByteBuffer b) throws IOException {
        if (gathering) {
            copy.put(b);
            return;
        }
        socket.write(b);
    }

    /** Frees the buffers; the writer must not be used afterwards. */
    @Override
    public void close() {
        headerMemory.close();
        copyMemory.close();
    }
}
