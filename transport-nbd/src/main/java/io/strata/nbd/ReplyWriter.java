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
 * Puts replies on a socket, a batch at a time, through one staging buffer: headers, statuses,
 * cached chunks (a copy) and small file regions (a pread) are appended to it, and it is written
 * when full and when the batch ends, so a batch of small replies costs one write and a large read of
 * many small chunks a write per 256 KiB, not one per chunk. File regions of
 * {@link #SENDFILE_MIN} bytes or more go out with {@code transferTo} (sendfile) after what is staged.
 * Zeros are OFFSET_HOLE chunks with structured replies, else bytes from a shared zero page. One per
 * connection (only its thread writes), reused for every batch.
 *
 * <p>Over TLS there is no sendfile: every byte must pass the SSLEngine, so large file regions are
 * read (pread) through the same staging buffer, then encrypted and written.
 */
final class ReplyWriter implements SegmentSink, AutoCloseable {
    private static final int COPY_BUFFER = 256 << 10;
    /**
     * File regions from this size on are sent with sendfile; smaller ones are read into the staging
     * buffer: for small pieces a pread and a share of one write beat a write plus a sendfile.
     */
    static final int SENDFILE_MIN = 64 << 10;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    /**
     * Native memory freed by {@link #close} when the connection ends rather than by a GC: the server
     * allocates so little heap that a GC can be many minutes away, and until then the direct
     * buffers of every closed connection stayed resident (bench/soak.sh: 20 MiB a minute).
     */
    private final NativeBuffer headerMemory = NativeBuffer.allocate(64);
    private final NativeBuffer copyMemory = NativeBuffer.allocate(COPY_BUFFER);
    private final ByteBuffer header = headerMemory.view().duplicate().order(ByteOrder.BIG_ENDIAN);
    /** The staging buffer: what is appended and not yet written (position = end of it). */
    private final ByteBuffer copy = copyMemory.view().duplicate().order(ByteOrder.BIG_ENDIAN);
    private final ByteBuffer zeros = ZEROS.duplicate();
    private ConnectionIo socket;
    private boolean structured;
    private long cookie;
    /** Device offset of the next segment (for OFFSET_DATA / OFFSET_HOLE chunks). */
    private long offset;
    /** Device offset where the current read ends: its chunk reaching it carries the DONE flag. */
    private long readEnd;
    long bytesSent;

    /** Starts a batch of replies, sent by {@link #endBatch}. */
    void beginBatch(ConnectionIo socket, boolean structured) {
        this.socket = socket;
        this.structured = structured;
        copy.clear();
    }

    /** Sends what the batch assembled. */
    void endBatch() throws IOException {
        flush();
    }

    private void flush() throws IOException {
        if (copy.position() > 0) {
            copy.flip();
            socket.write(copy);
        }
        copy.clear();
    }

    /** Starts a read reply of {@code length} bytes (inside a batch). */
    void beginRead(long cookie, long offset, long length) throws IOException {
        this.cookie = cookie;
        this.offset = offset;
        this.readEnd = offset + length;
        if (!structured) {
            header.clear();
            ReplyHeaders.simple(header, 0, cookie);
            stage(header.flip());
        }
    }

    /**
     * Ends a read reply. Structured: the last data or hole chunk already carried DONE (spec,
     * "Structured reply chunk message": any chunk type may be the final one), which spares the
     * client a separate NONE chunk to parse, one receive per read for libnbd.
     */
    void endRead() {
    }

    /** A reply with no payload (inside a batch): simple, or a final structured NONE / ERROR chunk. */
    void status(long cookie, int error) throws IOException {
        this.cookie = cookie;
        if (!structured) {
            header.clear();
            ReplyHeaders.simple(header, error, cookie);
            stage(header.flip());
        } else {
            done(error);
        }
    }

    private void done(int error) throws IOException {
        header.clear();
        if (error == 0) {
            ReplyHeaders.structured(header, REPLY_FLAG_DONE, REPLY_TYPE_NONE, cookie, 0);
        } else {
            ReplyHeaders.structured(header, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, cookie, 6);
            header.putInt(error).putShort((short) 0);
        }
        stage(header.flip());
    }

    /** The base:allocation reply (inside a batch): one BLOCK_STATUS chunk with DONE. */
    void blockStatus(long cookie, ByteBuffer descriptors) throws IOException {
        header.clear();
        ReplyHeaders.structured(header, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, cookie, 4 + descriptors.remaining());
        header.putInt(Negotiated.ALLOCATION_CONTEXT_ID);
        stage(header.flip());
        stage(descriptors);
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
            stage(header.flip());
        }
        offset += length;
    }

    @Override
    public void file(OpenFile region, long position, long length) throws IOException {
        FileChannel file = region.channel();
        dataChunkHeader(length);
        if (length >= SENDFILE_MIN && socket.zeroCopy()) {
            flush(); // what is staged goes first
            socket.transfer(file, position, length);
        } else {
            long pos = position;
            long end = position + length;
            while (pos < end) {
                if (!copy.hasRemaining()) {
                    flush();
                }
                int limit = copy.limit();
                copy.limit((int) Math.min(limit, copy.position() + (end - pos)));
                while (copy.hasRemaining()) {
                    int n = file.read(copy, pos);
                    if (n < 0) {
                        throw new IOException("file ends at " + pos + " inside its segment");
                    }
                    pos += n;
                }
                copy.limit(limit);
            }
        }
        bytesSent += length;
    }

    @Override
    public void memory(NativeBuffer buffer, int off, int length) throws IOException {
        dataChunkHeader(length);
        int done = 0;
        while (done < length) {
            if (!copy.hasRemaining()) {
                flush();
            }
            int n = Math.min(copy.remaining(), length - done);
            buffer.copyTo(off + done, copy, n);
            done += n;
        }
        bytesSent += length;
    }

    @Override
    public void zeros(long length) throws IOException {
        if (structured) {
            header.clear();
            ReplyHeaders.structured(header, lastChunkFlag(length), REPLY_TYPE_OFFSET_HOLE, cookie, 12);
            header.putLong(offset).putInt((int) length);
            stage(header.flip());
            offset += length;
            return;
        }
        long left = length;
        while (left > 0) {
            int n = (int) Math.min(zeros.capacity(), left);
            zeros.clear().limit(n);
            stage(zeros);
            left -= n;
        }
        bytesSent += length;
    }

    /** Appends {@code b} to the staging buffer, writing it out whenever it fills. */
    private void stage(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (!copy.hasRemaining()) {
                flush();
            }
            int n = Math.min(copy.remaining(), b.remaining());
            copy.put(copy.position(), b, b.position(), n);
            copy.position(copy.position() + n);
            b.position(b.position() + n);
        }
    }

    /** Frees the buffers; the writer must not be used afterwards. */
    @Override
    public void close() {
        headerMemory.close();
        copyMemory.close();
    }
}
