package io.strata.core.os;

import io.strata.core.metrics.ReadFailureLog;
import java.io.EOFException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import org.slf4j.LoggerFactory;

/**
 * A file open for reading, in the two forms the transports move its bytes with: the JDK channel
 * (NBD's {@code transferTo}, which is sendfile(2), and positional reads) and the descriptor number
 * (vhost-user's preadv(2) straight into mapped guest memory). The core hands this to a
 * {@link io.strata.core.device.SegmentSink} so that no transport has to dig the descriptor out of a
 * channel per segment; it is looked up once, the first time someone asks. The owner of the channel
 * closes it; this is only a view.
 */
public final class OpenFile {
    private static final ReadFailureLog FAILURES = new ReadFailureLog(LoggerFactory.getLogger(OpenFile.class));

    private final FileChannel channel;
    private final Path path;
    /** The descriptor, or -1 until first asked. A benign race: every thread computes the same number. */
    private int descriptor = -1;

    /** {@code path} names the file in messages only. */
    public OpenFile(FileChannel channel, Path path) {
        this.channel = channel;
        this.path = path;
    }

    public FileChannel channel() {
        return channel;
    }

    /**
     * Throws unless {@code [position, position+length)} lies inside the file as it is now (one fstat).
     * A transport checks a file region before its reply starts, as it checks a chunk: a file cut short
     * while it is served (a blob or raw image truncated, a cache file shrunk) then fails the read that
     * reaches past its new end with an I/O error, where sending it would stop inside a reply whose
     * header already promised the bytes, and only dropping the connection could end it. A file
     * truncated between this check and the send still ends that connection.
     */
    public void checkHolds(long position, long length) throws IOException {
        long size = channel.size();
        if (position > size - length) {
            EOFException e = new EOFException(path + " ends at byte " + size + ", inside the region "
                    + position + "+" + length + " it serves (cut short since it was opened?)");
            FAILURES.failed("a served file", e);
            throw e;
        }
    }

    /** The file's path, as given when it was opened. */
    public Path path() {
        return path;
    }

    /**
     * The descriptor number behind {@link #channel}. The JDK does not expose it: the first call reads
     * it through {@link Native#fdOf} (reflection into the channel's FileDescriptor), later calls
     * return the remembered number.
     */
    public int descriptor() throws IOException {
        int fd = descriptor;
        if (fd < 0) {
            fd = Native.fdOf(channel);
            descriptor = fd;
        }
        return fd;
    }
}
