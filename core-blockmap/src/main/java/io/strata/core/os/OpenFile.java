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
    /** The size {@link #checkHolds} last saw, or null before its first call. */
    private volatile SizeSeen sizeSeen;

    /** {@code path} names the file in messages only. */
    public OpenFile(FileChannel channel, Path path) {
        this.channel = channel;
        this.path = path;
    }

    public FileChannel channel() {
        return channel;
    }

    /**
     * Throws unless {@code [position, position+length)} lies inside the file as it is now. A transport
     * checks a file region before its reply starts, as it checks a chunk: a file cut short while it is
     * served (a blob or raw image truncated, a cache file shrunk) then fails the read that reaches past
     * its new end with an I/O error, where sending it would stop inside a reply whose header already
     * promised the bytes, and only dropping the connection could end it.
     *
     * <p>The size is asked (fstat) at most every {@link #RECHECK_NANOS} for regions inside the size
     * last seen: on this machine's VM {@code FileChannel.size} costs ~1.4 µs, a sixth of a 4 KiB read's
     * whole server CPU. A file truncated less than that before a read (or between this check and the
     * send) still ends that read's connection.
     */
    public void checkHolds(long position, long length) throws IOException {
        long end = position + length;
        long now = System.nanoTime();
        SizeSeen seen = sizeSeen;
        if (seen != null && end <= seen.size && now - seen.at < RECHECK_NANOS) {
            return;
        }
        checkSize(position, length, now);
    }

    /** {@link #checkHolds}'s slow path, apart so that the fast one stays small enough to inline. */
    private void checkSize(long position, long length, long now) throws IOException {
        long size = channel.size();
        sizeSeen = new SizeSeen(size, now);
        if (position + length > size) {
            EOFException e = new EOFException(path + " ends at byte " + size + ", inside the region "
                    + position + "+" + length + " it serves (cut short since it was opened?)");
            FAILURES.failed("a served file", e);
            throw e;
        }
    }

    /** How long a size seen by {@link #checkHolds} vouches for regions inside it. */
    static final long RECHECK_NANOS = java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(10);

    /** The file's size and when it was seen; one object, so that no reader pairs one size with another's time. */
    private record SizeSeen(long size, long at) {
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
