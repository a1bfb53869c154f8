package io.strata.registry.cache;

import io.strata.core.blob.ChunkRanges;
import java.io.Closeable;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.Map;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One blob in the local cache: a sparse data file holding the blob's compressed bytes at their blob
 * offsets, and a readiness map with one bit per chunk (per range of the blob's {@link ChunkRanges}).
 *
 * <p>The map file ({@code <blob id>.<layout>.map}) is a 4 KiB header then the bits, memory-mapped
 * {@code MAP_SHARED}, so every process using the blob sees the same bits. Header (little-endian):
 * <pre>
 *   0  magic "STRATAMP"        8  version (u32)        12 CRC32C of bytes 16..319 (u32)
 *  16  blob size (u64)        24  chunk count (u32)    28 blob id length (u32)
 *  32  layout digest: SHA-256 of the chunk ranges (32 bytes)
 *  64  blob id, ASCII (up to 256 bytes)
 * 2048 cached bytes (u64): the sum of the lengths of the chunks whose bit is set (not in the CRC:
 *      it changes; used to size the cache for eviction, recomputed from the bits at each reset check)
 * 2056 last used (u64, milliseconds since the epoch): set when a process opens or closes the blob;
 *      eviction goes by it. (Not the file's mtime: setting that opens and closes the file, and
 *      closing any descriptor of a file drops the process's POSIX locks on it, the in-use lock too.)
 * 4096 the bits: chunk i is bit (i % 64) of the little-endian u64 at 4096 + 8 * (i / 64)
 * </pre>
 * The map is named by the layout digest as well as the blob id because two images may use different
 * subsets of one blob's chunks (an upper layer deleted files); bit i means range i of one layout
 * only. The data file is shared by every layout: its bytes are the blob's, wherever they came from.
 *
 * <p>A bit is set only after its chunk's bytes are durable: the bytes are written, the data file is
 * {@code fdatasync}ed ({@link FileChannel#force force(false)}), then the bit is set with an atomic OR
 * on the mapped memory. A process killed at any point leaves a clear bit over a torn chunk (it is
 * fetched again) or a set bit over durable bytes; a crash of the machine can lose a set bit, never
 * set one early. A header that is torn (bad magic, version, CRC, size) or describes another blob
 * (blob id, layout, chunk count, a blob size that does not hold the chunks) is reset: all bits clear,
 * every chunk fetched again. Only the process that holds the map's exclusive lock resets it (see
 * {@link BlobCacheDirectory}): a reset never happens under another process's mapping.
 *
 * <p>A chunk's bytes are written under a byte-range lock on the data file and only while its bit is
 * clear, so a process never overwrites bytes another process has already made present (which a
 * third one may be serving zero-copy after checking their digest). A clear bit is not enough: the
 * bytes may be present under another layout's map, or a process whose fetched copy failed may have
 * cleared it; so a fetch overwrites only a range never written (zeros) or one whose bytes this
 * process itself found bad ({@link #store}, {@link RemoteBlob#discard}).
 */
public final class CachedBlobFile implements Closeable {
    private static final Logger LOG = LoggerFactory.getLogger(CachedBlobFile.class);

    static final int HEADER_SIZE = 4096;
    static final byte[] MAGIC = "STRATAMP".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    static final int CRC_OFF = 12;
    static final int CRC_FROM = 16;
    static final int CRC_TO = 320;
    static final int BLOB_SIZE_OFF = 16;
    static final int CHUNK_COUNT_OFF = 24;
    static final int ID_LENGTH_OFF = 28;
    static final int LAYOUT_OFF = 32;
    static final int ID_OFF = 64;
    static final int MAX_ID_LENGTH = 256;
    static final int CACHED_BYTES_OFF = 2048;
    static final int LAST_USED_OFF = 2056;

    private static final VarHandle LONGS = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private final String blobId;
    private final ChunkRanges ranges;
    private final long blobSize;
    private final Path dataPath;
    private final Path mapPath;
    private final FileChannel data;
    private final FileChannel mapChannel;
    /** The shared lock that marks the blob in use for as long as this file is open. */
    private final FileLock inUse;
    private final MappedByteBuffer map;
    private final boolean completeAtOpen;
    /** This process's fetches in progress, by chunk: shared by every remote blob reading this file. */
    private final Map<Integer, ChunkFill> inFlight = new HashMap<>();
    /** The prefetcher's plan for this blob in this process (shapes the reads' misses), or null. */
    private volatile FetchPlan plan;
    /** Set once the map file was found cut short under its mapping (see {@link #lost}). */
    private volatile boolean mapLost;
    /** Chunks whose bytes in the data file failed their check here: a fetch may overwrite them (see {@link #store}). */
    private final java.util.BitSet foundBad = new java.util.BitSet();

    private CachedBlobFile(String blobId, ChunkRanges ranges, long blobSize, Path dataPath, Path mapPath,
                           FileChannel data, FileChannel mapChannel, FileLock inUse, MappedByteBuffer map) {
        this.blobId = blobId;
        this.ranges = ranges;
        this.blobSize = blobSize;
        this.dataPath = dataPath;
        this.mapPath = mapPath;
        this.data = data;
        this.mapChannel = mapChannel;
        this.inUse = inUse;
        this.map = map;
        // A blob opened without its chunk ranges has no chunks to be present: its data file is not it.
        this.completeAtOpen = ranges.count() > 0 && presentCount() == ranges.count();
    }

    /** Where the size of a blob comes from when its map has to be made: the registry, asked once. */
    @FunctionalInterface
    public interface SizeSource {
        long size() throws IOException;
    }

    /** The file name of a blob's map for a layout. */
    static String mapName(String blobId, byte[] layout) {
        return blobId + "." + hex(layout, 8) + ".map";
    }

    static String dataName(String blobId) {
        return blobId + ".data";
    }

    /**
     * Opens (creating or resetting when needed) the map of a blob for a layout and marks the blob in
     * use. The caller (the cache directory) holds the directory's shared lock, so no eviction runs
     * meanwhile, and owns {@code data}, the process's one channel on the blob's data file (POSIX
     * record locks belong to the process: closing any other channel on the file would drop them).
     *
     * @param knownSize the blob's size, or -1 to ask {@code sizeSource} if the map must be made
     */
    static CachedBlobFile open(Path dir, String blobId, ChunkRanges ranges, byte[] layout, FileChannel data,
                               long knownSize, SizeSource sizeSource) throws IOException {
        Path dataPath = dir.resolve(dataName(blobId));
        Path mapPath = dir.resolve(mapName(blobId, layout));
        FileChannel mapChannel = null;
        FileLock inUse = null;
        try {
            mapChannel = OwnerOnly.openReadWrite(mapPath);
            FileLock exclusive = mapChannel.tryLock();
            if (exclusive != null) {
                // Nobody else uses this map: check it, and make it right if it is not.
                try {
                    long size = validSize(mapChannel, blobId, ranges, layout);
                    if (size < 0) {
                        size = knownSize >= 0 ? knownSize : sizeSource.size();
                        reset(mapChannel, blobId, ranges, layout, size);
                        recount(mapChannel, ranges, data.size());
                    } else {
                        recount(mapChannel, ranges, data.size());
                    }
                } finally {
                    exclusive.release();
                }
            }
            // Whoever made the map checked it before using it; it is valid now (headers are never
            // rewritten while a process holds the map).
            inUse = mapChannel.lock(0, Long.MAX_VALUE, true);
            long size = validSize(mapChannel, blobId, ranges, layout);
            if (size < 0) {
                throw new IOException("cache map " + mapPath + " is damaged and in use by another process; stop it, "
                        + "or delete the file");
            }
            MappedByteBuffer map = mapChannel.map(FileChannel.MapMode.READ_WRITE, 0, mapLength(ranges.count()));
            LONGS.setVolatile(map, LAST_USED_OFF, System.currentTimeMillis());
            return new CachedBlobFile(blobId, ranges, size, dataPath, mapPath, data, mapChannel, inUse, map);
        } catch (IOException | RuntimeException e) {
            closeQuietly(inUse, e);
            closeQuietly(mapChannel, e);
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable c, Throwable into) {
        if (c != null) {
            try {
                c.close();
            } catch (Exception e) {
                into.addSuppressed(e);
            }
        }
    }

    static long mapLength(int chunks) {
        return HEADER_SIZE + 8L * ((chunks + 63L) / 64);
    }

    /** Bytes each chunk adds to the layout digest: its compressed offset (u64) and length (u32), little-endian. */
    private static final int LAYOUT_ENTRY_SIZE = 12;
    /** Chunks staged per digest update (64 KiB). */
    private static final int LAYOUT_STAGED_ENTRIES = (64 << 10) / LAYOUT_ENTRY_SIZE;

    /** The SHA-256 of a blob's chunk ranges: which chunk each bit means. */
    static byte[] layoutDigest(ChunkRanges ranges) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            // The same 12 bytes per chunk as always, staged so the digest sees 64 KiB at a time: a
            // remote image's start-up hashes its whole layout before the first fetch, and one
            // update per chunk (a million, cold code) cost tens of milliseconds there.
            ByteBuffer b = ByteBuffer.allocate(LAYOUT_ENTRY_SIZE * LAYOUT_STAGED_ENTRIES).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < ranges.count(); i++) {
                if (b.remaining() < LAYOUT_ENTRY_SIZE) {
                    md.update(b.array(), 0, b.position());
                    b.clear();
                }
                b.putLong(ranges.offset(i)).putInt(ranges.length(i));
            }
            md.update(b.array(), 0, b.position());
            return md.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Reads a map's header; returns the blob size it records, or -1 if it is torn or describes another blob. */
    static long validSize(FileChannel mapChannel, String blobId, ChunkRanges ranges, byte[] layout) throws IOException {
        if (mapChannel.size() != mapLength(ranges.count())) {
            return -1;
        }
        ByteBuffer h = ByteBuffer.allocate(CRC_TO).order(ByteOrder.LITTLE_ENDIAN);
        while (h.hasRemaining()) {
            if (mapChannel.read(h, h.position()) < 0) {
                return -1;
            }
        }
        byte[] magic = new byte[MAGIC.length];
        h.get(0, magic);
        if (!java.util.Arrays.equals(magic, MAGIC) || h.getInt(8) != VERSION) {
            return -1;
        }
        CRC32C crc = new CRC32C();
        crc.update(h.array(), CRC_FROM, CRC_TO - CRC_FROM);
        if ((int) crc.getValue() != h.getInt(CRC_OFF)) {
            return -1;
        }
        byte[] id = blobId.getBytes(StandardCharsets.US_ASCII);
        byte[] storedLayout = new byte[32];
        h.get(LAYOUT_OFF, storedLayout);
        if (h.getInt(ID_LENGTH_OFF) != id.length || h.getInt(CHUNK_COUNT_OFF) != ranges.count()
                || !java.util.Arrays.equals(storedLayout, layout)) {
            return -1;
        }
        byte[] storedId = new byte[id.length];
        h.get(ID_OFF, storedId);
        if (!java.util.Arrays.equals(storedId, id)) {
            return -1;
        }
        long size = h.getLong(BLOB_SIZE_OFF);
        if (size < rangesEnd(ranges)) {
            return -1;
        }
        return size;
    }

    static long rangesEnd(ChunkRanges ranges) {
        long end = 0;
        for (int i = 0; i < ranges.count(); i++) {
            end = Math.max(end, ranges.end(i));
        }
        return end;
    }

    /**
     * Makes a fresh map: every bit clear, then the header, then fsync. A crash part way leaves a
     * header that does not check, so the next open resets again.
     */
    private static void reset(FileChannel mapChannel, String blobId, ChunkRanges ranges,
                              byte[] layout, long size) throws IOException {
        if (size < rangesEnd(ranges)) {
            throw new IOException("blob " + blobId + " is " + size + " bytes, but its chunks reach byte "
                    + rangesEnd(ranges));
        }
        byte[] id = blobId.getBytes(StandardCharsets.US_ASCII);
        LOG.info("cache: new readiness map for blob {} ({} chunks, {} bytes)", blobId, ranges.count(), size);
        mapChannel.truncate(0);
        ByteBuffer zero = ByteBuffer.allocate(1);
        mapChannel.write(zero, mapLength(ranges.count()) - 1); // sparse: the bits read as zero
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        h.put(0, MAGIC);
        h.putInt(8, VERSION);
        h.putLong(BLOB_SIZE_OFF, size);
        h.putInt(CHUNK_COUNT_OFF, ranges.count());
        h.putInt(ID_LENGTH_OFF, id.length);
        h.put(LAYOUT_OFF, layout);
        h.put(ID_OFF, id);
        CRC32C crc = new CRC32C();
        crc.update(h.array(), CRC_FROM, CRC_TO - CRC_FROM);
        h.putInt(CRC_OFF, (int) crc.getValue());
        h.putLong(LAST_USED_OFF, System.currentTimeMillis());
        mapChannel.force(true); // the cleared bits reach the disk before a header that makes them count
        while (h.hasRemaining()) {
            mapChannel.write(h, h.position());
        }
        mapChannel.force(true);
    }

    /**
     * Recomputes the cached-bytes field from the bits (a process killed between the two left it off),
     * and clears the bits of chunks the data file does not reach (someone deleted or cut it).
     */
    private static void recount(FileChannel mapChannel, ChunkRanges ranges, long dataSize) throws IOException {
        ByteBuffer bits = ByteBuffer.allocate((int) (mapLength(ranges.count()) - HEADER_SIZE)).order(ByteOrder.LITTLE_ENDIAN);
        while (bits.hasRemaining()) {
            if (mapChannel.read(bits, HEADER_SIZE + bits.position()) < 0) {
                break;
            }
        }
        long bytes = 0;
        int dropped = 0;
        for (int i = 0; i < ranges.count(); i++) {
            int word = 8 * (i >>> 6);
            long bit = 1L << i;
            if ((bits.getLong(word) & bit) != 0) {
                if (ranges.end(i) > dataSize) {
                    bits.putLong(word, bits.getLong(word) & ~bit);
                    dropped++;
                } else {
                    bytes += ranges.length(i);
                }
            } else if (ranges.length(i) == 0) {
                bits.putLong(word, bits.getLong(word) | bit); // nothing to fetch: present from the start
            }
        }
        if (dropped > 0) {
            LOG.warn("cache: {} chunk(s) marked present lie past the end of their data file ({} bytes): fetching them again",
                    dropped, dataSize);
        }
        bits.clear();
        while (bits.hasRemaining()) {
            mapChannel.write(bits, HEADER_SIZE + bits.position());
        }
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, bytes);
        mapChannel.write(b, CACHED_BYTES_OFF);
    }

    /**
     * The cached-bytes and last-used fields of a map file this process does not have open (eviction's
     * view of another process's or nobody's blob), or null if the file is too short to hold them.
     */
    static long[] usageOf(FileChannel mapChannel) throws IOException {
        if (mapChannel.size() < HEADER_SIZE) {
            return null;
        }
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (mapChannel.read(b, CACHED_BYTES_OFF + b.position()) < 0) {
                return null;
            }
        }
        return new long[] {b.getLong(0), b.getLong(8)};
    }

    public String blobId() {
        return blobId;
    }

    public ChunkRanges ranges() {
        return ranges;
    }

    /** The blob's size, as recorded when its map was made. */
    public long blobSize() {
        return blobSize;
    }

    /** The data file: the blob's bytes wherever a chunk is present, zeros or stale bytes elsewhere. */
    public FileChannel data() {
        return data;
    }

    public Path dataPath() {
        return dataPath;
    }

    public Path mapPath() {
        return mapPath;
    }

    /** True when every chunk was present when the file was opened: the data file then is the blob. */
    public boolean completeAtOpen() {
        return completeAtOpen;
    }

    /** Fetches in progress in this process, by chunk index; guarded by the map itself. */
    Map<Integer, ChunkFill> inFlight() {
        return inFlight;
    }

    FetchPlan plan() {
        return plan;
    }

    void plan(FetchPlan p) {
        plan = p;
    }

    /** Whether chunk {@code i}'s bytes are present and durable. Allocates nothing. */
    public boolean isPresent(int i) {
        return (mapWord(bitsWord(i), 0) & (1L << i)) != 0;
    }

    /** How many chunks are present now. */
    public int presentCount() {
        int n = 0;
        for (int w = 0; w < (ranges.count() + 63) / 64; w++) {
            n += Long.bitCount(mapWord(HEADER_SIZE + 8 * w, 0));
        }
        return mapLost ? 0 : n;
    }

    /** The cached-bytes field: the sum of the lengths of present chunks. */
    public long cachedBytes() {
        return mapWord(CACHED_BYTES_OFF, 0);
    }

    /** When a process last opened or closed this blob (milliseconds since the epoch). */
    public long lastUsedMillis() {
        long t = mapWord(LAST_USED_OFF, -1);
        return mapLost ? System.currentTimeMillis() : t;
    }

    /** Marks chunk {@code i} present; its bytes must already be durable. Atomic across processes. */
    void markPresent(int i) {
        setPresent(i, true);
    }

    /** Marks chunk {@code i} missing: its bytes will be fetched again. Atomic across processes. */
    void markMissing(int i) {
        setPresent(i, false);
    }

    /** The offset in the map of the word holding chunk {@code i}'s bit. */
    private static int bitsWord(int i) {
        return HEADER_SIZE + 8 * (i >>> 6);
    }

    /** The map's word at {@code offset}, or {@code whenLost} once the map was cut short (see {@link #lost}). */
    private long mapWord(int offset, long whenLost) {
        if (mapLost) {
            return whenLost;
        }
        try {
            return (long) LONGS.getVolatile(map, offset);
        } catch (InternalError e) {
            lost(e);
            return whenLost;
        }
    }

    /** Sets or clears chunk {@code i}'s bit and keeps the cached-bytes field in step; nothing once the map is lost. */
    private void setPresent(int i, boolean present) {
        if (mapLost) {
            return;
        }
        try {
            long bit = 1L << i;
            long before = present ? (long) LONGS.getAndBitwiseOr(map, bitsWord(i), bit)
                    : (long) LONGS.getAndBitwiseAnd(map, bitsWord(i), ~bit);
            if (((before & bit) != 0) != present) {
                LONGS.getAndAdd(map, CACHED_BYTES_OFF, present ? (long) ranges.length(i) : -(long) ranges.length(i));
            }
        } catch (InternalError e) {
            lost(e);
        }
    }

    /**
     * The map file was cut short under its mapping (truncated by something else while in use): the
     * kernel answers a touch of the lost pages with SIGBUS, which the JVM raises as InternalError.
     * From then on this blob trusts no bit: every chunk is fetched, served from the fetched bytes
     * and not marked, until the blob is opened again (the map is then checked and made anew). In
     * compiled code the error comes at the next safepoint, not at the access, so readers catch it
     * too ({@link RemoteBlob#readFully}).
     */
    void lost(InternalError e) {
        if (!mapLost) {
            mapLost = true;
            LOG.warn("cache: the map {} of blob {} was cut short while in use ({}); its chunks are fetched, not cached, "
                    + "until the blob is opened again", mapPath, blobId, e.getMessage());
        }
    }

    /**
     * Writes fetched chunks and marks them present: {@code fetched} holds the blob's bytes from
     * {@code fetchedAt} (from its position 0 to its limit); the chunks {@code chunks[0..count)} that
     * lie inside it and are still missing are written, each under a byte-range lock on the data file
     * and only if its bit is still clear under that lock (a chunk whose range another process has
     * locked is left to that process), made durable with one fdatasync, then marked. Returns how
     * many chunks were written.
     *
     * <p>A clear bit does not mean the data file lacks the bytes: another layout of the blob (its
     * bits are in another map), or another process whose fetched copy failed its check, may have left
     * the bit clear over bytes that a third reader checked and is serving zero-copy. So the range is
     * read first: bytes equal to the fetched ones are only marked; a range never written (all zero,
     * a hole of the sparse file) is written; different bytes are overwritten when this process found
     * them bad ({@link #foundBad}) or when no other layout's map exists (with one map, a clear bit
     * means nobody holds those bytes checked: a write torn by a kill, or bytes a reader found bad),
     * and otherwise left as they are: the fetched copy, which its reader checks next, may be the wrong
     * one, and it must not replace bytes another image checked. (A torn chunk of a blob with two
     * layouts is then fetched on each read, not cached: the price of never guessing.)
     */
    int store(ByteBuffer fetched, long fetchedAt, int[] chunks, int count) throws IOException {
        FileLock[] locks = new FileLock[count];
        boolean[] written = new boolean[count];
        int stored = 0;
        int differentLeft = 0;
        Boolean otherLayouts = null;
        ByteBuffer scratch = null;
        try {
            for (int k = 0; k < count; k++) {
                int i = chunks[k];
                long off = ranges.offset(i);
                int len = ranges.length(i);
                if (len == 0 || off < fetchedAt || off + len > fetchedAt + fetched.limit()) {
                    continue;
                }
                try {
                    // Never wait: a process holding the range is writing this very chunk (and may be
                    // stopped); it sets the bit, and this read is served from the fetched bytes.
                    locks[k] = data.tryLock(off, len, false);
                } catch (OverlappingFileLockException e) {
                    continue; // an overlapping range (hostile layout) being written by another thread: leave it
                }
                if (locks[k] == null) {
                    continue;
                }
                if (isPresent(i)) {
                    continue; // another process stored it first: never overwrite present bytes
                }
                ByteBuffer src = fetched.duplicate();
                src.limit((int) (off - fetchedAt) + len).position((int) (off - fetchedAt));
                if (scratch == null) {
                    scratch = ByteBuffer.allocate(COMPARE_PIECE);
                }
                FileBytes there = compare(off, src, scratch);
                if (there == FileBytes.DIFFERENT && !takeFoundBad(i)) {
                    if (otherLayouts == null) {
                        otherLayouts = otherLayoutMapExists();
                    }
                    if (otherLayouts) {
                        differentLeft++;
                        continue;
                    }
                }
                if (there != FileBytes.SAME) {
                    long pos = off;
                    while (src.hasRemaining()) {
                        pos += data.write(src, pos);
                    }
                }
                written[k] = true; // or already there: made durable with the rest, then marked
                stored++;
            }
            if (stored > 0) {
                data.force(false);
                for (int k = 0; k < count; k++) {
                    if (written[k]) {
                        markPresent(chunks[k]);
                    }
                }
            }
        } finally {
            for (FileLock l : locks) {
                if (l != null) {
                    try {
                        l.release();
                    } catch (IOException e) {
                        LOG.warn("cache: releasing a range lock on {}: {}", dataPath, e.toString());
                    }
                }
            }
        }
        if (differentLeft > 0) {
            LOG.warn("cache: blob {}: {} fetched chunk(s) differ from the bytes already in {} (another image's or "
                    + "process's copy, or a registry's wrong answer); the file's bytes are left, the fetched ones "
                    + "only serve this read and are checked before use", blobId, differentLeft, dataPath);
        }
        return stored;
    }

    /** How many bytes of the data file {@link #compare} reads at a time. */
    private static final int COMPARE_PIECE = 64 << 10;

    /** What the data file holds where a fetched chunk goes. */
    private enum FileBytes {
        /** The fetched bytes already. */
        SAME,
        /** Zeros: a hole of the sparse file, never written. */
        NEVER_WRITTEN,
        /** Other bytes: another copy, right or wrong. */
        DIFFERENT
    }

    /** Compares the data file at {@code off} with {@code fetched}'s remaining bytes (its position is kept). */
    private FileBytes compare(long off, ByteBuffer fetched, ByteBuffer scratch) throws IOException {
        boolean same = true;
        boolean zeros = true;
        int done = 0;
        int total = fetched.remaining();
        while (done < total && (same || zeros)) {
            int n = Math.min(scratch.capacity(), total - done);
            scratch.clear().limit(n);
            long pos = off + done;
            while (scratch.hasRemaining()) {
                int r = data.read(scratch, pos);
                if (r < 0) {
                    break; // past the file's end: never written
                }
                pos += r;
            }
            int got = scratch.position();
            while (scratch.hasRemaining()) {
                scratch.put((byte) 0);
            }
            scratch.flip();
            ByteBuffer piece = fetched.slice(fetched.position() + done, n);
            same &= scratch.mismatch(piece) < 0;
            for (int j = 0; zeros && j < got; j++) {
                zeros = scratch.get(j) == 0;
            }
            done += n;
        }
        return same ? FileBytes.SAME : zeros ? FileBytes.NEVER_WRITTEN : FileBytes.DIFFERENT;
    }

    /** True when another layout of this blob has a map in the cache directory (its bits are not ours to read). */
    private boolean otherLayoutMapExists() throws IOException {
        String own = mapPath.getFileName().toString();
        String prefix = blobId + ".";
        try (java.util.stream.Stream<Path> files = java.nio.file.Files.list(mapPath.getParent())) {
            return files.map(f -> f.getFileName().toString())
                    .anyMatch(n -> n.startsWith(prefix) && n.endsWith(".map") && !n.equals(own));
        }
    }

    /** True when the data file holds {@code bytes}' remaining bytes at {@code off}. */
    boolean holds(long off, ByteBuffer bytes) throws IOException {
        return compare(off, bytes, ByteBuffer.allocate(COMPARE_PIECE)) == FileBytes.SAME;
    }

    /**
     * Chunk {@code i}'s bytes in the data file failed their check in this process (they were read
     * from the file, see {@link RemoteBlob#discard}): its next fetch may overwrite them.
     */
    synchronized void foundBad(int i) {
        foundBad.set(i);
    }

    private synchronized boolean takeFoundBad(int i) {
        boolean was = foundBad.get(i);
        foundBad.clear(i);
        return was;
    }

    static String hex(byte[] b, int bytes) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < bytes; i++) {
            s.append(Character.forDigit((b[i] >> 4) & 15, 16)).append(Character.forDigit(b[i] & 15, 16));
        }
        return s.toString();
    }

    /**
     * Releases the in-use lock and closes the map (the mapping goes when the buffer is collected);
     * the data channel belongs to the cache directory.
     */
    @Override
    public void close() throws IOException {
        try {
            if (!mapLost) {
                LONGS.setVolatile(map, LAST_USED_OFF, System.currentTimeMillis());
            }
        } catch (InternalError e) {
            lost(e);
        }
        try {
            inUse.release();
        } finally {
            mapChannel.close();
        }
    }

    @Override
    public String toString() {
        return "cached blob " + blobId + " (" + presentCount() + "/" + ranges.count() + " chunks, " + dataPath + ")";
    }
}
