package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Bytes 104..255 of a blob table entry (the tail of Nydus's {@code RafsV6Blob}): where the blob's
 * chunk-info array (blob.meta) and ToC are, so that Nydus's own tools can read the blob without the
 * bootstrap. Strata's read path does not need them; its builder writes them as Nydus does.
 */
public record RafsBlobMetaInfo(
        long blobTocSize,
        int ciCompressor,
        long ciOffset,
        long ciCompressedSize,
        long ciUncompressedSize,
        byte[] blobTocDigest,
        byte[] blobMetaDigest,
        long blobMetaSize,
        byte[] cipherIv,
        int cipherAlgo) {

    /** Size of this part of the entry. */
    public static final int SIZE = BlobTableEntry.SIZE - BlobTableEntry.META_INFO_OFF;
    // Offsets within the 256-byte entry, as in RafsV6Blob.
    static final int BLOB_TOC_SIZE_OFF = 104;
    static final int CI_COMPRESSOR_OFF = 108;
    static final int CI_OFFSET_OFF = 112;
    static final int CI_COMPRESSED_SIZE_OFF = 120;
    static final int CI_UNCOMPRESSED_SIZE_OFF = 128;
    static final int BLOB_TOC_DIGEST_OFF = 136;
    static final int BLOB_META_DIGEST_OFF = 168;
    static final int BLOB_META_SIZE_OFF = 200;
    static final int CIPHER_IV_OFF = 208;
    static final int CIPHER_ALGO_OFF = 216;
    static final int DIGEST_SIZE = 32;
    static final int CIPHER_IV_SIZE = 8;

    /** The bytes stored in {@link BlobTableEntry#metaInfo()}. */
    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        int base = -BlobTableEntry.META_INFO_OFF;
        b.putInt(base + BLOB_TOC_SIZE_OFF, (int) blobTocSize);
        b.putInt(base + CI_COMPRESSOR_OFF, ciCompressor);
        b.putLong(base + CI_OFFSET_OFF, ciOffset);
        b.putLong(base + CI_COMPRESSED_SIZE_OFF, ciCompressedSize);
        b.putLong(base + CI_UNCOMPRESSED_SIZE_OFF, ciUncompressedSize);
        b.put(base + BLOB_TOC_DIGEST_OFF, blobTocDigest, 0, DIGEST_SIZE);
        b.put(base + BLOB_META_DIGEST_OFF, blobMetaDigest, 0, DIGEST_SIZE);
        b.putLong(base + BLOB_META_SIZE_OFF, blobMetaSize);
        b.put(base + CIPHER_IV_OFF, cipherIv, 0, CIPHER_IV_SIZE);
        b.putInt(base + CIPHER_ALGO_OFF, cipherAlgo);
        return b.array();
    }

    public static RafsBlobMetaInfo decode(byte[] metaInfo) {
        if (metaInfo.length != SIZE) {
            throw new IllegalArgumentException("blob meta info is " + SIZE + " bytes, got " + metaInfo.length);
        }
        ByteBuffer b = ByteBuffer.wrap(metaInfo).order(ByteOrder.LITTLE_ENDIAN);
        int base = -BlobTableEntry.META_INFO_OFF;
        byte[] toc = new byte[DIGEST_SIZE];
        byte[] meta = new byte[DIGEST_SIZE];
        byte[] iv = new byte[CIPHER_IV_SIZE];
        b.get(base + BLOB_TOC_DIGEST_OFF, toc);
        b.get(base + BLOB_META_DIGEST_OFF, meta);
        b.get(base + CIPHER_IV_OFF, iv);
        return new RafsBlobMetaInfo(
                Integer.toUnsignedLong(b.getInt(base + BLOB_TOC_SIZE_OFF)),
                b.getInt(base + CI_COMPRESSOR_OFF),
                b.getLong(base + CI_OFFSET_OFF),
                b.getLong(base + CI_COMPRESSED_SIZE_OFF),
                b.getLong(base + CI_UNCOMPRESSED_SIZE_OFF),
                toc, meta,
                b.getLong(base + BLOB_META_SIZE_OFF),
                iv,
                b.getInt(base + CIPHER_ALGO_OFF));
    }
}
