package io.strata.nbd;

import io.strata.core.device.BlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Builds base:allocation descriptors (u32 length, u32 flags) from the device's allocation map,
 * merging neighbouring runs of the same kind. Holes are reported HOLE|ZERO: they read as zeros.
 */
final class StatusDescriptors {
    /** The spec asks for at most 2^20 descriptors per chunk; far fewer keeps replies small. */
    static final int MAX_DESCRIPTORS = 8192;
    private static final long MAX_RUN = 0xFFFFF000L; // a u32, kept 4 KiB-aligned
    private static final ThreadLocal<ByteBuffer> PER_THREAD =
            ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(MAX_DESCRIPTORS * 8));

    private StatusDescriptors() {
    }

    static ByteBuffer forThisThread() {
        return PER_THREAD.get();
    }

    /** Fills {@code out} (cleared first, flipped after) with descriptors for the range. */
    static void fill(BlockDevice device, long offset, long length, boolean one, ByteBuffer out) throws IOException {
        out.clear();
        Merger m = MERGER.get();
        m.reset(out, one ? 1 : MAX_DESCRIPTORS);
        device.mapAllocation(offset, length, m);
        m.flush();
        out.flip();
    }

    private static final ThreadLocal<Merger> MERGER = ThreadLocal.withInitial(Merger::new);

    /** Accumulates runs; stops the walk when the descriptor budget is spent. */
    private static final class Merger implements io.strata.core.device.AllocationSink {
        private ByteBuffer out;
        private int budget;
        private long pending;
        private boolean pendingHole;

        void reset(ByteBuffer out, int budget) {
            this.out = out;
            this.budget = budget;
            this.pending = 0;
        }

        @Override
        public boolean run(long length, boolean hole) {
            if (pending > 0 && hole == pendingHole && pending + length <= MAX_RUN) {
                pending += length;
                return true;
            }
            if (pending > 0) {
                emit();
                if (budget == 0) {
                    return false;
                }
            }
            pending = Math.min(length, MAX_RUN);
            pendingHole = hole;
            return true;
        }

        private void emit() {
            out.putInt((int) pending).putInt(pendingHole ? NbdProtocol.STATE_HOLE | NbdProtocol.STATE_ZERO : 0);
            budget--;
            pending = 0;
        }

        void flush() {
            if (pending > 0 && budget > 0) {
                emit();
            }
        }
    }
}
