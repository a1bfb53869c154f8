package io.strata.core.chunk;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.ImageFormatException;
import io.strata.core.image.RafsImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

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

    private ChunkTable(int blobIndex, String blobId, List<ChunkInfo> sorted, int references) {
        int n = sorted.size();
        this.references = references;
        this.blobIndex = blobIndex;
        this.blobId = blobId;
        this.uncompressedOffset = new long[n];
        this.uncompressedSize = new int[n];
        this.compressedOffset = new long[n];
        this.compressedSize = new int[n];
        this.compressed = new boolean[n];
        this.digests = new byte[n * ChunkInfo.DIGEST_SIZE];
        for (int i = 0; i < n; i++) {
            ChunkInfo c = sorted.get(i);
            uncompressedOffset[i] = c.uncompressedOffset();
            uncompressedSize[i] = (int) c.uncompressedSize();
            compressedOffset[i] = c.compressedOffset();
            compressedSize[i] = (int) c.compressedSize();
            compressed[i] = c.isCompressed();
            System.arraycopy(c.digest(), 0, digests, i * ChunkInfo.DIGEST_SIZE, ChunkInfo.DIGEST_SIZE);
        }
    }

    /**
     * Builds every blob's table in one pass over the image's chunk-info table (it can hold millions
     * of entries; walking it once per blob would cost blobs x chunks).
     */
    public static ChunkTable[] buildAll(RafsImage image) throws ImageFormatException {
        int blobs = image.blobs().size();
        List<List<ChunkInfo>> byBlob = new ArrayList<>(blobs);
        for (int b = 0; b < blobs; b++) {
            byBlob.add(new ArrayList<>());
        }
        for (ChunkInfo c : image.chunks()) {
            if (!c.isHole()) {
                byBlob.get(c.blobIndex()).add(c); // blob_index was validated by RafsImage
            }
        }
        ChunkTable[] tables = new ChunkTable[blobs];
        for (int b = 0; b < blobs; b++) {
            tables[b] = of(image.path(), b, image.blobs().get(b).blobId(), byBlob.get(b));
        }
        return tables;
    }

    /** Sorts one blob's chunk references by uncompressed offset, drops repeats, rejects overlaps. */
    private static ChunkTable of(Path file, int blobIndex, String blobId, List<ChunkInfo> mine) throws ImageFormatException {
        int references = mine.size();
        mine.sort(Comparator.comparingLong(ChunkInfo::uncompressedOffset));
        List<ChunkInfo> unique = new ArrayList<>(mine.size());
        for (ChunkInfo c : mine) {
            if (!unique.isEmpty()) {
                ChunkInfo prev = unique.get(unique.size() - 1);
                if (prev.uncompressedOffset() == c.uncompressedOffset() && sameChunk(prev, c)) {
                    continue; // the same chunk, listed again for another file
                }
                long prevEnd = prev.uncompressedOffset() + alignUp(prev.uncompressedSize());
                if (c.uncompressedOffset() < prevEnd) {
                    throw new ImageFormatException(file, "chunk_table(blob " + blobId + ").uncompressed_offset",
                            "0x" + Long.toHexString(c.uncompressedOffset()),
                            "overlaps the chunk at 0x" + Long.toHexString(prev.uncompressedOffset()));
                }
            }
            unique.add(c);
        }
        return new ChunkTable(blobIndex, blobId, unique, references);
    }

    private static boolean sameChunk(ChunkInfo a, ChunkInfo b) {
        return a.compressedOffset() == b.compressedOffset() && a.compressedSize() == b.compressedSize()
                && a.uncompressedSize() == b.uncompressedSize() && a.flags() == b.flags()
                && Arrays.equals(a.digest(), b.digest());
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
