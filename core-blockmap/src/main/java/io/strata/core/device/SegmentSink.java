package io.strata.core.device;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.os.OpenFile;
import java.io.IOException;

/**
 * Receives the pieces of a resolved byte range, in order. Each transport implements it with the
 * cheapest move it has: sendfile for a file region, a copy for cached memory, a memset for zeros.
 * Memory handed to {@link #memory} is valid only during the call.
 */
public interface SegmentSink {
    /** {@code length} bytes of {@code file} starting at {@code position}. */
    void file(OpenFile file, long position, long length) throws IOException;

    /** {@code length} bytes of off-heap {@code buffer} starting at {@code offset} (a cached chunk). */
    void memory(NativeBuffer buffer, int offset, int length) throws IOException;

    /** {@code length} zero bytes (gaps, holes, the padding after a chunk's last byte). */
    void zeros(long length) throws IOException;
}
