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
    /**
     * Largest flat device: EROFS block addresses are 32-bit ({@code erofs_blk_t}) and 0xffffffff is
     * the null address of a chunk index, so the last usable block is 0xfffffffe.
     */
    public static final long MAX_DEVICE_BLOCKS = 0xffff_ffffL;
    /**
     * The widest alignment a writer puts a blob's start on: Nydus 2.2 aligns to 2 MiB (the fixture's
     * blob sits at block 512 behind a 5-block bootstrap), Strata's builder to 512 KiB. A blob mapped
     * further from the end of the extent before it is refused: the gap would only be zeros that
     * {@code export} writes and {@code serve} advertises.
     */
    public static final long MAX_MAPPED_ALIGN_BLOCKS = 512;
    /** A prefetch table entry: a u32 nid. */
    public static final int PREFETCH_ENTRY_SIZE = 4;

    private final Path path;
    private final long fileSize;
    private final ErofsSuperblock superblock;
    private final RafsSuperblockExt ext;
    private final List<DeviceSlot> devices;
    private final List<BlobTableEntry> blobs;
    private final ChunkInfoTable chunks;
    private final long[] prefetchNids;

    private RafsImage(Path path, long fileSize, ErofsSuperblock superblock, RafsSuperblockExt ext,
                      List<DeviceSlot> devices, List<BlobTableEntry> blobs, ChunkInfoTable chunks, long[] prefetchNids) {
        this.path = path;
        this.fileSize = fileSize;
        this.superblock = superblock;
        this.ext = ext;
        this.devices = devices;
        this.blobs = blobs;
        this.chunks = chunks;
        this.prefetchNids = prefetchNids;
    }

    public static RafsImage open(Path bootstrap) throws IOException {
        return parse(bootstrap, read(bootstrap));
    }

    /**
     * The bootstrap's bytes, to {@link #parse} and then hand to what reads more of it (the prefetch
     * plan) without reading the file twice.
     */
    public static ByteBuffer read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE) {
                throw new ImageFormatException(file, "file size", size, "bootstraps over 2 GiB are not supported");
            }
            // Checked before the file is read whole: a hostile "bootstrap" of 2 GB (sparse, so it costs
            // its sender nothing) took 16 s and 4 GB of heap to refuse, or ended the JVM. The same error
            // as parse's layout check gives.
            refuseBlobsInsideTheBootstrap(file, ch, size);
            ByteBuffer buf = ByteBuffer.allocate((int) size);
            readFully(ch, buf, 0);
            return buf.flip();
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        int start = buf.position();
        while (buf.hasRemaining()) {
            if (ch.read(buf, position + buf.position() - start) < 0) {
                break;
            }
        }
    }

    /**
     * The flat device puts the bootstrap at block 0 and each blob at its {@code mapped_blkaddr}, so a
     * bootstrap of {@code size} bytes must end below every one: from the superblock and the device
     * table alone. Nothing is refused when they do not say (no blobs, or not a RAFS superblock:
     * {@link #parse} then says what is wrong).
     */
    private static void refuseBlobsInsideTheBootstrap(Path file, FileChannel ch, long size) throws IOException {
        if (size < BLOCK_SIZE) {
            return;
        }
        ByteBuffer head = ByteBuffer.allocate(BLOCK_SIZE);
        readFully(ch, head, 0);
        head.flip();
        if (ErofsSuperblock.magicOf(head) != ErofsSuperblock.MAGIC) {
            return;
        }
        ErofsSuperblock sb = ErofsSuperblock.decode(head);
        int slots = sb.hasDeviceTable() ? sb.extraDevices() : 0;
        long tableEnd = sb.deviceTableOffset() + (long) slots * DeviceSlot.SIZE;
        if (slots == 0 || tableEnd > size) {
            return;
        }
        ByteBuffer table = ByteBuffer.allocate(slots * DeviceSlot.SIZE);
        readFully(ch, table, sb.deviceTableOffset());
        table.flip();
        for (int i = 0; i < slots && table.remaining() >= (i + 1) * DeviceSlot.SIZE; i++) {
            long at = DeviceSlot.decode(table, i * DeviceSlot.SIZE).mappedBlkaddr();
            if (at > 0 && at * BLOCK_SIZE < size) { // 0: an empty slot, which parse names better
                throw new ImageFormatException(file, "device_table[" + i + "].mapped_blkaddr", ImageFormatException.hex(at),
                        "overlaps the bootstrap (" + size / BLOCK_SIZE + " blocks)");
            }
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
            checkLayout(file, devices, size);
        }

        // Chunk-info table.
        checkTable(file, "rafs_ext.chunk_table", ext.chunkTableOffset(), ext.chunkTableSize(), ChunkInfo.SIZE, size);
        int chunkCount = (int) (ext.chunkTableSize() / ChunkInfo.SIZE);
        ChunkInfoTable chunks = ChunkInfoTable.read(data, (int) ext.chunkTableOffset(), chunkCount);
        for (int i = 0; i < chunkCount; i++) {
            validateChunk(file, i, chunks, blobs);
        }
        long[] prefetch = readPrefetchTable(file, data, sb, ext, size);
        return new RafsImage(file, size, sb, ext, List.copyOf(devices), List.copyOf(blobs), chunks, prefetch);
    }

    /**
     * The prefetch table (Nydus {@code RafsV6PrefetchTable}): u32 nids of the files and directories
     * to fetch first, in order; a directory stands for everything below it. Nydus's builder puts it
     * right after the blob table and sets {@code prefetch_table_size} in bytes (4 per entry); an
     * image without one has size 0 (and offset 0). Every entry must name an inode slot inside the
     * bootstrap that holds a plausible inode: its i_format has only the layout and extended bits and
     * its mode a file type.
     */
    private static long[] readPrefetchTable(Path file, ByteBuffer data, ErofsSuperblock sb, RafsSuperblockExt ext, long size)
            throws ImageFormatException {
        long bytes = ext.prefetchTableSize();
        if (bytes == 0) {
            return new long[0];
        }
        checkTable(file, "rafs_ext.prefetch_table", ext.prefetchTableOffset(), bytes, PREFETCH_ENTRY_SIZE, size);
        int count = (int) (bytes / PREFETCH_ENTRY_SIZE);
        long[] nids = new long[count];
        ByteBuffer b = data.duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
        long metaStart = sb.metaBlkaddr() * BLOCK_SIZE; // inside the file (checked above)
        for (int i = 0; i < count; i++) {
            long nid = Integer.toUnsignedLong(b.getInt((int) ext.prefetchTableOffset() + i * PREFETCH_ENTRY_SIZE));
            String f = "prefetch_table[" + i + "]";
            if (metaStart + (nid + 1) * ErofsInode.SLOT_SIZE > size) {
                throw new ImageFormatException(file, f, nid, "names no inode: nid lies outside the bootstrap ("
                        + (size - metaStart) / ErofsInode.SLOT_SIZE + " inode slots from meta_blkaddr)");
            }
            ErofsInode inode = ErofsInode.decode(data, sb.metaBlkaddr(), nid);
            if (inode.offset() + inode.inodeSize() > size) {
                throw new ImageFormatException(file, f, nid, "names an extended inode that runs past the end of the bootstrap");
            }
            if ((inode.format() & ~0xF) != 0 || !isFileType(inode.mode())) {
                throw new ImageFormatException(file, f, nid, "names no inode (i_format "
                        + ImageFormatException.hex(inode.format()) + ", mode 0" + Integer.toOctalString(inode.mode()) + ")");
            }
            nids[i] = nid;
        }
        return nids;
    }

    private static boolean isFileType(int mode) {
        return switch (mode & ErofsInode.S_IFMT) {
            case ErofsInode.S_IFREG, ErofsInode.S_IFDIR, ErofsInode.S_IFLNK, ErofsInode.S_IFCHR, ErofsInode.S_IFBLK,
                    ErofsInode.S_IFIFO, ErofsInode.S_IFSOCK -> true;
            default -> false;
        };
    }

    private static void checkTable(Path file, String field, long offset, long length, int entrySize, long fileSize)
            throws ImageFormatException {
        if (length < 0) {
            // The RAFS extension stores some table sizes as u64: read as a Java long, past 2^63 they are negative.
            throw new ImageFormatException(file, field + "_size", Long.toUnsignedString(length), "larger than any bootstrap");
        }
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
        if (!isUsableBlobId(e.blobId())) {
            throw new ImageFormatException(file, f + ".blob_id", "'" + e.blobId() + "'",
                    "not a usable blob id (it names a file: printable ASCII, no '/', not '.' or '..')");
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
        if (e.compressedSize() < 0) {
            throw new ImageFormatException(file, f + ".compressed_size", e.compressedSize(), "negative");
        }
        long u = e.uncompressedSize();
        if (u < 0 || u > MAX_DEVICE_BLOCKS * BLOCK_SIZE) {
            throw new ImageFormatException(file, f + ".uncompressed_size", u,
                    "outside 0.." + MAX_DEVICE_BLOCKS * BLOCK_SIZE + " (32-bit block addresses)");
        }
        // Each of the blob's chunk_count chunks takes at most chunk_size bytes of its uncompressed
        // space (a chunk is at most chunk_size, padded to 4 KiB <= chunk_size).
        if (u > e.chunkCount() * cs) {
            throw new ImageFormatException(file, f + ".uncompressed_size", u,
                    "larger than its " + e.chunkCount() + " chunk(s) of at most " + cs + " bytes can fill");
        }
    }

    /** A blob id is a file name in a blob directory (Nydus ids are 64 hex digits). */
    static boolean isUsableBlobId(String id) {
        if (id.isEmpty() || id.equals(".") || id.equals("..")) {
            return false;
        }
        for (int k = 0; k < id.length(); k++) {
            char ch = id.charAt(k);
            if (ch <= ' ' || ch > '~' || ch == '/') {
                return false;
            }
        }
        return true;
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
        // Nydus writes blocks = uncompressed_size / block size, its uncompressed sizes being 4 KiB
        // multiples (the fixture: 36864 bytes, 9 blocks); the slot is the blob's space on the
        // device, so it must be exactly that space, rounded up to whole blocks.
        long want = (blob.uncompressedSize() + BLOCK_SIZE - 1) / BLOCK_SIZE;
        if (d.blocks() != want) {
            throw new ImageFormatException(file, f + ".blocks", d.blocks(),
                    "does not match blob " + blob.blobId() + "'s uncompressed size " + blob.uncompressedSize()
                            + " (" + want + " blocks)");
        }
        if (d.mappedBlkaddr() * BLOCK_SIZE < bootstrapSize) {
            throw new ImageFormatException(file, f + ".mapped_blkaddr", ImageFormatException.hex(d.mappedBlkaddr()),
                    "overlaps the bootstrap (" + bootstrapSize / BLOCK_SIZE + " blocks)");
        }
        if (d.mappedBlkaddr() + d.blocks() > MAX_DEVICE_BLOCKS) {
            throw new ImageFormatException(file, f + ".mapped_blkaddr", ImageFormatException.hex(d.mappedBlkaddr()),
                    d.blocks() + " blocks from here end past the 32-bit block address space");
        }
    }

    /** {@code blocks} rounded up to the widest alignment a writer gives a blob's start. */
    public static long alignBlocks(long blocks) {
        return (blocks + MAX_MAPPED_ALIGN_BLOCKS - 1) / MAX_MAPPED_ALIGN_BLOCKS * MAX_MAPPED_ALIGN_BLOCKS;
    }

    /**
     * The extents of the flat device, in address order (the bootstrap first), must neither overlap
     * nor leave a gap wider than the alignment writers use: the device is then at most the bootstrap
     * and the blobs laid end to end, and a slot cannot push it out to terabytes of zeros.
     */
    private static void checkLayout(Path file, List<DeviceSlot> devices, long bootstrapSize) throws ImageFormatException {
        Integer[] order = new Integer[devices.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, java.util.Comparator.comparingLong((Integer i) -> devices.get(i).mappedBlkaddr())
                .thenComparingLong(i -> devices.get(i).blocks()));
        long prevEnd = bootstrapSize / BLOCK_SIZE;
        int prev = -1;
        for (int i : order) {
            DeviceSlot d = devices.get(i);
            String f = "device_table[" + i + "].mapped_blkaddr";
            if (d.mappedBlkaddr() < prevEnd) {
                DeviceSlot p = devices.get(prev); // the bootstrap case was refused by validateDevice
                throw new ImageFormatException(file, f, ImageFormatException.hex(d.mappedBlkaddr()),
                        "blocks overlap device " + prev + " at " + ImageFormatException.hex(p.mappedBlkaddr()) + "+" + p.blocks());
            }
            if (d.mappedBlkaddr() > alignBlocks(prevEnd)) {
                throw new ImageFormatException(file, f, ImageFormatException.hex(d.mappedBlkaddr()),
                        "leaves a gap of " + (d.mappedBlkaddr() - prevEnd) + " blocks after "
                                + (prev < 0 ? "the bootstrap" : "device " + prev) + " (blobs are placed at most "
                                + MAX_MAPPED_ALIGN_BLOCKS * BLOCK_SIZE / 1024 + " KiB-aligned after the extent before them)");
            }
            prevEnd = d.mappedBlkaddr() + d.blocks();
            prev = i;
        }
    }

    private static void validateChunk(Path file, int i, ChunkInfoTable t, List<BlobTableEntry> blobs)
            throws ImageFormatException {
        int blobIndex = t.blobIndex(i);
        if (blobIndex < 0 || blobIndex >= blobs.size()) {
            throw new ImageFormatException(file, field(i, ".blob_index"), blobIndex, "no such blob (" + blobs.size() + " in the table)");
        }
        if (t.isHole(i)) {
            return;
        }
        BlobTableEntry blob = blobs.get(blobIndex);
        long uoff = t.uncompressedOffset(i);
        long usize = t.uncompressedSize(i);
        long csize = t.compressedSize(i);
        long coff = t.compressedOffset(i);
        if (uoff < 0 || uoff % BLOCK_SIZE != 0) {
            throw new ImageFormatException(file, field(i, ".uncompressed_offset"), ImageFormatException.hex(uoff),
                    "negative or not 4 KiB-aligned");
        }
        if (usize == 0 || usize > blob.chunkSize()) {
            throw new ImageFormatException(file, field(i, ".uncompressed_size"), usize,
                    "must be 1.." + blob.chunkSize() + " (the blob's chunk size)");
        }
        if (csize == 0 || csize > MAX_CHUNK_SIZE * 2) {
            throw new ImageFormatException(file, field(i, ".compressed_size"), csize, "implausible compressed size");
        }
        if (!t.isCompressed(i) && csize != usize) {
            throw new ImageFormatException(file, field(i, ".compressed_size"), csize,
                    "a stored (uncompressed) chunk must have compressed_size = uncompressed_size " + usize);
        }
        // Inside the blob's uncompressed space, which its device slot maps exactly (validateDevice).
        long limit = blob.uncompressedSize();
        if (uoff > limit || usize > limit - uoff) {
            throw new ImageFormatException(file, field(i, ".uncompressed_offset"), ImageFormatException.hex(uoff),
                    "chunk of " + usize + " bytes ends past blob " + blob.blobId() + "'s " + limit + " uncompressed bytes");
        }
        if (coff < 0) {
            throw new ImageFormatException(file, field(i, ".compressed_offset"), ImageFormatException.hex(coff), "negative");
        }
        // Inside the blob's compressed data; the blob file's own size is checked when it is opened (ChunkStore).
        long climit = blob.compressedSize();
        if (climit > 0 && (coff > climit || csize > climit - coff)) {
            throw new ImageFormatException(file, field(i, ".compressed_offset"), ImageFormatException.hex(coff),
                    "chunk of " + csize + " bytes ends past blob " + blob.blobId() + "'s compressed size " + climit);
        }
    }

    /** The name of chunk-info entry {@code i}'s field, for an error (built only then: the table can be long). */
    private static String field(int i, String name) {
        return "chunk_table[" + i + "]" + name;
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

    /** The chunk-info table's entries as records (decoded as read); {@link #chunkTable} for bulk use. */
    public List<ChunkInfo> chunks() {
        return chunks.asList();
    }

    public ChunkInfoTable chunkTable() {
        return chunks;
    }

    /**
     * The nids of the prefetch table, in table order (empty if the image has none). Each names an
     * inode slot with a plausible inode; {@link PrefetchPlan} turns them into chunks.
     */
    public long[] prefetchNids() {
        return prefetchNids.clone();
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
