package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The EROFS superblock: 128 bytes at byte 1024 of block 0 (erofs-utils {@code struct
 * erofs_super_block}, kernel {@code fs/erofs/erofs_fs.h}). Nydus RAFS v6 bootstraps carry the same
 * structure, so the kernel mounts them.
 */
public record ErofsSuperblock(
        int checksum,
        int featureCompat,
        int blkszbits,
        int extslots,
        int rootNid,
        long inos,
        long buildTime,
        int buildTimeNsec,
        long blocks,
        long metaBlkaddr,
        long xattrBlkaddr,
        byte[] uuid,
        byte[] volumeName,
        int featureIncompat,
        int unionField,
        int extraDevices,
        int devtSlotoff,
        int dirblkbits) {

    /** Position of the superblock in block 0. */
    public static final int OFFSET = 1024;
    public static final int SIZE = 128;
    public static final int MAGIC = 0xE0F5E1E2;

    // Field offsets inside the 128-byte structure.
    static final int MAGIC_OFF = 0;
    static final int CHECKSUM_OFF = 4;
    static final int FEATURE_COMPAT_OFF = 8;
    static final int BLKSZBITS_OFF = 12;
    static final int EXTSLOTS_OFF = 13;
    static final int ROOT_NID_OFF = 14;
    static final int INOS_OFF = 16;
    static final int BUILD_TIME_OFF = 24;
    static final int BUILD_TIME_NSEC_OFF = 32;
    static final int BLOCKS_OFF = 36;
    static final int META_BLKADDR_OFF = 40;
    static final int XATTR_BLKADDR_OFF = 44;
    static final int UUID_OFF = 48;
    static final int VOLUME_NAME_OFF = 64;
    static final int FEATURE_INCOMPAT_OFF = 80;
    static final int UNION_OFF = 84;
    static final int EXTRA_DEVICES_OFF = 86;
    static final int DEVT_SLOTOFF_OFF = 88;
    static final int DIRBLKBITS_OFF = 90;

    /** Superblock checksum present (crc32c over block 0 from byte 1024). */
    public static final int COMPAT_SB_CHKSUM = 0x1;
    /** Set by Nydus on RAFS v6 bootstraps. */
    public static final int COMPAT_RAFS_V6 = 0x40000000;
    public static final int INCOMPAT_CHUNKED_FILE = 0x4;
    public static final int INCOMPAT_DEVICE_TABLE = 0x8;

    /** Device table slots are 128 bytes; {@code devt_slotoff} counts slots from byte 0. */
    public static final int DEVICE_SLOT_UNIT = 128;

    /** Reads the superblock out of block 0 (a buffer holding at least the first 4096 bytes). */
    public static ErofsSuperblock decode(ByteBuffer block0) {
        ByteBuffer b = block0.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int o = OFFSET;
        byte[] uuid = new byte[16];
        byte[] volume = new byte[16];
        b.get(o + UUID_OFF, uuid);
        b.get(o + VOLUME_NAME_OFF, volume);
        return new ErofsSuperblock(
                b.getInt(o + CHECKSUM_OFF),
                b.getInt(o + FEATURE_COMPAT_OFF),
                Byte.toUnsignedInt(b.get(o + BLKSZBITS_OFF)),
                Byte.toUnsignedInt(b.get(o + EXTSLOTS_OFF)),
                Short.toUnsignedInt(b.getShort(o + ROOT_NID_OFF)),
                b.getLong(o + INOS_OFF),
                b.getLong(o + BUILD_TIME_OFF),
                b.getInt(o + BUILD_TIME_NSEC_OFF),
                Integer.toUnsignedLong(b.getInt(o + BLOCKS_OFF)),
                Integer.toUnsignedLong(b.getInt(o + META_BLKADDR_OFF)),
                Integer.toUnsignedLong(b.getInt(o + XATTR_BLKADDR_OFF)),
                uuid,
                volume,
                b.getInt(o + FEATURE_INCOMPAT_OFF),
                Short.toUnsignedInt(b.getShort(o + UNION_OFF)),
                Short.toUnsignedInt(b.getShort(o + EXTRA_DEVICES_OFF)),
                Short.toUnsignedInt(b.getShort(o + DEVT_SLOTOFF_OFF)),
                Byte.toUnsignedInt(b.get(o + DIRBLKBITS_OFF)));
    }

    /** The magic number as found, before any other field is trusted. */
    public static int magicOf(ByteBuffer block0) {
        return block0.duplicate().order(ByteOrder.LITTLE_ENDIAN).getInt(OFFSET + MAGIC_OFF);
    }

    /**
     * Writes this superblock into block 0 and, when {@link #COMPAT_SB_CHKSUM} is set, the checksum
     * the kernel verifies. Other bytes of block 0 are left as they are.
     */
    public void encode(ByteBuffer block0) {
        ByteBuffer b = block0.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int o = OFFSET;
        b.putInt(o + MAGIC_OFF, MAGIC);
        b.putInt(o + CHECKSUM_OFF, 0);
        b.putInt(o + FEATURE_COMPAT_OFF, featureCompat);
        b.put(o + BLKSZBITS_OFF, (byte) blkszbits);
        b.put(o + EXTSLOTS_OFF, (byte) extslots);
        b.putShort(o + ROOT_NID_OFF, (short) rootNid);
        b.putLong(o + INOS_OFF, inos);
        b.putLong(o + BUILD_TIME_OFF, buildTime);
        b.putInt(o + BUILD_TIME_NSEC_OFF, buildTimeNsec);
        b.putInt(o + BLOCKS_OFF, (int) blocks);
        b.putInt(o + META_BLKADDR_OFF, (int) metaBlkaddr);
        b.putInt(o + XATTR_BLKADDR_OFF, (int) xattrBlkaddr);
        b.put(o + UUID_OFF, uuid);
        b.put(o + VOLUME_NAME_OFF, volumeName);
        b.putInt(o + FEATURE_INCOMPAT_OFF, featureIncompat);
        b.putShort(o + UNION_OFF, (short) unionField);
        b.putShort(o + EXTRA_DEVICES_OFF, (short) extraDevices);
        b.putShort(o + DEVT_SLOTOFF_OFF, (short) devtSlotoff);
        b.put(o + DIRBLKBITS_OFF, (byte) dirblkbits);
        if ((featureCompat & COMPAT_SB_CHKSUM) != 0) {
            b.putInt(o + CHECKSUM_OFF, computeChecksum(block0, 1 << blkszbits));
        }
    }

    /**
     * The kernel computes {@code crc32c(~0, sb, blksz - 1024)} with the checksum field zeroed and no
     * final inversion ({@code erofs_superblock_csum_verify}); Java's CRC32C inverts at the end.
     */
    public static int computeChecksum(ByteBuffer block0, int blockSize) {
        ByteBuffer copy = ByteBuffer.allocate(blockSize - OFFSET).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(0, block0.duplicate(), OFFSET, blockSize - OFFSET);
        copy.putInt(CHECKSUM_OFF, 0);
        CRC32C crc = new CRC32C();
        crc.update(copy);
        return ~(int) crc.getValue();
    }

    public int blockSize() {
        return 1 << blkszbits;
    }

    public boolean hasDeviceTable() {
        return (featureIncompat & INCOMPAT_DEVICE_TABLE) != 0;
    }

    public long deviceTableOffset() {
        return (long) devtSlotoff * DEVICE_SLOT_UNIT;
    }

    public ErofsSuperblock withLegacyLayout(long totalBlocks) {
        return new ErofsSuperblock(checksum, featureCompat, blkszbits, extslots, rootNid, inos, buildTime,
                buildTimeNsec, totalBlocks, metaBlkaddr, xattrBlkaddr, uuid, volumeName,
                featureIncompat & ~INCOMPAT_DEVICE_TABLE, unionField, 0, 0, dirblkbits);
    }
}
