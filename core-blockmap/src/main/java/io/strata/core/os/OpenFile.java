package io.strata.core.os;

import java.io.IOException;
import java.nio.channels.FileChannel;

/**
 * A file open for reading, in the two forms the transports move its bytes with: the JDK channel
 * (NBD's {@code transferTo}, which is sendfile(2), and positional reads) and the descriptor number
 * (vhost-user's preadv(2) straight into mapped guest memory). The core hands this to a
 * {@link io.strata.core.device.SegmentSink} so that no transport has to dig the descriptor out of a
 * channel per segment; it is looked up once, the first time someone asks. The owner of the channel
 * closes it; this is only a view.
 */
public final class OpenFile {
    private final FileChannel channel;
    /** The descriptor, or -1 until first asked. A benign race: every thread computes the same number. */
    private int descriptor = -1;

    public OpenFile(FileChannel channel) {
        this.channel = channel;
    }

    public FileChannel channel() {
        return channel;
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
