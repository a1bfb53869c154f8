package io.strata.core.image;

import com.github.luben.zstd.Zstd;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;

/**
 * Reads the trailer of a data blob with a ToC (nydus-image 2.2+ and Strata's builder), the way
 * Nydus's tools find it without a bootstrap: the last 512 bytes are the tar header of the ToC
 * ({@code rafs.blob.toc}), the ToC's 128-byte entries sit just before it, and they locate the chunk
 * data ({@code image.blob}), the chunk-info array ({@code blob.meta}, maybe compressed), its 4 KiB
 * header ({@code blob.meta.header}) and the chunk digests ({@code blob.digest}). Every offset and
 * size is checked against the file before it is used; a trailer that does not hold together is an
 * {@link ImageFormatException} naming the blob file, the field and the value.
 */
public final class BlobTrailerReader {
    /** A ToC of more entries than this is not one nydus-image or Strata writes (they write 4). */
    static final int MAX_TOC_ENTRIES = 64;
    /** Bound on the chunk-info array read into memory: 16 bytes a chunk, 2^24 chunks. */
    static final long MAX_CHUNK_INFO_BYTES = 256L << 20;

    /** What the trailer says: its ToC, the blob.meta header and the chunk-info entries. */
    public record Trailer(List<BlobTocEntry> toc, BlobCompressionContextHeader metaHeader, List<BlobChunkInfoV1> chunks,
                          long dataSize) {
    }

    private BlobTrailerReader() {
    }

    public static Trailer read(Path file, FileChannel blob) throws IOException {
        long size = blob.size();
        if (size < BlobTarHeader.SIZE) {
            throw new ImageFormatException(file, "file size", size, "too short for a ToC tar header (512 bytes)");
        }
        BlobTarHeader tocHeader = tarHeader(file, blob, size - BlobTarHeader.SIZE, "toc tar header");
        if (!tocHeader.name().equals(BlobTocEntry.BLOB_TOC)) {
            throw new ImageFormatException(file, "toc tar header.name", "'" + tocHeader.name() + "'", "expected " + BlobTocEntry.BLOB_TOC);
        }
        long tocSize = tocHeader.size();
        long tocEnd = size - BlobTarHeader.SIZE;
        if (tocSize <= 0 || tocSize % BlobTocEntry.SIZE != 0 || tocSize > (long) MAX_TOC_ENTRIES * BlobTocEntry.SIZE
                || tocSize > tocEnd) {
            throw new ImageFormatException(file, "toc tar header.size", tocSize,
                    "not 1.." + MAX_TOC_ENTRIES + " entries of " + BlobTocEntry.SIZE + " bytes before the header");
        }
        ByteBuffer tocBytes = readAt(blob, tocEnd - tocSize, (int) tocSize);
        List<BlobTocEntry> toc = new ArrayList<>();
        BlobTocEntry data = null;
        BlobTocEntry meta = null;
        BlobTocEntry metaHeader = null;
        BlobTocEntry digests = null;
        for (int i = 0; i < tocSize / BlobTocEntry.SIZE; i++) {
            BlobTocEntry e = BlobTocEntry.decode(tocBytes, i * BlobTocEntry.SIZE);
            String f = "toc[" + i + "]";
            if (e.name().equals(BlobTocEntry.BLOB_RAW)) {
                // The chunk data starts the blob. nydus-image 2.2 wrote the end of the data as this
                // entry's offset (the fixture has 0x1e7a; fixed in Nydus commit 747edc95): ignored.
                e = new BlobTocEntry(e.flags(), e.name(), e.uncompressedDigest(), 0, e.compressedSize(), e.uncompressedSize());
            }
            if (e.compressedOffset() < 0 || e.compressedSize() < 0 || e.compressedOffset() > tocEnd - tocSize
                    || e.compressedSize() > tocEnd - tocSize - e.compressedOffset()) {
                throw new ImageFormatException(file, f + ".compressed_offset", e.compressedOffset(),
                        "item '" + e.name() + "' of " + e.compressedSize() + " bytes does not lie before the ToC");
            }
            switch (e.name()) {
                case BlobTocEntry.BLOB_RAW -> data = e;
                case BlobTocEntry.BLOB_META -> meta = e;
                case BlobTocEntry.BLOB_META_HEADER -> metaHeader = e;
                case BlobTocEntry.BLOB_DIGEST -> digests = e;
                default -> {
                    // Items Nydus may add (e.g. image.boot in a blob with an inlined bootstrap): not needed here.
                }
            }
            toc.add(e);
        }
        if (data == null || meta == null || metaHeader == null) {
            throw new ImageFormatException(file, "toc", toc.size() + " entries",
                    "needs " + BlobTocEntry.BLOB_RAW + ", " + BlobTocEntry.BLOB_META + " and " + BlobTocEntry.BLOB_META_HEADER);
        }
        if (metaHeader.compressedSize() != BlobCompressionContextHeader.SIZE) {
            throw new ImageFormatException(file, "toc(" + BlobTocEntry.BLOB_META_HEADER + ").compressed_size",
                    metaHeader.compressedSize(), "must be " + BlobCompressionContextHeader.SIZE);
        }
        BlobCompressionContextHeader header;
        try {
            header = BlobCompressionContextHeader.decode(readAt(blob, metaHeader.compressedOffset(), BlobCompressionContextHeader.SIZE), 0);
        } catch (IllegalArgumentException e) {
            throw new ImageFormatException(file, "blob.meta header.magic", "at " + metaHeader.compressedOffset(), e.getMessage());
        }
        if (header.ciOffset() != meta.compressedOffset() || header.ciCompressedSize() != meta.compressedSize()) {
            throw new ImageFormatException(file, "blob.meta header.ci_offset", header.ciOffset(),
                    "does not match the ToC's blob.meta at " + meta.compressedOffset() + " (" + meta.compressedSize() + " bytes)");
        }
        if (header.ciUncompressedSize() != header.ciEntries() * BlobChunkInfoV1.SIZE
                || header.ciUncompressedSize() > MAX_CHUNK_INFO_BYTES) {
            throw new ImageFormatException(file, "blob.meta header.ci_uncompressed_size", header.ciUncompressedSize(),
                    "must be " + header.ciEntries() + " entries x " + BlobChunkInfoV1.SIZE + " bytes, at most " + MAX_CHUNK_INFO_BYTES);
        }
        if (meta.compressedSize() > MAX_CHUNK_INFO_BYTES) {
            throw new ImageFormatException(file, "toc(" + BlobTocEntry.BLOB_META + ").compressed_size", meta.compressedSize(),
                    "larger than " + MAX_CHUNK_INFO_BYTES + " bytes");
        }
        byte[] ci = chunkInfoArray(file, blob, header);
        List<BlobChunkInfoV1> chunks = new ArrayList<>((int) header.ciEntries());
        ByteBuffer cib = ByteBuffer.wrap(ci);
        for (int i = 0; i < header.ciEntries(); i++) {
            BlobChunkInfoV1 c = BlobChunkInfoV1.decode(cib, i * BlobChunkInfoV1.SIZE);
            if (c.compressedOffset() + c.compressedSize() > data.compressedSize()
                    || c.uncompressedOffset() + c.uncompressedSize() > data.uncompressedSize()) {
                throw new ImageFormatException(file, "blob.meta[" + i + "].compressed_offset", c.compressedOffset(),
                        "chunk (" + c.compressedSize() + " bytes, uncompressed " + c.uncompressedSize() + " at " + c.uncompressedOffset()
                                + ") lies outside image.blob (" + data.compressedSize() + " bytes, uncompressed " + data.uncompressedSize() + ")");
            }
            chunks.add(c);
        }
        if (digests != null && digests.compressedSize() != header.ciEntries() * ChunkInfo.DIGEST_SIZE) {
            throw new ImageFormatException(file, "toc(" + BlobTocEntry.BLOB_DIGEST + ").compressed_size", digests.compressedSize(),
                    "must be " + header.ciEntries() + " digests x " + ChunkInfo.DIGEST_SIZE + " bytes");
        }
        return new Trailer(List.copyOf(toc), header, List.copyOf(chunks), data.compressedSize());
    }

