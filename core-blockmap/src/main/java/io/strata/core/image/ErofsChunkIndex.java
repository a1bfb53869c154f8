package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One 8-byte chunk index of a CHUNK_BASED inode ({@code struct erofs_inode_chunk_index}). The
 * kernel reads {@code device_id} masked with {@code roundup_pow_of_two(extra_devices + 1) - 1} and,
 * without the 48BIT feature, only the low 32 bits of the start block; {@code blkaddr} 0xFFFFFFFF
 * marks a hole. Nydus ({@code RafsV6InodeChunkAddr}) stores the chunk's index in its blob's chunk
 * array in the bits the kernel ignores: bits 0-15 in the first u16 and bits 16-23 in the high byte of
 * {@code device_id}, whose low byte is blob index + 1.
 */
public record ErofsChunkIndex(int startblkHi, int deviceId, long blkaddr) {
    public static final int SIZE = 8;
    static final int STARTBLK_HI_OFF = 0;
    static final int DEVICE_ID_OFF = 2;
    static final int BLKADDR_OFF = 4;
    /** {@code EROFS_NULL_ADDR} in the 32-bit start block: a hole. */
    public static final long NULL_ADDR = 0xFFFF_FFFFL;
    /** Nydus's limit on a blob's chunk count: the index has 24 bits. */
    public static final int MAX_CHUNK_INDEX = 0xFF_FFFF;

    /** The index Nydus writes for chunk {@code chunkIndex} of blob {@code blobIndex} at block {@code blkaddr}. */
    public static ErofsChunkIndex ofChunk(int blobIndex, int chunkIndex, long blkaddr) {
        if (blobIndex < 0 || blobIndex >= 0xFF) {
            throw new IllegalArgumentException("blob index " + blobIndex + " does not fit the device id byte");
        }
        if (chunkIndex < 0 || chunkIndex > MAX_CHUNK_INDEX) {
            throw new IllegalArgumentException("chunk index " + chunkIndex + " does not fit 24 bits");
        }
        if (blkaddr < 0 || blkaddr >= NULL_ADDR) {
            throw new IllegalArgumentException("block address " + blkaddr + " does not fit 32 bits");
        }
        int deviceId = ((chunkIndex >>> 8) & 0xFF00) | (blobIndex + 1);
        return new ErofsChunkIndex(chunkIndex & 0xFFFF, deviceId, blkaddr);
    }

    /** A chunk that reads as zeros and has no data anywhere. */
    public static ErofsChunkIndex hole() {
        return new ErofsChunkIndex(0, 0, NULL_ADDR);
    }

    public boolean isHole() {
        return blkaddr == NULL_ADDR;
    }

    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putShort(at + STARTBLK_HI_OFF, (short) startblkHi);
        b.putShort(at + DEVICE_ID_OFF, (short) deviceId);
        b.putInt(at + BLKADDR_OFF, (int) blkaddr);
    }

    public static ErofsChunkIndex decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return new ErofsChunkIndex(Short.toUnsignedInt(b.getShort(at + STARTBLK_HI_OFF)),
                Short.toUnsignedInt(b.getShort(at + DEVICE_ID_OFF)),
                Integer.toUnsignedLong(b.getInt(at + BLKADDR_OFF)));
    }
}
