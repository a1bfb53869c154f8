package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One 16-byte entry of a data blob's chunk-info array, blob.meta (Nydus {@code BlobChunkInfoV1Ondisk}).
 * Two packed u64s: {@code uncomp_info} holds the 4 KiB-aligned uncompressed offset in bits 12-43, the
 * low 20 bits of (size - 1) in bits 44-63 and its high 4 bits in bits 8-11; {@code comp_info} holds the
 * compressed offset in bits 0-39, the high 4 bits of (size - 1) in bits 40-43 and the low 20 in 44-63.
 * A chunk whose two sizes are equal is stored uncompressed.
 */
public record BlobChunkInfoV1(long compressedOffset, int compressedSize, long uncompressedOffset, int uncompressedSize) {
    public static final int SIZE = 16;
    static final int UNCOMP_INFO_OFF = 0;
    static final int COMP_INFO_OFF = 8;
    static final long COMP_OFFSET_MASK = 0xff_ffff_ffffL;
    static final long UNCOMP_OFFSET_MASK = 0xfff_ffff_f000L;
    static final long SIZE_LOW_MASK = 0x0f_ffffL;
    static final long SIZE_HIGH_MASK = 0xf0_0000L;
    static final int SIZE_LOW_SHIFT = 44;
    static final int SIZE_HIGH_COMP_SHIFT = 20;
    static final int SIZE_HIGH_UNCOMP_SHIFT = 12;
    /** Sizes are stored minus one in 24 bits: at most 16 MiB. */
    public static final int MAX_SIZE = 1 << 24;

    public BlobChunkInfoV1 {
        if (compressedSize < 1 || compressedSize > MAX_SIZE || uncompressedSize < 1 || uncompressedSize > MAX_SIZE) {
            throw new IllegalArgumentException("chunk sizes must be 1.." + MAX_SIZE + ": " + compressedSize + "/" + uncompressedSize);
        }
        if ((compressedOffset & ~COMP_OFFSET_MASK) != 0 || (uncompressedOffset & ~UNCOMP_OFFSET_MASK) != 0) {
            throw new IllegalArgumentException("chunk offsets do not fit blob.meta: " + compressedOffset + "/" + uncompressedOffset);
        }
    }

    public void encode(ByteBuffer buf, int at) {
        long u = uncompressedSize - 1L;
        long c = compressedSize - 1L;
        long uncomp = (uncompressedOffset & UNCOMP_OFFSET_MASK) | ((u & SIZE_LOW_MASK) << SIZE_LOW_SHIFT)
                | ((u & SIZE_HIGH_MASK) >>> SIZE_HIGH_UNCOMP_SHIFT);
        long comp = (compressedOffset & COMP_OFFSET_MASK) | ((c & SIZE_LOW_MASK) << SIZE_LOW_SHIFT)
                | ((c & SIZE_HIGH_MASK) << SIZE_HIGH_COMP_SHIFT);
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(at + UNCOMP_INFO_OFF, uncomp);
        b.putLong(at + COMP_INFO_OFF, comp);
    }

    public static BlobChunkInfoV1 decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long uncomp = b.getLong(at + UNCOMP_INFO_OFF);
        long comp = b.getLong(at + COMP_INFO_OFF);
        long usize = ((uncomp >>> SIZE_LOW_SHIFT) | ((uncomp & 0xf00L) << SIZE_HIGH_UNCOMP_SHIFT)) + 1;
        long csize = ((comp >>> SIZE_LOW_SHIFT) | ((comp & (SIZE_HIGH_MASK << SIZE_HIGH_COMP_SHIFT)) >>> SIZE_HIGH_COMP_SHIFT)) + 1;
        return new BlobChunkInfoV1(comp & COMP_OFFSET_MASK, (int) csize, uncomp & UNCOMP_OFFSET_MASK, (int) usize);
    }
}
