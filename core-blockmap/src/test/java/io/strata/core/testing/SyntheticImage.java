package io.strata.core.testing;

import com.github.luben.zstd.Zstd;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DeviceSlot;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.image.ErofsSuperblock;
import io.strata.core.image.RafsSuperblockExt;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import net.jpountz.lz4.LZ4Factory;
import org.bouncycastle.crypto.digests.Blake3Digest;

/**
 * Writes small RAFS v6 images for tests and benchmarks: real bootstrap structures (written with the
 * core's own struct classes), blobs of independently compressed chunks, holes between chunks, and the
 * flat device's expected bytes to compare reads against. It has a root directory and no files: the
 * image builder (a later issue) makes mountable images; this makes block maps.
 */
public final class SyntheticImage {
    private static final int BLOCK = 4096;
    /** Nydus aligns each blob's start on the flat device to 512 KiB. */
    private static final long MAPPED_ALIGN_BLOCKS = 128;

    /** One chunk to write: its uncompressed bytes, how to compress it, and an optional hole before it. */
    public record Chunk(byte[] data, Compression compression, int holeBlocksBefore) {
    }

    /** One blob: its chunks in uncompressed order, and its chunk size. */
    public record Blob(List<Chunk> chunks, int chunkSize, DigestAlgorithm digest) {
    }

    /** A written image: where it is and what the flat device must read as. */
    public record Written(Path bootstrap, Path blobDir, List<String> blobIds, List<Long> blobOffsets,
                          byte[] expectedDevice, List<List<ChunkInfo>> chunks) {
        public Path blobPath(int i) {
            return blobDir.resolve(blobIds.get(i));
        }
    }

    private SyntheticImage() {
    }

    /** Deterministic, moderately compressible bytes (text-like runs), so every codec has work to do. */
    public static byte[] content(Random random, int size) {
        byte[] out = new byte[size];
        String[] words = {"strata ", "block ", "device ", "chunk ", "erofs ", "nydus ", "layer ", "cache "};
        int i = 0;
        while (i < size) {
            if (random.nextInt(8) == 0) {
                out[i++] = (byte) random.nextInt(256);
                continue;
            }
            byte[] w = words[random.nextInt(words.length)].getBytes();
            for (int k = 0; k < w.length && i < size; k++) {
                out[i++] = w[k];
            }
        }
        return out;
    }

