package io.strata.core.chunk;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.ChunkInfoTable;
import io.strata.core.image.ImageFormatException;
import io.strata.core.image.RafsImage;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The chunks of one blob, sorted by uncompressed offset, in parallel primitive arrays so that a
 * lookup is a binary search with no allocation. The bootstrap's chunk-info table is not sorted and
 * names a deduplicated chunk once per file that uses it; both are handled here, once.
 */
public final class ChunkTable {
    private final int blobIndex;
    private final String blobId;
    private final long[] uncompressedOffset;
    private final int[] uncompressedSize;
    private final long[] compressedOffset;
    private final int[] compressedSize;
    private final boolean[] compressed;
    private final byte[] digests;
    /** Chunk-info entries naming this blob (before repeats are dropped): file-chunk references. */
    private final int references;

    private ChunkTable(int blobIndex, String blobId, ChunkInfoTable table, int[] sorted, int n, int references) {
        this.references = references;
        this.blobIndex = blobIndex;
        this.blobId = blobId;
        this.uncompressedOffset = new long[n];
        this.uncompressedSize = new int[n];
        this.compressedOffset = new long[n];
        this.compressedSize = new int[n];
        this.compressed = new boolean[n];
        this.digests = new byte[n * ChunkInfo.DIGEST_SIZE];
        for (int k = 0; k < n; k++) {
            int e = sorted[k];
            uncompressedOffset[k] = table.uncompressedOffset(e);
            uncompressedSize[k] = (int) table.uncompressedSize(e);
            compressedOffset[k] = table.compressedOffset(e);
            compressedSize[k] = (int) table.compressedSize(e);
            compressed[k] = table.isCompressed(e);
            table.digestInto(e, digests, k * ChunkInfo.DIGEST_SIZE);
        }
    }

    /**
     * Builds every blob's table in one pass over the image's chunk-info table (it can hold millions
     * of entries; walking it once per blob would cost blobs x chunks).
     */
    public static ChunkTable[] buildAll(RafsImage image) throws ImageFormatException {
        int blobs = image.blobs().size();
        ChunkInfoTable table = image.chunkTable();
        int[] perBlob = new int[blobs];
        for (int i = 0; i < table.size(); i++) {
            if (!table.isHole(i)) {
                perBlob[table.blobIndex(i)]++; // blob_index was validated by RafsImage
            }
        }
        long[][] keys = new long[blobs][];
        for (int b = 0; b < blobs; b++) {
            keys[b] = new long[perBlob[b]];
            perBlob[b] = 0;
        }
        for (int i = 0; i < table.size(); i++) {
            if (!table.isHole(i)) {
                int b = table.blobIndex(i);
                keys[b][perBlob[b]++] = sortKey(table.uncompressedOffset(i), i);
            }
        }
        ChunkTable[] tables = new ChunkTable[blobs];
        for (int b = 0; b < blobs; b++) {
            tables[b] = of(image.path(), b, image.blobs().get(b).blobId(), table, keys[b]);
        }
        return tables;
    }

    /**
     * A chunk-info entry's sort key: its uncompressed offset, then its index. The offsets are 4
     * KiB-aligned and below 2^32 blocks (RafsImage checked both), so the block number and the index
     * (below 2^31) fit one non-negative long: one primitive sort per blob, where a comparator over
     * records cost a remote image's start-up tens of milliseconds before the JIT had compiled it.
     */
    private static long sortKey(long uncompressedOffset, int index) {
        return (uncompressedOffset >>> RafsImage.BLOCK_BITS) << INDEX_BITS | index;
    }

    /** Bits of a sort key that hold the entry's index. */
    private static final int INDEX_BITS = 31;
    private static final long INDEX_MASK = (1L << INDEX_BITS) - 1;

