package io.strata.core.device;

import io.strata.core.chunk.CacheStats;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import io.strata.core.os.OpenFile;
import io.strata.core.buffer.NativeBuffer;

/** A read-only block device as the transports see it: a size and a way to resolve byte ranges. */
public interface BlockDevice extends Closeable {
    /** Size in bytes. */
    long size();

    /** The block size the device prefers (4096 for every Strata device). */
    default int blockSize() {
        return 4096;
    }

    /**
     * Resolves {@code [offset, offset+length)} into segments, handed to {@code sink} in order.
     *
     * @throws OutOfRangeException when the range is not inside the device
     * @throws IOException when a chunk the range needs cannot be read or fails its digest check
     */
    void resolve(long offset, long length, SegmentSink sink) throws IOException;

    /**
     * True when resolving {@code [offset, offset+length)} now would load no chunk: every chunk it
     * touches is in the cache or is a stored chunk already verified. A hint for a transport deciding
     * whether a request may take long (the answer can change at once); a range outside the device
     * answers true (resolving it fails fast). File regions count as ready: the page cache is assumed.
     */
    default boolean isReady(long offset, long length) {
        return true;
    }

    /**
     * Resolves {@code [offset, offset+length)} once into {@code out} (emptied first), with every
     * chunk it needs loaded, verified and pinned, so that {@link PinnedRange#emit} later sends
     * exactly the checked bytes with no load in between, until {@link PinnedRange#release}. With
     * {@code mayLoad} false nothing is loaded: a range needing a load answers
     * {@link PinOutcome#NOT_CACHED}. Anything but {@link PinOutcome#PINNED}, or an exception (a
     * corrupt chunk), leaves {@code out} empty.
     *
     * <p>This default suits devices whose segments are file regions and zeros (a raw image): it
     * records what {@link #resolve} produces, after asking {@link #isReady} when it may not load.
     *
     * @throws OutOfRangeException when the range is not inside the device
     * @throws IOException when a chunk the range needs cannot be read or fails its digest check
     */
    default PinOutcome pin(long offset, long length, PinnedRange out, boolean mayLoad) throws IOException {
        checkRange(offset, length, size());
        out.release();
        if (!mayLoad && !isReady(offset, length)) {
            return PinOutcome.NOT_CACHED;
        }
        boolean done = false;
        try {
            resolve(offset, length, out.recorder());
            done = true;
            return PinOutcome.PINNED;
        } finally {
            if (!done) {
                out.release();
            }
        }
    }

    /** Reads {@code dst.remaining()} bytes from {@code offset} into {@code dst}, advancing it. */
    default void read(long offset, ByteBuffer dst) throws IOException {
        resolve(offset, dst.remaining(), new CopyingSink(dst));
    }

    /**
     * Maps {@code [offset, offset+length)} into data and hole runs without reading any data (for
     * NBD's {@code base:allocation}). A device that cannot tell reports everything as data.
     */
    default void mapAllocation(long offset, long length, AllocationSink sink) throws IOException {
        checkRange(offset, length, size());
        if (length > 0) {
            sink.run(length, false);
        }
    }

    /** Counters of the chunk cache behind this device, if it has one. */
    default CacheStats cacheStats() {
        return CacheStats.NONE;
    }

    /** Where the time of this device's chunk loads went (read, decompress, digest), if it loads chunks. */
    default io.strata.core.chunk.LoadStats loadStats() {
        return io.strata.core.chunk.LoadStats.NONE;
    }

    /** One line naming what the device serves, for logs. */
    String describe();

    /**
     * One line for the device's clients (NBD_INFO_DESCRIPTION, NBD_OPT_LIST): what it is, without the
     * host's paths, which a client that may not even be allowed an export has no business learning.
     */
    default String describeForClients() {
        return "block device (" + size() + " bytes)";
    }

    /** True when {@code [offset, offset+length)} lies inside a device of {@code size} bytes. */
    static boolean isInRange(long offset, long length, long size) {
        return offset >= 0 && length >= 0 && offset <= size && length <= size - offset;
    }

    /** Throws when the range is not inside a device of {@code size} bytes. */
    static void checkRange(long offset, long length, long size) throws OutOfRangeException {
        if (!isInRange(offset, length, size)) {
            throw new OutOfRangeException(offset, length, size);
        }
    }

    /** The sink behind {@link #read}: copies every segment into a ByteBuffer. */
    final class CopyingSink implements SegmentSink {
        private final ByteBuffer dst;

        public CopyingSink(ByteBuffer dst) {
            this.dst = dst;
        }

        @Override
        public void file(OpenFile file, long position, long length) throws IOException {
            int end = dst.position() + (int) length;
            int oldLimit = dst.limit();
            dst.limit(end);
            long pos = position;
            while (dst.hasRemaining()) {
                int n = file.channel().read(dst, pos);
                if (n < 0) {
                    throw new IOException("file ends at " + pos + " inside a segment");
                }
                pos += n;
            }
            dst.limit(oldLimit);
        }

        @Override
        public void memory(NativeBuffer buffer, int offset, int length) {
            buffer.copyTo(offset, dst, length);
        }

        private static final byte[] ZERO = new byte[64 << 10];

        @Override
        public void zeros(long length) {
            long left = length;
            while (left > 0) {
                int n = (int) Math.min(ZERO.length, left);
                dst.put(ZERO, 0, n);
                left -= n;
            }
        }
    }
}
