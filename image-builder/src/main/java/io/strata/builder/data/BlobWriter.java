package io.strata.builder.data;

import io.strata.core.image.Compression;
import io.strata.core.image.ErofsChunkIndex;
import io.strata.core.image.RafsImage;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Writes one data blob: chunks appended in commit order, each given the next 4 KiB-aligned range of
 * the blob's uncompressed address space, then the Nydus trailer. The blob id is the sha256 of the
 * whole file, computed as it is written.
 */
final class BlobWriter implements AutoCloseable {
    private static final int BUFFER = 1 << 20;

    private final Path file;
    private final int blobIndex;
    private final Compression compression;
    private final int level;
    private final MessageDigest fileHash = ChunkHasher.sha256();
    private final FileChannel channel;
    private final OutputStream out;
    private final List<StoredChunk> chunks = new ArrayList<>();
    private long compressedEnd;
    private long uncompressedEnd;

    BlobWriter(Path file, int blobIndex, Compression compression, int level) throws IOException {
        this.file = file;
        this.blobIndex = blobIndex;
        this.compression = compression;
        this.level = level;
        this.channel = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        this.out = new BufferedOutputStream(Channels.newOutputStream(channel), BUFFER);
    }

    int blobIndex() {
        return blobIndex;
    }

    /** Appends a chunk: {@code stored} holds its compressed bytes, or the raw bytes when not compressed. */
    StoredChunk append(byte[] stored, int storedLength, boolean compressed, int uncompressedSize, byte[] digest)
            throws IOException {
        if (chunks.size() > ErofsChunkIndex.MAX_CHUNK_INDEX) {
            throw new IOException("blob " + blobIndex + " would hold more than " + (ErofsChunkIndex.MAX_CHUNK_INDEX + 1)
                    + " chunks, the most a RAFS chunk index can address; use a larger --chunk-size");
        }
        StoredChunk c = new StoredChunk(blobIndex, chunks.size(), digest, compressedEnd, storedLength, uncompressedEnd,
                uncompressedSize, compressed);
        out.write(stored, 0, storedLength);
        fileHash.update(stored, 0, storedLength);
        compressedEnd += storedLength;
        uncompressedEnd += (uncompressedSize + RafsImage.BLOCK_SIZE - 1) & -RafsImage.BLOCK_SIZE;
        chunks.add(c);
        return c;
    }

    /** Writes the trailer and closes the file. */
    FinishedBlob finish() throws IOException {
        MessageDigest dataHash;
        try {
            dataHash = (MessageDigest) fileHash.clone();
        } catch (CloneNotSupportedException e) {
            throw new IllegalStateException("SHA-256 digest cannot be cloned", e);
        }
        BlobTrailer.Built trailer = BlobTrailer.build(compressedEnd, dataHash, uncompressedEnd, chunks, compression, level);
        out.write(trailer.bytes());
        fileHash.update(trailer.bytes());
        out.close(); // the output directory makes it durable before renaming it into place
        long size = compressedEnd + trailer.bytes().length;
        if (Files.size(file) != size) {
            throw new IOException(file + ": wrote " + Files.size(file) + " bytes, expected " + size);
        }
        return new FinishedBlob(file, HexFormat.of().formatHex(fileHash.digest()), blobIndex, size, uncompressedEnd,
                chunks.size(), trailer.metaInfo());
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