    private static byte[] chunkInfoArray(Path file, FileChannel blob, BlobCompressionContextHeader header) throws IOException {
        int stored = (int) header.ciCompressedSize();
        int size = (int) header.ciUncompressedSize();
        byte[] raw = new byte[stored];
        readAt(blob, header.ciOffset(), stored).get(raw);
        Compression c = Compression.ofCode(header.ciCompressor());
        if (c == null || c == Compression.GZIP) {
            throw new ImageFormatException(file, "blob.meta header.ci_compressor", header.ciCompressor(), "unknown or unsupported compression");
        }
        if (c == Compression.NONE) {
            if (stored != size) {
                throw new ImageFormatException(file, "blob.meta header.ci_compressed_size", stored,
                        "an uncompressed chunk-info array must be " + size + " bytes");
            }
            return raw;
        }
        byte[] out = new byte[size];
        long n;
        try {
            n = c == Compression.ZSTD ? Zstd.decompressByteArray(out, 0, size, raw, 0, stored)
                    : LZ4Factory.fastestInstance().safeDecompressor().decompress(raw, 0, stored, out, 0, size);
        } catch (LZ4Exception | com.github.luben.zstd.ZstdException e) {
            throw new ImageFormatException(file, "blob.meta", stored + " bytes", c.cliName() + " data does not decompress: " + e.getMessage());
        }
        if (n != size) {
            throw new ImageFormatException(file, "blob.meta", stored + " bytes", "decompressed to " + n + " bytes, expected " + size);
        }
        return out;
    }

    private static BlobTarHeader tarHeader(Path file, FileChannel blob, long at, String field) throws IOException {
        try {
            return BlobTarHeader.decode(readAt(blob, at, BlobTarHeader.SIZE), 0);
        } catch (NumberFormatException e) {
            throw new ImageFormatException(file, field + ".size", "at " + at, "not an octal or base-256 number");
        }
    }

    /** {@code length} bytes at {@code position}; the caller has checked they lie inside the file. */
    private static ByteBuffer readAt(FileChannel ch, long position, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (ch.read(b, position + b.position()) < 0) {
                throw new java.io.EOFException("blob ended at " + (position + b.position()));
            }
        }
        return b.flip();
    }
}
