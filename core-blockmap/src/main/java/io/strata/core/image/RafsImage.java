package io.strata.core.image;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A parsed and validated RAFS v6 bootstrap: superblock, extension, device table, blob table and
 * chunk-info table. Everything a {@code FlatDevice} needs to serve every block, checked once here so
 * that the read path trusts it.
 */
public final class RafsImage {
    /** Strata serves 4 KiB-block images only: the kernel's flatdev mapping is in 4 KiB blocks. */
    public static final int BLOCK_SIZE = 4096;
    public static final int BLOCK_BITS = 12;
    public static final long MIN_CHUNK_SIZE = 4096;
    public static final long MAX_CHUNK_SIZE = 16L << 20;

    private final Path path;
    private final long fileSize;
    private final ErofsSuperblock superblock;
    private final RafsSuperblockExt ext;
    private final List<DeviceSlot> devices;
    private final List<BlobTableEntry> blobs;
    private final List<ChunkInfo> chunks;

    private RafsImage(Path path, long fileSize, ErofsSuperblock superblock, RafsSuperblockExt ext,
                      List<DeviceSlot> devices, List<BlobTableEntry> blobs, List<ChunkInfo> chunks) {
        this.path = path;
        this.fileSize = fileSize;
        this.superblock = superblock;
        this.ext = ext;
        this.devices = devices;
        this.blobs = blobs;
        this.chunks = chunks;
    }

    public static RafsImage open(Path bootstrap) throws IOException {
        return parse(bootstrap, readAll(bootstrap));
    }

