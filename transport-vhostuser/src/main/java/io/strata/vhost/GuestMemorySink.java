package io.strata.vhost;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.SegmentSink;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.EOFException;
import java.io.IOException;
import java.nio.channels.FileChannel;

/**
 * Writes a resolved read straight into the guest's buffers (the chain's writable segments, minus the
 * status byte): a file region with pread(2) into the mapped guest address, a cached chunk with one
 * native copy, zeros with a memset. No intermediate buffer. One per queue worker, reused.
 */
final class GuestMemorySink implements SegmentSink {
    private final LibC libc = Native.libc();
    private DescriptorChain chain;
    private int segment;
    private int offsetInSegment;
    private long remaining;
    // A tiny identity cache: a device has a handful of files (bootstrap, blobs).
    private final FileChannel[] cachedChannel = new FileChannel[8];
    private final int[] cachedFd = new int[8];
    private int cacheNext;

    /** Starts filling the chain's writable bytes, {@code dataLength} of them. */
    void begin(DescriptorChain c, long dataLength) {
        chain = c;
        segment = 0;
        while (segment < c.count && !c.writable[segment]) {
            segment++;
        }
        offsetInSegment = 0;
        remaining = dataLength;
    }

    /** The next piece of guest memory: host address, and how many bytes fit (at most {@code want}). */
    private long nextPiece(long want, int[] fit) {
        while (offsetInSegment == chain.len[segment]) {
            segment++;
            offsetInSegment = 0;
        }
        int n = (int) Math.min(want, chain.len[segment] - offsetInSegment);
        fit[0] = n;
        return chain.addr[segment] + offsetInSegment;
    }

    private final int[] fit = new int[1];

    @Override
    public void file(FileChannel file, long position, long length) throws IOException {
        int fd = fdOf(file);
        long pos = position;
        long left = take(length);
        while (left > 0) {
            long host = nextPiece(left, fit);
            int n = fit[0];
            int done = 0;
            while (done < n) {
                long r = libc.pread(fd, host + done, n - done, pos + done);
                if (r < 0) {
                    int e = Native.errno();
                    if (e == LibC.EINTR) {
                        continue;
                    }
                    throw new IOException("pread failed: errno " + e);
                }
                if (r == 0) {
                    throw new EOFException("file ends inside a segment at " + (pos + done));
                }
                done += (int) r;
            }
            offsetInSegment += n;
            pos += n;
            left -= n;
        }
    }

    @Override
    public void memory(NativeBuffer buffer, int offset, int length) {
        long left = take(length);
        int src = offset;
        while (left > 0) {
            long host = nextPiece(left, fit);
            int n = fit[0];
            buffer.copyToAddress(src, host, n);
            offsetInSegment += n;
            src += n;
            left -= n;
        }
    }

    @Override
    public void zeros(long length) {
        long left = take(length);
        while (left > 0) {
            long host = nextPiece(left, fit);
            int n = fit[0];
            NativeMemory.zero(host, n);
            offsetInSegment += n;
            left -= n;
        }
    }

    private long take(long length) {
        if (length > remaining) {
            throw new IllegalStateException("device produced more bytes than the request asked for");
        }
        remaining -= length;
        return length;
    }

    private int fdOf(FileChannel ch) throws IOException {
        for (int i = 0; i < cachedChannel.length; i++) {
            if (cachedChannel[i] == ch) {
                return cachedFd[i];
            }
        }
        int fd = Native.fdOf(ch);
        cachedChannel[cacheNext] = ch;
        cachedFd[cacheNext] = fd;
        cacheNext = (cacheNext + 1) % cachedChannel.length;
        return fd;
    }
}
