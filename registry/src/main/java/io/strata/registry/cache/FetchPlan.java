package io.strata.registry.cache;

import java.util.Arrays;
import java.util.List;

/**
 * The requests a prefetcher means to make for one blob: segments of chunks it wants, each the
 * wanted chunks of one request (neighbours in the blob, merged only across small gaps). Registered
 * with a blob ({@link RemoteBlob#usePlan}), it also shapes the reads' misses: a read that misses a
 * chunk of a segment no one has fetched yet takes that whole segment now, exactly the chunks the
 * plan wanted (reads go ahead of queued prefetch, and their request then carries what the
 * prefetcher would have fetched instead of the neighbours a plain miss merges).
 */
public final class FetchPlan {
    private final int[] segmentOf;
    private final int[][] segments;

    /**
     * @param chunkCount the blob's chunk count
     * @param segments each a list of chunk indexes in ascending order; a chunk in at most one
     */
    public FetchPlan(int chunkCount, List<int[]> segments) {
        this.segmentOf = new int[chunkCount];
        Arrays.fill(segmentOf, -1);
        this.segments = segments.toArray(new int[0][]);
        for (int s = 0; s < this.segments.length; s++) {
            for (int c : this.segments[s]) {
                if (segmentOf[c] != -1) {
                    throw new IllegalArgumentException("chunk " + c + " is in two segments");
                }
                segmentOf[c] = s;
            }
        }
    }

    /** The segment holding {@code chunk} (its chunk indexes, ascending; not to be modified), or null. */
    int[] segmentOf(int chunk) {
        int s = chunk < segmentOf.length ? segmentOf[chunk] : -1;
        return s < 0 ? null : segments[s];
    }

    public int segmentCount() {
        return segments.length;
    }
}