    static ByteBuffer readAll(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE) {
                throw new ImageFormatException(file, "file size", size, "bootstraps over 2 GiB are not supported");
            }
            ByteBuffer buf = ByteBuffer.allocate((int) size);
            while (buf.hasRemaining()) {
                if (ch.read(buf, buf.position()) < 0) {
                    break;
                }
            }
            return buf.flip();
        }
    }

    /** Parses a bootstrap held in memory; {@code file} is only used in error messages. */
    public static RafsImage parse(Path file, ByteBuffer data) throws IOException {
        long size = data.remaining();
        if (size < BLOCK_SIZE) {
            throw new ImageFormatException(file, "file size", size, "truncated: shorter than one 4096-byte block");
        }
        int magic = ErofsSuperblock.magicOf(data);
        if (magic != ErofsSuperblock.MAGIC) {
            throw new ImageFormatException(file, "superblock.magic", ImageFormatException.hex(Integer.toUnsignedLong(magic)),
                    "not an EROFS image (expected 0xe0f5e1e2)");
        }
        ErofsSuperblock sb = ErofsSuperblock.decode(data);
        if (sb.blkszbits() != BLOCK_BITS) {
            throw new ImageFormatException(file, "superblock.blkszbits", sb.blkszbits(),
                    "unsupported block size " + (sb.blkszbits() < 31 ? (1L << sb.blkszbits()) : -1) + " (only 4096)");
        }
        if ((sb.featureCompat() & ErofsSuperblock.COMPAT_SB_CHKSUM) != 0) {
            int expected = ErofsSuperblock.computeChecksum(data, BLOCK_SIZE);
            if (expected != sb.checksum()) {
                throw new ImageFormatException(file, "superblock.checksum", ImageFormatException.hex(Integer.toUnsignedLong(sb.checksum())),
                        "does not match the block's crc32c " + ImageFormatException.hex(Integer.toUnsignedLong(expected)));
            }
        }
        if ((sb.featureCompat() & ErofsSuperblock.COMPAT_RAFS_V6) == 0) {
            throw new ImageFormatException(file, "superblock.feature_compat", ImageFormatException.hex(Integer.toUnsignedLong(sb.featureCompat())),
                    "no RAFS_V6 bit: a plain EROFS image, not a Nydus RAFS v6 bootstrap (serve it with --raw)");
        }
        if (size % BLOCK_SIZE != 0) {
            throw new ImageFormatException(file, "file size", size, "truncated: not a multiple of the 4096-byte block size");
        }
        if (sb.rootNid() == 0) {
            throw new ImageFormatException(file, "superblock.root_nid", 0, "root inode cannot be nid 0");
        }
        if (sb.metaBlkaddr() * BLOCK_SIZE >= size) {
            throw new ImageFormatException(file, "superblock.meta_blkaddr", sb.metaBlkaddr(), "points past the end of the file (" + size + " bytes)");
        }
        RafsSuperblockExt ext = RafsSuperblockExt.decode(data);
        if ((ext.flags() & Compression.GZIP.superFlag) != 0) {
            throw new ImageFormatException(file, "rafs_ext.flags", ImageFormatException.hex(ext.flags()),
                    "gzip/zran images (chunks inside gzip layers) are not supported; convert the image to lz4 or zstd chunks");
        }

        // Blob table.
        checkTable(file, "rafs_ext.blob_table", ext.blobTableOffset(), ext.blobTableSize(), BlobTableEntry.SIZE, size);
        int blobCount = (int) (ext.blobTableSize() / BlobTableEntry.SIZE);
        List<BlobTableEntry> blobs = new ArrayList<>(blobCount);
        for (int i = 0; i < blobCount; i++) {
            BlobTableEntry e = BlobTableEntry.decode(data, (int) ext.blobTableOffset() + i * BlobTableEntry.SIZE);
            validateBlob(file, i, e);
            blobs.add(e);
        }

        // Device table: one slot per blob, in blob-table order.
        int slots = sb.hasDeviceTable() ? sb.extraDevices() : 0;
        if (slots != blobCount) {
            throw new ImageFormatException(file, "superblock.extra_devices", slots,
                    "the blob table has " + blobCount + " blob(s); every blob needs one device slot");
        }
        List<DeviceSlot> devices = new ArrayList<>(slots);
        if (slots > 0) {
            checkTable(file, "superblock.devt_slotoff", sb.deviceTableOffset(), (long) slots * DeviceSlot.SIZE, DeviceSlot.SIZE, size);
            for (int i = 0; i < slots; i++) {
                DeviceSlot d = DeviceSlot.decode(data, (int) sb.deviceTableOffset() + i * DeviceSlot.SIZE);
                validateDevice(file, i, d, blobs.get(i), size);
                devices.add(d);
            }
            checkNoOverlap(file, devices);
        }

        // Chunk-info table.
        checkTable(file, "rafs_ext.chunk_table", ext.chunkTableOffset(), ext.chunkTableSize(), ChunkInfo.SIZE, size);
        int chunkCount = (int) (ext.chunkTableSize() / ChunkInfo.SIZE);
        List<ChunkInfo> chunks = new ArrayList<>(chunkCount);
        for (int i = 0; i < chunkCount; i++) {
            ChunkInfo c = ChunkInfo.decode(data, (int) ext.chunkTableOffset() + i * ChunkInfo.SIZE);
            validateChunk(file, i, c, blobs, devices);
            chunks.add(c);
        }
        return new RafsImage(file, size, sb, ext, List.copyOf(devices), List.copyOf(blobs), List.copyOf(chunks));
    }

    private static void checkTable(Path file, String field, long offset, long length, int entrySize, long fileSize)
            throws ImageFormatException {
        if (length % entrySize != 0) {
            throw new ImageFormatException(file, field + "_size", length, "not a multiple of the " + entrySize + "-byte entry size");
        }
        if (length == 0) {
            return;
        }
        if (offset < 0 || offset > fileSize || length > fileSize - offset) {
            throw new ImageFormatException(file, field + "_offset", ImageFormatException.hex(offset),
                    "table of " + length + " bytes lies outside the file (" + fileSize + " bytes)");
        }
    }

    private static void validateBlob(Path file, int i, BlobTableEntry e) throws ImageFormatException {
        String f = "blob_table[" + i + "]";
        if (e.blobIndex() != i) {
            throw new ImageFormatException(file, f + ".blob_index", e.blobIndex(), "must equal the entry's position " + i);
        }
        if (e.blobId().isEmpty() || e.blobId().contains("/")) {
            throw new ImageFormatException(file, f + ".blob_id", "'" + e.blobId() + "'", "not a usable blob id");
        }
        Compression c = e.compression();
        if (c == null) {
            throw new ImageFormatException(file, f + ".compression", e.compressionCode(), "unknown compression algorithm");
        }
        if (c == Compression.GZIP) {
            throw new ImageFormatException(file, f + ".compression", "gzip",
                    "gzip/zran blobs are not supported; convert the image to lz4 or zstd chunks");
        }
        if (e.digest() == null) {
            throw new ImageFormatException(file, f + ".digest", e.digestCode(), "unknown digest algorithm");
        }
        long cs = e.chunkSize();
        if (Long.bitCount(cs) != 1 || cs < MIN_CHUNK_SIZE || cs > MAX_CHUNK_SIZE) {
            throw new ImageFormatException(file, f + ".chunk_size", cs, "must be a power of two from 4 KiB to 16 MiB");
        }
    }

    private static void validateDevice(Path file, int i, DeviceSlot d, BlobTableEntry blob, long bootstrapSize)
            throws ImageFormatException {
        String f = "device_table[" + i + "]";
        if (d.tag().isEmpty()) {
            throw new ImageFormatException(file, f + ".tag", "''", "empty tag (Linux 6.4/6.5 refuse to mount it)");
        }
        if (!d.tag().equals(blob.blobId())) {
            throw new ImageFormatException(file, f + ".tag", d.tag(), "does not name blob " + i + " (" + blob.blobId() + ")");
        }
        if (d.mappedBlkaddr() * BLOCK_SIZE < bootstrapSize) {
            throw new ImageFormatException(file, f + ".mapped_blkaddr", ImageFormatException.hex(d.mappedBlkaddr()),
                    "overlaps the bootstrap (" + bootstrapSize / BLOCK_SIZE + " blocks)");
        }
        if (blob.uncompressedSize() > d.blocks() * BLOCK_SIZE) {
            throw new ImageFormatException(file, f + ".blocks", d.blocks(),
                    "smaller than blob " + blob.blobId() + "'s uncompressed size " + blob.uncompressedSize());
        }
    }

    private static void checkNoOverlap(Path file, List<DeviceSlot> devices) throws ImageFormatException {
        for (int i = 0; i < devices.size(); i++) {
            DeviceSlot a = devices.get(i);
            for (int j = i + 1; j < devices.size(); j++) {
                DeviceSlot b = devices.get(j);
                if (a.mappedBlkaddr() < b.mappedBlkaddr() + b.blocks() && b.mappedBlkaddr() < a.mappedBlkaddr() + a.blocks()) {
                    throw new ImageFormatException(file, "device_table[" + j + "].mapped_blkaddr",
                            ImageFormatException.hex(b.mappedBlkaddr()),
                            "blocks overlap device " + i + " at " + ImageFormatException.hex(a.mappedBlkaddr()) + "+" + a.blocks());
                }
            }
        }
    }

    private static void validateChunk(Path file, int i, ChunkInfo c, List<BlobTableEntry> blobs, List<DeviceSlot> devices)
            throws ImageFormatException {
        String f = "chunk_table[" + i + "]";
        if (c.blobIndex() < 0 || c.blobIndex() >= blobs.size()) {
            throw new ImageFormatException(file, f + ".blob_index", c.blobIndex(), "no such blob (" + blobs.size() + " in the table)");
        }
        BlobTableEntry blob = blobs.get(c.blobIndex());
        if (c.isHole()) {
            return;
        }
        if (c.uncompressedOffset() % BLOCK_SIZE != 0) {
            throw new ImageFormatException(file, f + ".uncompressed_offset", ImageFormatException.hex(c.uncompressedOffset()),
                    "not 4 KiB-aligned");
        }
        if (c.uncompressedSize() == 0 || c.uncompressedSize() > blob.chunkSize()) {
            throw new ImageFormatException(file, f + ".uncompressed_size", c.uncompressedSize(),
                    "must be 1.." + blob.chunkSize() + " (the blob's chunk size)");
        }
        if (c.compressedSize() == 0 || c.compressedSize() > MAX_CHUNK_SIZE * 2) {
            throw new ImageFormatException(file, f + ".compressed_size", c.compressedSize(), "implausible compressed size");
        }
        if (!c.isCompressed() && c.compressedSize() != c.uncompressedSize()) {
            throw new ImageFormatException(file, f + ".compressed_size", c.compressedSize(),
                    "a stored (uncompressed) chunk must have compressed_size = uncompressed_size " + c.uncompressedSize());
        }
        long limit = devices.isEmpty() ? blob.uncompressedSize() : devices.get(c.blobIndex()).blocks() * BLOCK_SIZE;
        if (c.uncompressedOffset() + c.uncompressedSize() > limit) {
            throw new ImageFormatException(file, f + ".uncompressed_offset", ImageFormatException.hex(c.uncompressedOffset()),
                    "chunk of " + c.uncompressedSize() + " bytes ends past blob " + blob.blobId() + "'s " + limit + " uncompressed bytes");
        }
        if (blob.compressedSize() > 0 && c.compressedOffset() + c.compressedSize() > blob.compressedSize()) {
            throw new ImageFormatException(file, f + ".compressed_offset", ImageFormatException.hex(c.compressedOffset()),
                    "chunk ends past blob " + blob.blobId() + "'s compressed size " + blob.compressedSize());
        }
    }

    public Path path() {
        return path;
    }

    public long fileSize() {
        return fileSize;
    }

    public ErofsSuperblock superblock() {
        return superblock;
    }

    public RafsSuperblockExt ext() {
        return ext;
    }

    public List<DeviceSlot> devices() {
        return devices;
    }

    public List<BlobTableEntry> blobs() {
        return blobs;
    }

    public List<ChunkInfo> chunks() {
        return chunks;
    }

    /** Blocks of the flat device: the bootstrap, then every blob's space at its mapped_blkaddr. */
    public long flatDeviceBlocks() {
        long end = fileSize / BLOCK_SIZE;
        for (DeviceSlot d : devices) {
            end = Math.max(end, d.mappedBlkaddr() + d.blocks());
        }
        return end;
    }
}
