package io.strata.core.image;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Rewrites a RAFS v6 bootstrap for kernels without flatdev (before 6.4; from 5.15, which first read
 * chunk-based files): every chunk index of every file is turned into an absolute block address on
 * device 0 ({@code blkaddr + mapped_blkaddr} of its device), and the device table is dropped. The
 * data blocks of the flat device do not change, so the same blob bytes serve both layouts.
 *
 * <p>The kernel masks an index's {@code device_id} with {@code roundup_pow_of_two(extra_devices+1)-1}
 * ({@code erofs_init_devices}); with no extra devices the mask is 0, so the rewritten index is read
 * as an address on the one device.
 */
public final class LegacyBootstrap {
    private static final long NULL_ADDR = ErofsChunkIndex.NULL_ADDR;
    static final int INDEX_DEVICE_ID_OFF = ErofsChunkIndex.DEVICE_ID_OFF;
    static final int INDEX_BLKADDR_OFF = ErofsChunkIndex.BLKADDR_OFF;

    private LegacyBootstrap() {
    }

    /** Returns the rewritten bootstrap (same size as the original). */
    public static ByteBuffer rewrite(RafsImage image) throws IOException {
        ByteBuffer original = RafsImage.read(image.path());
        if (original.remaining() != image.fileSize()) {
            // Read again from the path: it must still be the file that was validated.
            throw new ImageFormatException(image.path(), "file size", original.remaining(),
                    "changed since the bootstrap was opened (" + image.fileSize() + " bytes)");
        }
        ByteBuffer out = ByteBuffer.allocate(original.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        out.put(0, original, 0, original.remaining());
        ErofsSuperblock sb = image.superblock();
        List<DeviceSlot> devices = image.devices();
        int mask = devices.isEmpty() ? 0 : roundupPowerOfTwo(devices.size() + 1) - 1;

        Set<Long> seen = new HashSet<>();
        DirentBudget budget = new DirentBudget(image, out);
        ArrayDeque<Long> work = new ArrayDeque<>();
        work.add((long) sb.rootNid());
        while (!work.isEmpty()) {
            long nid = work.poll();
            if (!seen.add(nid)) {
                continue; // a hard link, or a directory seen through another entry
            }
            ErofsInode inode = decodeChecked(image, out, sb, nid);
            if (inode.dataLayout() == ErofsInode.LAYOUT_CHUNK_BASED) {
                rewriteChunkIndexes(image, out, inode, devices, mask);
            }
            if (inode.isDirectory()) {
                for (ErofsDirent d : directoryEntries(image, out, inode, budget)) {
                    if (!d.name().equals(".") && !d.name().equals("..")) {
                        work.add(d.nid());
                    }
                }
            }
        }

        // Drop the device table: zero its slots and clear the superblock's device fields.
        if (!devices.isEmpty()) {
            int at = (int) sb.deviceTableOffset();
            for (int i = 0; i < devices.size() * DeviceSlot.SIZE; i++) {
                out.put(at + i, (byte) 0);
            }
        }
        sb.withLegacyLayout(image.flatDeviceBlocks()).encode(out);
        return out.position(0).limit(original.remaining());
    }

    static int roundupPowerOfTwo(int n) {
        return n <= 1 ? 1 : Integer.highestOneBit(n - 1) << 1;
    }

    static ErofsInode decodeChecked(RafsImage image, ByteBuffer buf, ErofsSuperblock sb, long nid)
            throws ImageFormatException {
        long metaStart = sb.metaBlkaddr() * RafsImage.BLOCK_SIZE; // inside the file (RafsImage)
        long slots = (buf.capacity() - metaStart) / ErofsInode.SLOT_SIZE;
        // nid is a u64 from a directory entry: bound it before multiplying.
        if (nid < 0 || nid >= slots) {
            throw new ImageFormatException(image.path(), "inode nid", Long.toUnsignedString(nid), "lies outside the bootstrap");
        }
        ErofsInode inode = ErofsInode.decode(buf, sb.metaBlkaddr(), nid);
        if (inode.offset() + inode.inodeSize() > buf.capacity()) {
            throw new ImageFormatException(image.path(), "inode " + nid + " i_format", inode.format(),
                    "an extended inode that runs past the end of the bootstrap");
        }
        return inode;
    }

    private static void rewriteChunkIndexes(RafsImage image, ByteBuffer buf, ErofsInode inode,
                                            List<DeviceSlot> devices, int mask) throws ImageFormatException {
        if ((inode.chunkFormat() & ErofsInode.CHUNK_FORMAT_INDEXES) == 0) {
            return; // 4-byte block map: addresses are already on device 0
        }
        long at = inode.chunkIndexOffset();
        long count = inode.chunkCount();
        if (at + count * ErofsInode.CHUNK_INDEX_SIZE > buf.capacity()) {
            throw new ImageFormatException(image.path(), "inode " + inode.nid() + " chunk indexes", count,
                    "run past the end of the bootstrap");
        }
        for (long i = 0; i < count; i++) {
            int idx = (int) (at + i * ErofsInode.CHUNK_INDEX_SIZE);
            int deviceId = Short.toUnsignedInt(buf.getShort(idx + INDEX_DEVICE_ID_OFF));
            long blkaddr = Integer.toUnsignedLong(buf.getInt(idx + INDEX_BLKADDR_OFF));
            int device = deviceId & mask;
            if (blkaddr == NULL_ADDR || device == 0) {
                continue;
            }
            if (device > devices.size()) {
                throw new ImageFormatException(image.path(), "inode " + inode.nid() + " chunk " + i + " device_id", deviceId,
                        "names device " + device + " but the image has " + devices.size());
            }
            long absolute = blkaddr + devices.get(device - 1).mappedBlkaddr();
            if (absolute >= NULL_ADDR) {
                throw new ImageFormatException(image.path(), "inode " + inode.nid() + " chunk " + i + " blkaddr", blkaddr,
                        "absolute address overflows 32 bits");
            }
            // Keep the high byte (Nydus stores chunk-index bits there); device 0 in the low byte.
            buf.putShort(idx + INDEX_DEVICE_ID_OFF, (short) (deviceId & ~mask));
            buf.putInt(idx + INDEX_BLKADDR_OFF, (int) absolute);
        }
    }

    /**
     * Bounds one walk of the directory tree: a well-formed bootstrap lists each directory entry once,
     * so a walk reads at most as many as the bootstrap has room for (12 bytes each). A hostile one
     * whose directories share their entry blocks (or loop) made walks quadratic: 8,000 directories in
     * under 1 MiB took 17-25 s, a few MiB would take hours. Past the budget the image is refused.
     */
    static final class DirentBudget {
        private final RafsImage image;
        private long left;

        DirentBudget(RafsImage image, ByteBuffer buf) {
            this.image = image;
            this.left = buf.capacity() / ErofsDirent.SIZE + 64;
        }

        void take(int entries) throws ImageFormatException {
            left -= entries;
            if (left < 0) {
                throw new ImageFormatException(image.path(), "directory entries", "more than the bootstrap holds",
                        "directories that share their entries or form a loop");
            }
        }
    }

    /** The entries of directory {@code dir}, counted against {@code budget}. */
    static List<ErofsDirent> directoryEntries(RafsImage image, ByteBuffer buf, ErofsInode dir, DirentBudget budget)
            throws ImageFormatException {
        List<ErofsDirent> entries = directoryEntries(image, buf, dir);
        budget.take(entries.size());
        return entries;
    }

    static List<ErofsDirent> directoryEntries(RafsImage image, ByteBuffer buf, ErofsInode dir)
            throws ImageFormatException {
        List<ErofsDirent> all = new java.util.ArrayList<>();
        long size = dir.size();
        int layout = dir.dataLayout();
        if (layout != ErofsInode.LAYOUT_FLAT_PLAIN && layout != ErofsInode.LAYOUT_FLAT_INLINE) {
            throw new ImageFormatException(image.path(), "inode " + dir.nid() + " data layout", layout,
                    "directories must be FLAT_PLAIN or FLAT_INLINE");
        }
        long fullBlocks = layout == ErofsInode.LAYOUT_FLAT_INLINE ? size / RafsImage.BLOCK_SIZE
                : (size + RafsImage.BLOCK_SIZE - 1) / RafsImage.BLOCK_SIZE;
        try {
            for (long blk = 0; blk < fullBlocks; blk++) {
                long at = (dir.rawBlkaddr() + blk) * RafsImage.BLOCK_SIZE;
                int len = (int) Math.min(RafsImage.BLOCK_SIZE, size - blk * RafsImage.BLOCK_SIZE);
                if (at + len > buf.capacity()) {
                    throw new ImageFormatException(image.path(), "inode " + dir.nid() + " raw_blkaddr", dir.rawBlkaddr(),
                            "directory block lies outside the bootstrap");
                }
                all.addAll(ErofsDirent.decodeBlock(buf, (int) at, len));
            }
            long tail = size - fullBlocks * RafsImage.BLOCK_SIZE;
            if (layout == ErofsInode.LAYOUT_FLAT_INLINE && tail > 0) {
                // The inline tail follows the inode; a mutated size or xattr count can put it past the end.
                if (dir.inlineDataOffset() + tail > buf.capacity()) {
                    throw new ImageFormatException(image.path(), "inode " + dir.nid() + " size", dir.size(),
                            "its inline tail runs past the end of the bootstrap");
                }
                all.addAll(ErofsDirent.decodeBlock(buf, (int) dir.inlineDataOffset(), (int) tail));
            }
        } catch (IllegalArgumentException e) {
            throw new ImageFormatException(image.path(), "inode " + dir.nid() + " directory", dir.size(), e.getMessage());
        }
        return all;
    }
}
