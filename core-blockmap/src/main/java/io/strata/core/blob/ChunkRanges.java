package io.strata.core.blob;

import java.util.Arrays;

/**
 * Where a blob's chunks sit in the blob itself: the compressed byte range of every chunk, sorted by
 * offset, each distinct range once. A remote blob uses it to fetch whole chunks and to merge
 * neighbouring missing chunks into one request; a local file needs none of it.
 *
 * <p>Ranges may touch, leave gaps between them, or (in a hostile image) overlap; they never have
 * a negative offset or length.
 */
public final class ChunkRanges {
    private static final ChunkRanges EMPTY = new ChunkRanges(new long[0], new int[0]);

    private final long[] offsets;
    private final int[] lengths;
    /** {@code maxEnd[i]}: the largest end among ranges 0..i; ascending even where ranges overlap. */
    private final long[] maxEnd;

    private ChunkRanges(long[] offsets, int[] lengths) {
        this.offsets = offsets;
        this.lengths = lengths;
        this.maxEnd = new long[offsets.length];
        long m = 0;
        for (int i = 0; i < offsets.length; i++) {
            m = Math.max(m, offsets[i] + lengths[i]);
            maxEnd[i] = m;
        }
    }

    public static ChunkRanges empty() {
        return EMPTY;
    }

    /**
     * The ranges {@code (offsets[i], lengths[i])}, in any order and with repeats (a deduplicated
     * chunk is listed once per file that uses it), sorted by offset then length, repeats dropped.
     * The arrays are not kept.
     */
    public static ChunkRanges of(long[] offsets, int[] lengths) {
        if (offsets.length != lengths.length) {
            throw new IllegalArgumentException(offsets.length + " offsets but " + lengths.length + " lengths");
        }
        int n = offsets.length;
        boolean sorted = true;
        for (int i = 0; i < n; i++) {
            if (offsets[i] < 0 || lengths[i] < 0) {
                throw new IllegalArgumentException("chunk range " + i + " is negative: offset " + offsets[i]
                        + ", length " + lengths[i]);
            }
            if (i > 0 && compare(offsets, lengths, i - 1, i) > 0) {
                sorted = false;
            }
        }
        // Blobs are usually written in chunk order, so the ranges usually come sorted already.
        Integer[] order = null;
        if (!sorted) {
            order = new Integer[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> compare(offsets, lengths, a, b));
        }
        long[] o = new long[n];
        int[] l = new int[n];
        int count = 0;
        for (int k = 0; k < n; k++) {
            int i = order == null ? k : order[k];
            if (count > 0 && o[count - 1] == offsets[i] && l[count - 1] == lengths[i]) {
                continue;
            }
            o[count] = offsets[i];
            l[count] = lengths[i];
            count++;
        }
        return new ChunkRanges(Arrays.copyOf(o, count), Arrays.copyOf(l, count));
    }

    private static int compare(long[] offsets, int[] lengths, int a, int b) {
        return offsets[a] != offsets[b] ? Long.compare(offsets[a], offsets[b]) : Integer.compare(lengths[a], lengths[b]);
    }

    /** How many distinct chunk ranges the blob has. */
    public int count() {
        return offsets.length;
    }

    /** Byte offset in the blob of range {@code i} (ascending in {@code i}). */
    public long offset(int i) {
        return offsets[i];
    }

    /** Length in bytes of range {@code i}: the chunk's compressed size. */
    public int length(int i) {
        return lengths[i];
    }

    /** End of range {@code i}, exclusive. */
    public long end(int i) {
        return offsets[i] + lengths[i];
    }

    /** Index of the first range that ends after {@code position}, or {@link #count()} if none. */
    public int firstEndingAfter(long position) {
        // Ranges sorted by offset may overlap, so their ends are not sorted; the running maximum
        // is, and the first index where it passes position is the first range ending after it.
        int lo = 0;
        int hi = offsets.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (maxEnd[mid] <= position) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    @Override
    public String toString() {
        return "ChunkRanges[" + offsets.length + " ranges]";
    }
}
