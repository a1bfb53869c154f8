package io.strata.core.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ChunkRangesTest {
    private static long[] offsets(ChunkRanges r) {
        long[] o = new long[r.count()];
        for (int i = 0; i < o.length; i++) {
            o[i] = r.offset(i);
        }
        return o;
    }

    private static int[] lengths(ChunkRanges r) {
        int[] l = new int[r.count()];
        for (int i = 0; i < l.length; i++) {
            l[i] = r.length(i);
        }
        return l;
    }

    @Test
    void sortsByOffsetAndDropsRepeats() {
        ChunkRanges r = ChunkRanges.of(new long[] {300, 0, 100, 0, 300, 100}, new int[] {50, 100, 200, 100, 50, 150});
        assertArrayEquals(new long[] {0, 100, 100, 300}, offsets(r));
        assertArrayEquals(new int[] {100, 150, 200, 50}, lengths(r));
        assertEquals(0, ChunkRanges.empty().count());
    }

    @Test
    void firstEndingAfterFindsTheRangeHoldingAPosition() {
        // Gaps between ranges, and one long range overlapping its successors (a hostile image).
        ChunkRanges r = ChunkRanges.of(new long[] {0, 100, 110, 120, 1000}, new int[] {50, 500, 5, 5, 10});
        assertEquals(0, r.firstEndingAfter(0));
        assertEquals(0, r.firstEndingAfter(49));
        assertEquals(1, r.firstEndingAfter(50), "in the gap: the next range");
        assertEquals(1, r.firstEndingAfter(130), "inside the long range, past the short ones it overlaps");
        assertEquals(1, r.firstEndingAfter(599));
        assertEquals(4, r.firstEndingAfter(600));
        assertEquals(5, r.firstEndingAfter(1010), "past the end");
    }

    @Test
    void rejectsNegativeRangesAndMismatchedArrays() {
        assertThrows(IllegalArgumentException.class, () -> ChunkRanges.of(new long[] {-1}, new int[] {1}));
        assertThrows(IllegalArgumentException.class, () -> ChunkRanges.of(new long[] {0}, new int[] {-1}));
        assertThrows(IllegalArgumentException.class, () -> ChunkRanges.of(new long[] {0, 1}, new int[] {1}));
    }
}
