package io.strata.builder.data;

import io.strata.core.image.BlobChunkInfoV1;
import io.strata.core.image.BlobCompressionContextHeader;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.BlobTarHeader;
import io.strata.core.image.BlobTocEntry;
import io.strata.core.image.Compression;
import io.strata.core.image.RafsBlobMetaInfo;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.List;

/**
 * What follows the chunk data in a data blob, laid out as nydus-image (2.2+) writes it, each item
 * with a tar header behind it ({@code builder/src/core/blob.rs}, {@code builder/src/lib.rs}
 * {@code dump_toc}):
 * <pre>
 *   chunk data | tar "image.blob"
 *   | chunk-info array (blob.meta, compressed when that is smaller) | blob.meta header (4 KiB) | tar "blob.meta"
 *   | chunk digests (32 B each, in chunk-index order) | tar "blob.digest"
 *   | ToC (image.blob, blob.meta, blob.meta.header, blob.digest; 128 B each) | tar "rafs.blob.toc"
 * </pre>
 * Nydus's tools find the ToC from the blob's end; the bootstrap's blob table records where the
 * chunk-info array and the ToC are ({@link RafsBlobMetaInfo}).
 */
public final class BlobTrailer {
    /** The blob feature bits of such a blob (Nydus writes 0x70000021). */
    public static final int FEATURES = BlobTableEntry.FEATURE_ALIGNED | BlobTableEntry.FEATURE_INLINED_CHUNK_DIGEST
            | BlobTableEntry.FEATURE_HAS_TAR_HEADER | BlobTableEntry.FEATURE_HAS_TOC | BlobTableEntry.FEATURE_CAP_TAR_TOC;

    private BlobTrailer() {
    }

    /** The trailer's bytes and the blob-table fields that locate its parts. */
    public record Built(byte[] bytes, RafsBlobMetaInfo metaInfo) {
    }

    /**
     * Builds the trailer of a blob whose chunk data is {@code dataSize} bytes.
     *
     * @param dataHash sha256 over the chunk data so far (a copy; it is updated here)
     * @param uncompressedSize the blob's 4 KiB-aligned uncompressed size
     * @param chunks the blob's chunks in index order
     * @param compression the blob's chunk compression, also tried on the chunk-info array
     */
    public static Built build(long dataSize, MessageDigest dataHash, long uncompressedSize, List<StoredChunk> chunks,
                              Compression compression, int level) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] rawHeader = new BlobTarHeader(BlobTocEntry.BLOB_RAW, dataSize).encode();
        out.writeBytes(rawHeader);
        dataHash.update(rawHeader);
        BlobTocEntry rawEntry = new BlobTocEntry(BlobTocEntry.COMPRESSION_NONE, BlobTocEntry.BLOB_RAW, dataHash.digest(),
                0, dataSize, uncompressedSize);

        // blob.meta: the chunk-info array, compressed like the chunks when that makes it smaller.
        ByteBuffer ci = ByteBuffer.allocate(chunks.size() * BlobChunkInfoV1.SIZE);
        for (int i = 0; i < chunks.size(); i++) {
            StoredChunk c = chunks.get(i);
            new BlobChunkInfoV1(c.compressedOffset(), c.compressedSize(), c.uncompressedOffset(), c.uncompressedSize())
                    .encode(ci, i * BlobChunkInfoV1.SIZE);
        }
        byte[] ciRaw = ci.array();
        byte[] ciPacked = ChunkCompressor.create(compression, level).compress(ciRaw, ciRaw.length);
        Compression ciCompression = ciPacked == null ? Compression.NONE : compression;
        byte[] ciStored = ciPacked == null ? ciRaw : ciPacked;
        long ciOffset = dataSize + rawHeader.length;
        out.writeBytes(ciStored);
        BlobCompressionContextHeader header = new BlobCompressionContextHeader(FEATURES, ciCompression.code,
                chunks.size(), ciOffset, ciStored.length, ciRaw.length);
        byte[] headerBytes = header.encode();
        out.writeBytes(headerBytes);
        out.writeBytes(new BlobTarHeader(BlobTocEntry.BLOB_META, ciStored.length + (long) headerBytes.length).encode());
        BlobTocEntry metaEntry = new BlobTocEntry(BlobTocEntry.flagFor(ciCompression), BlobTocEntry.BLOB_META,
                sha256(ciRaw), ciOffset, ciStored.length, ciRaw.length);
        BlobTocEntry headerEntry = new BlobTocEntry(BlobTocEntry.COMPRESSION_NONE, BlobTocEntry.BLOB_META_HEADER,
                sha256(headerBytes), ciOffset + ciStored.length, headerBytes.length, headerBytes.length);

        // blob.digest: every chunk's digest, in chunk-index order.
        long digestOffset = dataSize + out.size();
        byte[] digests = new byte[chunks.size() * ChunkHasher.DIGEST_SIZE];
        for (int i = 0; i < chunks.size(); i++) {
            System.arraycopy(chunks.get(i).digest(), 0, digests, i * ChunkHasher.DIGEST_SIZE, ChunkHasher.DIGEST_SIZE);
        }
        out.writeBytes(digests);
        out.writeBytes(new BlobTarHeader(BlobTocEntry.BLOB_DIGEST, digests.length).encode());
        BlobTocEntry digestEntry = new BlobTocEntry(BlobTocEntry.COMPRESSION_NONE, BlobTocEntry.BLOB_DIGEST,
                sha256(digests), digestOffset, digests.length, digests.length);

        // The ToC and its tar header end the blob; the blob table keeps the sha256 of both.
        List<BlobTocEntry> toc = List.of(rawEntry, metaEntry, headerEntry, digestEntry);
        ByteBuffer tocBytes = ByteBuffer.allocate(toc.size() * BlobTocEntry.SIZE);
        for (int i = 0; i < toc.size(); i++) {
            toc.get(i).encode(tocBytes, i * BlobTocEntry.SIZE);
        }
        byte[] tocHeader = new BlobTarHeader(BlobTocEntry.BLOB_TOC, tocBytes.capacity()).encode();
        out.writeBytes(tocBytes.array());
        out.writeBytes(tocHeader);
        MessageDigest tocHash = ChunkHasher.sha256();
        tocHash.update(tocBytes.array());
        tocHash.update(tocHeader);

        RafsBlobMetaInfo meta = new RafsBlobMetaInfo(tocBytes.capacity() + (long) tocHeader.length, ciCompression.code,
                ciOffset, ciStored.length, ciRaw.length, tocHash.digest(), new byte[32], 0, new byte[8], 0);
        return new Built(out.toByteArray(), meta);
    }

    private static byte[] sha256(byte[] data) {
        return ChunkHasher.sha256().digest(data);
    }
}