    /** Sorts one blob's chunk references by uncompressed offset, drops repeats, rejects overlaps. */
    private static ChunkTable of(Path file, int blobIndex, String blobId, ChunkInfoTable t, long[] keys) throws ImageFormatException {
        Arrays.sort(keys);
        int[] unique = new int[keys.length];
        int n = 0;
        for (long key : keys) {
            int c = (int) (key & INDEX_MASK);
            if (n > 0) {
                int prev = unique[n - 1];
                if (t.uncompressedOffset(prev) == t.uncompressedOffset(c) && sameChunk(t, prev, c)) {
                    continue; // the same chunk, listed again for another file
                }
                long prevEnd = t.uncompressedOffset(prev) + alignUp(t.uncompressedSize(prev));
                if (t.uncompressedOffset(c) < prevEnd) {
                    throw new ImageFormatException(file, "chunk_table(blob " + blobId + ").uncompressed_offset",
                            "0x" + Long.toHexString(t.uncompressedOffset(c)),
                            "overlaps the chunk at 0x" + Long.toHexString(t.uncompressedOffset(prev)));
                }
            }
            unique[n++] = c;
        }
        return new ChunkTable(blobIndex, blobId, t, unique, n, keys.length);
    }

    private static boolean sameChunk(ChunkInfoTable t, int a, int b) {
        return t.compressedOffset(a) == t.compressedOffset(b) && t.compressedSize(a) == t.compressedSize(b)
                && t.uncompressedSize(a) == t.uncompressedSize(b) && t.flags(a) == t.flags(b)
                && t.sameDigest(a, b);
    }

    static long alignUp(long n) {
        return (n + RafsImage.BLOCK_SIZE - 1) & -RafsImage.BLOCK_SIZE;
    }

    /** Index of the chunk whose 4 KiB-padded span holds {@code offset}, or -1 for a hole. */
    public int find(long offset) {
        int lo = 0;
        int hi = uncompressedOffset.length - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (uncompressedOffset[mid] <= offset) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (found >= 0 && offset < paddedEnd(found)) {
            return found;
        }
        return -1;
    }

    /** Start of the first chunk after {@code offset}, or {@code Long.MAX_VALUE} if none. */
    public long nextChunkStart(long offset) {
        int lo = 0;
        int hi = uncompressedOffset.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (uncompressedOffset[mid] <= offset) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo < uncompressedOffset.length ? uncompressedOffset[lo] : Long.MAX_VALUE;
    }

    public int size() {
        return uncompressedOffset.length;
    }

    /** How many chunk-info entries refer to this blob's chunks; {@link #size} counts unique chunks. */
    public int references() {
        return references;
    }

    public int blobIndex() {
        return blobIndex;
    }

    public String blobId() {
        return blobId;
    }

    public long uncompressedOffset(int i) {
        return uncompressedOffset[i];
    }

    public int uncompressedSize(int i) {
        return uncompressedSize[i];
    }

    public long compressedOffset(int i) {
        return compressedOffset[i];
    }

    public int compressedSize(int i) {
        return compressedSize[i];
    }

    /** End of chunk {@code i}'s span in the blob's uncompressed space: its data padded to 4 KiB. */
    public long paddedEnd(int i) {
        return uncompressedOffset[i] + alignUp(uncompressedSize[i]);
    }

    public boolean isCompressed(int i) {
        return compressed[i];
    }

    /** Offset of chunk {@code i}'s 32-byte digest in {@link #digests()}. */
    public int digestOffset(int i) {
        return i * ChunkInfo.DIGEST_SIZE;
    }

    byte[] digests() {
        return digests;
    }

    public int maxCompressedSize() {
        int m = 0;
        for (int s : compressedSize) {
            m = Math.max(m, s);
        }
        return m;
    }

    /** The compressed range of every chunk, sorted by offset, each once: what a remote blob fetches. */
    public ChunkRanges compressedRanges() {
        return ChunkRanges.of(compressedOffset, compressedSize);
    }

    /** End of the last chunk's compressed bytes: the blob file must be at least this long. */
    public long compressedEnd() {
        long m = 0;
        for (int i = 0; i < compressedOffset.length; i++) {
            m = Math.max(m, compressedOffset[i] + compressedSize[i]);
        }
        return m;
    }
}
