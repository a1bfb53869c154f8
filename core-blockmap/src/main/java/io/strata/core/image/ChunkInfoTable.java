package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.AbstractList;
import java.util.List;
import java.util.RandomAccess;

/**
 * The bootstrap's chunk-info table (RAFS {@code RafsV5ChunkInfo} entries, {@link ChunkInfo#SIZE}
 * bytes each), kept as its little-endian 64-bit words, field offsets as {@link ChunkInfo} names them.
 *
 * <p>Why words rather than {@link ChunkInfo} records: a remote image's table (a million entries in a
 * large image, 57,676 in the benchmark's) is read, checked and sorted before its prefetch can send a
 * request; one bulk copy and plain array reads cost a cold JVM a fraction of decoding a record and a
 * digest array per entry (~100 ms for 57k entries, most of it before the JIT had compiled the loop).
 * {@link #get} still gives the record, for callers that want one.
 */
public final class ChunkInfoTable {
    private static final int WORDS = ChunkInfo.SIZE / Long.BYTES;
    private static final int DIGEST_WORDS = ChunkInfo.DIGEST_SIZE / Long.BYTES;

    private final long[] words;
    private final int count;
    private final List<ChunkInfo> list = new Records();

    private ChunkInfoTable(long[] words, int count) {
        this.words = words;
        this.count = count;
    }

    /** The {@code count} entries at byte {@code offset} of {@code data} (its position and order are left alone). */
    static ChunkInfoTable read(ByteBuffer data, int offset, int count) {
        long[] w = new long[count * WORDS];
        if (count == 0) {
            return new ChunkInfoTable(w, 0); // an empty table's offset is not checked (RafsImage.checkTable): never used
        }
        ByteBuffer view = data.duplicate();
        view.position(offset);
        view.order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(w);
        return new ChunkInfoTable(w, count);
    }

    public int size() {
        return count;
    }

    public int blobIndex(int i) {
        return u32(i, ChunkInfo.BLOB_INDEX_OFF);
    }

    public int flags(int i) {
        return u32(i, ChunkInfo.FLAGS_OFF);
    }

    public long compressedSize(int i) {
        return Integer.toUnsignedLong(u32(i, ChunkInfo.COMPRESSED_SIZE_OFF));
    }

    public long uncompressedSize(int i) {
        return Integer.toUnsignedLong(u32(i, ChunkInfo.UNCOMPRESSED_SIZE_OFF));
    }

    public long compressedOffset(int i) {
        return u64(i, ChunkInfo.COMPRESSED_OFFSET_OFF);
    }

    public long uncompressedOffset(int i) {
        return u64(i, ChunkInfo.UNCOMPRESSED_OFFSET_OFF);
    }

    public boolean isHole(int i) {
        return (flags(i) & ChunkInfo.FLAG_HOLE) != 0;
    }

    public boolean isCompressed(int i) {
        return (flags(i) & ChunkInfo.FLAG_COMPRESSED) != 0;
    }

    /** Whether entries {@code i} and {@code j} carry the same 32-byte digest. */
    public boolean sameDigest(int i, int j) {
        int a = i * WORDS + ChunkInfo.DIGEST_OFF / Long.BYTES;
        int b = j * WORDS + ChunkInfo.DIGEST_OFF / Long.BYTES;
        for (int k = 0; k < DIGEST_WORDS; k++) {
            if (words[a + k] != words[b + k]) {
                return false;
            }
        }
        return true;
    }

    /** Writes entry {@code i}'s 32-byte digest, as stored, into {@code dst} at {@code at}. */
    public void digestInto(int i, byte[] dst, int at) {
        int a = i * WORDS + ChunkInfo.DIGEST_OFF / Long.BYTES;
        for (int k = 0; k < DIGEST_WORDS; k++) {
            long w = words[a + k];
            for (int b = 0; b < Long.BYTES; b++) {
                dst[at + k * Long.BYTES + b] = (byte) (w >>> (8 * b));
            }
        }
    }

    /** Entry {@code i} as a record. */
    public ChunkInfo get(int i) {
        ByteBuffer b = ByteBuffer.allocate(ChunkInfo.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(words, i * WORDS, WORDS);
        return ChunkInfo.decode(b, 0);
    }

    /** The entries as records, decoded as they are read (an unmodifiable view). */
    public List<ChunkInfo> asList() {
        return list;
    }

    private int u32(int i, int off) {
        return (int) (words[i * WORDS + (off >>> 3)] >>> ((off & 7) << 3));
    }

    private long u64(int i, int off) {
        return words[i * WORDS + (off >>> 3)]; // every u64 field is 8-byte aligned in the entry
    }

    private final class Records extends AbstractList<ChunkInfo> implements RandomAccess {
        @Override
        public ChunkInfo get(int i) {
            if (i < 0 || i >= count) {
                throw new IndexOutOfBoundsException("chunk-info entry " + i + " of " + count);
            }
            return ChunkInfoTable.this.get(i);
        }

        @Override
        public int size() {
            return count;
        }
    }
}
