package io.strata.vhost;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.SegmentSink;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import io.strata.core.os.OpenFile;
import java.io.EOFException;
import java.io.IOException;

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

    /** Most iovecs one preadv takes here (Linux's IOV_MAX is 1024). */
    private static final int MAX_IOV = 256;
    private final NativeBuffer iov = NativeBuffer.allocate(MAX_IOV * 16);

    /**
     * A file region goes straight into the guest's buffers with preadv(2): one syscall for all the
     * guest pages it spans (a 1 MiB read is ~256 scattered 4 KiB pages), not one pread per page.
     */
    @Override
    public void file(OpenFile file, long position, long length) throws IOException {
        int fd = file.descriptor();
        long pos = position;
        long left = take(length);
        while (left > 0) {
            int count = 0;
            long batch = 0;
            while (left - batch > 0 && count < MAX_IOV) {
                long host = nextPiece(left - batch, fit);
                int n = fit[0];
                NativeMemory.putLong(iov.address() + 16L * count, host);
                NativeMemory.putLong(iov.address() + 16L * count + 8, n);
                offsetInSegment += n;
                batch += n;
                count++;
            }
            readScattered(fd, count, batch, pos);
            pos += batch;
            left -= batch;
        }
    }

    /** preadv until all {@code total} bytes of the iovecs are in, resuming after short reads. */
    private void readScattered(int fd, int count, long total, long pos) throws IOException {
        long done = 0;
        int first = 0;
        while (done < total) {
            long r = libc.preadv(fd, iov.address() + 16L * first, count - first, pos + done);
            if (r < 0) {
                int e = Native.errno();
                if (e == LibC.EINTR) {
                    continue;
                }
                throw new IOException("preadv failed: errno " + e);
            }
            if (r == 0) {
                throw new EOFException("file ends inside a segment at " + (pos + done));
            }
            done += r;
            // Skip the iovecs filled completely; trim the one a short read stopped in.
            while (r > 0 && first < count) {
                long at = iov.address() + 16L * first;
                long len = NativeMemory.getLong(at + 8);
                if (r >= len) {
                    r -= len;
                    first++;
                } else {
                    NativeMemory.putLong(at, NativeMemory.getLong(at) + r);
                    NativeMemory.putLong(at + 8, len - r);
                    r = 0;
                }
            }
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
}
