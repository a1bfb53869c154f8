package io.strata.builder.tree;

/**
 * A regular file's data as the image stores it: its size and, per chunk, the id of the stored chunk
 * that holds those bytes, or {@link #HOLE} for a chunk of zeros that is stored nowhere. Hard links
 * share one instance.
 */
public final class FileContent {
    public static final int HOLE = -1;
    private static final int UNSET = -2;

    private final long size;
    private final int[] chunks;

    public FileContent(long size, long chunkSize) {
        long n = (size + chunkSize - 1) / chunkSize;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a file of " + size + " bytes has too many " + chunkSize + "-byte chunks");
        }
        this.size = size;
        this.chunks = new int[(int) n];
        java.util.Arrays.fill(chunks, UNSET);
    }

    public long size() {
        return size;
    }

    public int chunkCount() {
        return chunks.length;
    }

    public int chunk(int i) {
        int c = chunks[i];
        if (c == UNSET) {
            throw new IllegalStateException("chunk " + i + " of a " + size + "-byte file was never stored");
        }
        return c;
    }

    public void setChunk(int i, int id) {
        chunks[i] = id;
    }
}
