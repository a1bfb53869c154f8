package io.strata.core.verity;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Builds a dm-verity hash tree for {@code dataBlocks} 4 KiB blocks, written into a file at
 * {@code treeOffset}. Feed the data blocks in order with {@link #addDataBlock}; {@link #finish}
 * hashes the upper levels from the file and returns the root hash.
 *
 * <p>Level geometry (shared by both layouts, cryptsetup {@code hash_levels}): with 128 digests per
 * block, level i (0 = hashes of data) has {@code ceil(blocks / 128^(i+1))} blocks, and the levels
 * are stored from the top one down.
 */
public final class VerityTree {
    public static final int BLOCK_SIZE = 4096;
    public static final int DIGEST_SIZE = 32;
    public static final int DIGESTS_PER_BLOCK = BLOCK_SIZE / DIGEST_SIZE;

    private final VerityLayout layout;
    private final long dataBlocks;
    private final FileChannel file;
    private final long treeOffset;
    private final int levels;
    /** Block offset of each level inside the tree (level 0 = lowest). */
    private final long[] levelStart;
    private final long[] levelBlocks;
    private final MessageDigest sha256;
    private final byte[] zeroBlockDigest;
    private final ByteBuffer pending = ByteBuffer.allocate(BLOCK_SIZE);
    private long pendingBlock;
    private long fed;
    private byte[] singleBlockDigest;

    public VerityTree(VerityLayout layout, long dataBlocks, FileChannel file, long treeOffset) {
        this.layout = layout;
        this.dataBlocks = dataBlocks;
        this.file = file;
        this.treeOffset = treeOffset;
        try {
            this.sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        this.zeroBlockDigest = sha256.digest(new byte[BLOCK_SIZE]);
        int l = 0;
        while (l * 7 < 64 && ((dataBlocks - 1) >>> (7 * l)) != 0) {
            l++;
        }
        this.levels = dataBlocks == 0 ? 0 : l;
        this.levelStart = new long[levels];
        this.levelBlocks = new long[levels];
        long position = 0;
        for (int i = levels - 1; i >= 0; i--) {
            int shift = 7 * (i + 1);
            long blocks = shift >= 63 ? 1 : (dataBlocks + (1L << shift) - 1) >>> shift;
            levelStart[i] = position;
            levelBlocks[i] = blocks;
            position += blocks;
        }
    }

    /** Bytes the tree occupies after the data. */
    public long treeBytes() {
        long total = 0;
        for (long b : levelBlocks) {
            total += b;
        }
        return total * BLOCK_SIZE;
    }

    /** Adds the next data block (exactly 4096 bytes from {@code block}'s position). */
    public void addDataBlock(ByteBuffer block) throws IOException {
        sha256.update(block);
        byte[] d = sha256.digest();
        if (levels == 0) {
            singleBlockDigest = d;
        } else {
            appendDigest(d);
        }
        fed++;
    }

    private void appendDigest(byte[] digest) throws IOException {
        pending.put(digest);
        if (!pending.hasRemaining()) {
            flushPending();
        }
    }

    private void flushPending() throws IOException {
        padBlock(pending);
        pending.flip();
        writeFully(pending, treeOffset + (levelStart[0] + pendingBlock) * BLOCK_SIZE);
        pending.clear();
        pendingBlock++;
    }

    private void padBlock(ByteBuffer b) {
        while (b.hasRemaining()) {
            if (layout == VerityLayout.NYDUS) {
                b.put(zeroBlockDigest, 0, Math.min(DIGEST_SIZE, b.remaining()));
            } else {
                b.put((byte) 0);
            }
        }
    }

    private void writeFully(ByteBuffer b, long position) throws IOException {
        long p = position;
        while (b.hasRemaining()) {
            p += file.write(b, p);
        }
    }

    /** Writes the upper levels and returns the root hash. */
    public byte[] finish() throws IOException {
        if (fed != dataBlocks) {
            throw new IllegalStateException("fed " + fed + " of " + dataBlocks + " data blocks");
        }
        if (dataBlocks == 0) {
            return zeroBlockDigest.clone();
        }
        if (levels == 0) {
            return singleBlockDigest;
        }
        if (pending.position() > 0) {
            flushPending();
        }
        ByteBuffer block = ByteBuffer.allocate(BLOCK_SIZE);
        for (int level = 1; level < levels; level++) {
            ByteBuffer out = ByteBuffer.allocate(BLOCK_SIZE);
            long outBlock = 0;
            for (long i = 0; i < levelBlocks[level - 1]; i++) {
                block.clear();
                readFully(block, treeOffset + (levelStart[level - 1] + i) * BLOCK_SIZE);
                block.flip();
                sha256.update(block);
                out.put(sha256.digest());
                if (!out.hasRemaining()) {
                    out.flip();
                    writeFully(out, treeOffset + (levelStart[level] + outBlock++) * BLOCK_SIZE);
                    out.clear();
                }
            }
            if (out.position() > 0) {
                padBlock(out);
                out.flip();
                writeFully(out, treeOffset + (levelStart[level] + outBlock) * BLOCK_SIZE);
            }
        }
        block.clear();
        readFully(block, treeOffset + levelStart[levels - 1] * BLOCK_SIZE);
        block.flip();
        sha256.update(block);
        return sha256.digest();
    }

    private void readFully(ByteBuffer b, long position) throws IOException {
        long p = position;
        while (b.hasRemaining()) {
            int n = file.read(b, p);
            if (n < 0) {
                throw new IOException("hash tree block at " + p + " is missing");
            }
            p += n;
        }
    }
}