    /** A blob of {@code count} full chunks of {@code chunkSize}, all with one compression, no holes. */
    public static Blob uniformBlob(Random random, int count, int chunkSize, Compression c, DigestAlgorithm d) {
        List<Chunk> chunks = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            chunks.add(new Chunk(content(random, chunkSize), c, 0));
        }
        return new Blob(chunks, chunkSize, d);
    }

    public static Written write(Path dir, List<Blob> blobs) throws IOException {
        Path blobDir = Files.createDirectories(dir.resolve("blobs"));
        int n = blobs.size();
        List<String> ids = new ArrayList<>();
        List<List<ChunkInfo>> infos = new ArrayList<>();
        List<long[]> sizes = new ArrayList<>(); // {compressed, uncompressed space}
        List<byte[]> uncompressedSpaces = new ArrayList<>();
        long chunkIndex = 0;
        for (int b = 0; b < n; b++) {
            Blob blob = blobs.get(b);
            ByteArrayOutputStream compressed = new ByteArrayOutputStream();
            ByteArrayOutputStream space = new ByteArrayOutputStream();
            List<ChunkInfo> mine = new ArrayList<>();
            for (Chunk c : blob.chunks()) {
                space.write(new byte[c.holeBlocksBefore() * BLOCK]);
                long uoff = space.size();
                byte[] stored = compress(c.compression(), c.data());
                boolean isCompressed = c.compression() != Compression.NONE;
                mine.add(new ChunkInfo(digest(blob.digest(), c.data()), b, isCompressed ? ChunkInfo.FLAG_COMPRESSED : 0,
                        stored.length, c.data().length, compressed.size(), uoff, 0, chunkIndex++, 0));
                compressed.write(stored);
                space.write(c.data());
                space.write(new byte[(int) (-space.size() & (BLOCK - 1))]);
            }
            byte[] blobBytes = compressed.toByteArray();
            String id = HexFormat.of().formatHex(MessageDigestSha256(blobBytes));
            Files.write(blobDir.resolve(id), blobBytes);
            ids.add(id);
            infos.add(mine);
            sizes.add(new long[] {blobBytes.length, space.size()});
            uncompressedSpaces.add(space.toByteArray());
        }

        // Bootstrap layout: block 0 (superblock, ext, device table), blob table, meta block with a
        // root directory, chunk table.
        int devtOff = RafsSuperblockExt.OFFSET + RafsSuperblockExt.SIZE;
        long blobTableOff = align(devtOff + (long) n * DeviceSlot.SIZE, BLOCK);
        long metaOff = align(blobTableOff + (long) n * BlobTableEntry.SIZE, BLOCK);
        long chunkTableOff = metaOff + BLOCK;
        int totalChunks = infos.stream().mapToInt(List::size).sum();
        long bootstrapSize = align(chunkTableOff + (long) totalChunks * ChunkInfo.SIZE, BLOCK);
        ByteBuffer boot = ByteBuffer.allocate((int) bootstrapSize).order(ByteOrder.LITTLE_ENDIAN);

        long mapped = align(bootstrapSize / BLOCK, MAPPED_ALIGN_BLOCKS);
        List<Long> offsets = new ArrayList<>();
        long maxChunk = 0;
        for (int b = 0; b < n; b++) {
            long blocks = sizes.get(b)[1] / BLOCK;
            new DeviceSlot(ids.get(b), blocks, mapped).encode(boot, devtOff + b * DeviceSlot.SIZE);
            Blob blob = blobs.get(b);
            Compression blobCompression = blob.chunks().isEmpty() ? Compression.NONE : blob.chunks().get(0).compression();
            new BlobTableEntry(ids.get(b), b, blob.chunkSize(), infos.get(b).size(), blobCompression.code,
                    blob.digest().code, 0, sizes.get(b)[0], sizes.get(b)[1], new byte[BlobTableEntry.SIZE - 104])
                    .encode(boot, (int) (blobTableOff + (long) b * BlobTableEntry.SIZE));
            offsets.add(mapped * BLOCK);
            mapped = align(mapped + blocks, MAPPED_ALIGN_BLOCKS);
            maxChunk = Math.max(maxChunk, blob.chunkSize());
        }
        int at = (int) chunkTableOff;
        for (List<ChunkInfo> list : infos) {
            for (ChunkInfo c : list) {
                c.encode(boot, at);
                at += ChunkInfo.SIZE;
            }
        }
        writeRootDirectory(boot, (int) metaOff);
        long flags = (n == 0 ? Compression.NONE : blobs.get(0).chunks().isEmpty() ? Compression.NONE
                : blobs.get(0).chunks().get(0).compression()).superFlag
                | (n == 0 ? DigestAlgorithm.BLAKE3 : blobs.get(0).digest()).superFlag;
        new RafsSuperblockExt(flags, blobTableOff, (long) n * BlobTableEntry.SIZE, Math.max(maxChunk, BLOCK),
                chunkTableOff, (long) totalChunks * ChunkInfo.SIZE, 0, 0).encode(boot);
        new ErofsSuperblock(0, ErofsSuperblock.COMPAT_RAFS_V6, 12, 0, ROOT_NID, 1, 0, 0, bootstrapSize / BLOCK,
                metaOff / BLOCK, 0, new byte[16], new byte[16],
                ErofsSuperblock.INCOMPAT_CHUNKED_FILE | ErofsSuperblock.INCOMPAT_DEVICE_TABLE, 0, n,
                devtOff / ErofsSuperblock.DEVICE_SLOT_UNIT, 0).encode(boot);
        Path bootstrap = dir.resolve("bootstrap");
        Files.write(bootstrap, boot.array());

        long deviceSize = n == 0 ? bootstrapSize : offsets.get(n - 1) + sizes.get(n - 1)[1];
        byte[] expected = new byte[(int) deviceSize];
        System.arraycopy(boot.array(), 0, expected, 0, (int) bootstrapSize);
        for (int b = 0; b < n; b++) {
            byte[] space = uncompressedSpaces.get(b);
            System.arraycopy(space, 0, expected, (int) (long) offsets.get(b), space.length);
        }
        return new Written(bootstrap, blobDir, ids, offsets, expected, infos);
    }

    private static final int ROOT_NID = 1;

    /** A compact FLAT_INLINE directory inode at nid 1 holding "." and "..", both pointing to itself. */
    private static void writeRootDirectory(ByteBuffer boot, int metaOff) {
        int inode = metaOff + ROOT_NID * 32;
        int dirSize = 2 * 12 + 1 + 2;
        boot.putShort(inode, (short) (2 << 1));          // compact, FLAT_INLINE
        boot.putShort(inode + 4, (short) 0x41ed);         // drwxr-xr-x
        boot.putShort(inode + 6, (short) 2);              // nlink
        boot.putInt(inode + 8, dirSize);
        boot.putInt(inode + 20, 1);                       // ino
        int d = inode + 32;
        boot.putLong(d, ROOT_NID);
        boot.putShort(d + 8, (short) 24);
        boot.put(d + 10, (byte) 2);
        boot.putLong(d + 12, ROOT_NID);
        boot.putShort(d + 20, (short) 25);
        boot.put(d + 22, (byte) 2);
        boot.put(d + 24, (byte) '.');
        boot.put(d + 25, (byte) '.');
        boot.put(d + 26, (byte) '.');
    }

    static long align(long v, long a) {
        return (v + a - 1) / a * a;
    }

    public static byte[] compress(Compression c, byte[] data) {
        switch (c) {
            case NONE:
                return data.clone();
            case LZ4_BLOCK:
                return LZ4Factory.fastestInstance().fastCompressor().compress(data);
            case ZSTD:
                return Zstd.compress(data, 3);
            default:
                throw new IllegalArgumentException(c.toString());
        }
    }

    public static byte[] digest(DigestAlgorithm d, byte[] data) {
        if (d == DigestAlgorithm.SHA256) {
            return MessageDigestSha256(data);
        }
        Blake3Digest b3 = new Blake3Digest(256);
        b3.update(data, 0, data.length);
        byte[] out = new byte[32];
        b3.doFinal(out, 0);
        return out;
    }

    @SuppressWarnings("checkstyle:MethodName")
    private static byte[] MessageDigestSha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
