package io.strata.builder.tree;

/**
 * A regular file's data as the image stores it: its size and, per chunk, the id of the stored chunk
 * that holds those bytes, or {@link #HOLE} for a chunk of zeros that is stored nowhere. Hard links
 * share one instance.
 */
public final class FileContent {
    public static final int HOLE = -1;
    private static final int UNSET = -2;

    /** The most chunks one file may have: its chunk ids are one Java array. */
    public static final long MAX_CHUNKS = Integer.MAX_VALUE - 8;

    private final long size;
    private final int count;
    /**
     * The ids stored so far. It grows as chunks are stored rather than being sized up front,
     * because a tar header may declare a size that its data never delivers.
     */
    private int[] chunks;

    public FileContent(long size, long chunkSize) {
        long n = chunksFor(size, chunkSize);
        if (n > MAX_CHUNKS) {
            throw new IllegalArgumentException("a file of " + size + " bytes has too many " + chunkSize + "-byte chunks");
        }
        this.size = size;
        this.count = (int) n;
        this.chunks = new int[(int) Math.min(n, 1024)];
        java.util.Arrays.fill(chunks, UNSET);
    }

    /** How many {@code chunkSize}-byte chunks hold {@code size} bytes. */
    public static long chunksFor(long size, long chunkSize) {
        return size / chunkSize + (size % chunkSize == 0 ? 0 : 1);
    }

    public long size() {
        return size;
    }

    public int chunkCount() {
        return count;
    }

    public synchronized int chunk(int i) {
        java.util.Objects.checkIndex(i, count);
        int c = i < chunks.length ? chunks[i] : UNSET;
        if (c == UNSET) {
            throw new IllegalStateException("chunk " + i + " of a " + size + "-byte file was never stored");
        }
        return c;
    }

    public synchronized void setChunk(int i, int id) {
        java.util.Objects.checkIndex(i, count);
        if (i >= chunks.length) {
            int old = chunks.length;
            chunks = java.util.Arrays.copyOf(chunks, (int) Math.min(count, Math.max(i + 1L, 2L * old)));
            java.util.Arrays.fill(chunks, old, chunks.length, UNSET);
        }
        chunks[i] = id;
    }
}
