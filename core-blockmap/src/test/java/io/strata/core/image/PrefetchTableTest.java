package io.strata.core.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.chunk.ChunkTable;
import io.strata.core.testing.Fixtures;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The RAFS v6 prefetch table, read from Nydus's own image (which has none) and from copies of it
 * given a table where Nydus's builder puts one (right after the blob table), and refused when bad.
 */
@Timeout(30)
class PrefetchTableTest {
    @TempDir
    Path tmp;

    @Test
    void nydusFixtureWithoutATableReadsAsEmpty() throws IOException {
        RafsImage image = RafsImage.open(Fixtures.nydusBootstrap());
        assertEquals(0, image.ext().prefetchTableSize());
        assertEquals(0, image.prefetchNids().length);
        PrefetchPlan plan = PrefetchPlan.of(image);
        assertTrue(plan.entries().isEmpty() && plan.chunks().isEmpty());
        assertEquals(0, plan.compressedBytes());
    }

    @Test
    void aTableNamingTheRootPlansEveryChunkOnceAndAFileOnlyItsOwn() throws IOException {
        RafsImage original = RafsImage.open(Fixtures.nydusBootstrap());
        int root = original.superblock().rootNid();
        ChunkTable table = ChunkTable.buildAll(original)[0];

        // The root directory: every file below it, each chunk once, in the blob's chunk set.
        RafsImage withRoot = RafsImage.open(withTable(root));
        assertArrayEquals(new long[] {root}, withRoot.prefetchNids());
        PrefetchPlan all = PrefetchPlan.of(withRoot);
        assertEquals(List.of(new PrefetchPlan.Entry(root, "/", true)), all.entries());
        assertEquals(table.size(), all.chunks().size(), "every unique chunk of the image: " + all.chunks());
        Set<Long> offsets = new HashSet<>();
        for (PrefetchPlan.Chunk c : all.chunks()) {
            assertEquals(0, c.blob());
            assertTrue(offsets.add(c.compressedOffset()), "each chunk once: " + all.chunks());
        }

        // A file: its path found through the tree, only its own chunks.
        ByteBuffer data = ByteBuffer.wrap(Files.readAllBytes(Fixtures.nydusBootstrap())).order(ByteOrder.LITTLE_ENDIAN);
        ErofsInode rootInode = LegacyBootstrap.decodeChecked(original, data, original.superblock(), root);
        ErofsDirent file = null;
        for (ErofsDirent d : LegacyBootstrap.directoryEntries(original, data, rootInode)) {
            if (d.fileType() == ErofsDirent.FT_REG_FILE) {
                ErofsInode in = LegacyBootstrap.decodeChecked(original, data, original.superblock(), d.nid());
                if (in.size() > 0 && (file == null)) {
                    file = d;
                }
            }
        }
        assertTrue(file != null, "the fixture has a non-empty file in its root");
        ErofsInode fileInode = LegacyBootstrap.decodeChecked(original, data, original.superblock(), file.nid());
        PrefetchPlan one = PrefetchPlan.of(RafsImage.open(withTable(file.nid(), root)));
        assertEquals(new PrefetchPlan.Entry(file.nid(), "/" + file.name(), false), one.entries().get(0));
        // Table order: the file's chunks come first, then the rest of the tree's (the file not again).
        assertEquals(all.chunks().size(), one.chunks().size());
        long fileChunks = fileInode.chunkCount();
        assertTrue(fileChunks >= 1 && fileChunks <= one.chunks().size());
        PrefetchPlan.Chunk first = one.chunks().get(0);
        ErofsChunkIndex idx = ErofsChunkIndex.decode(data, (int) fileInode.chunkIndexOffset());
        int c = table.find(idx.blkaddr() * RafsImage.BLOCK_SIZE);
        assertEquals(table.compressedOffset(c), first.compressedOffset(), "the file's first chunk leads the plan");

        // The prefetcher's plan (tables given, no paths): the same chunks in the same order, entries without paths.
        RafsImage again = RafsImage.open(withTable(file.nid(), root));
        PrefetchPlan quick = PrefetchPlan.of(again, ChunkTable.buildAll(again), false);
        assertEquals(one.chunks(), quick.chunks());
        assertEquals(List.of(new PrefetchPlan.Entry(file.nid(), null, false), new PrefetchPlan.Entry(root, null, true)), quick.entries());
    }

    @Test
    void badTablesAreRefusedNamingTheField() throws IOException {
        RafsImage original = RafsImage.open(Fixtures.nydusBootstrap());
        long off = original.ext().blobTableOffset() + original.ext().blobTableSize();
        int root = original.superblock().rootNid();

        ImageFormatException size = assertThrows(ImageFormatException.class,
                () -> RafsImage.open(patch(off, 6, root)));
        assertTrue(size.getMessage().contains("rafs_ext.prefetch_table_size = 6"), size.getMessage());

        ImageFormatException outside = assertThrows(ImageFormatException.class,
                () -> RafsImage.open(patch(original.fileSize() - 4, 8, root)));
        assertTrue(outside.getMessage().contains("rafs_ext.prefetch_table_offset"), outside.getMessage());

        long slots = (original.fileSize() - original.superblock().metaBlkaddr() * RafsImage.BLOCK_SIZE) / ErofsInode.SLOT_SIZE;
        ImageFormatException past = assertThrows(ImageFormatException.class, () -> RafsImage.open(withTable(slots)));
        assertTrue(past.getMessage().contains("prefetch_table[0] = " + slots) && past.getMessage().contains("outside"),
                past.getMessage());

        // The last slot of the file is zero padding: no inode there.
        ImageFormatException empty = assertThrows(ImageFormatException.class, () -> RafsImage.open(withTable(root, slots - 1)));
        assertTrue(empty.getMessage().contains("prefetch_table[1] = " + (slots - 1)) && empty.getMessage().contains("names no inode"),
                empty.getMessage());
        assertTrue(empty.getMessage().startsWith(tmp.toString()), "names the file: " + empty.getMessage());
    }

    /** The fixture with a prefetch table of {@code nids} right after its blob table, as Nydus writes one. */
    private Path withTable(long... nids) throws IOException {
        RafsImage original = RafsImage.open(Fixtures.nydusBootstrap());
        long off = original.ext().blobTableOffset() + original.ext().blobTableSize();
        byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < nids.length; i++) {
            buf.putInt((int) off + 4 * i, (int) nids[i]);
        }
        return write(b, off, nids.length * 4L);
    }

    private Path patch(long offset, long size, int nid) throws IOException {
        byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
        if (offset + 4 <= b.length) {
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt((int) offset, nid);
        }
        return write(b, offset, size);
    }

    private Path write(byte[] b, long offset, long size) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(RafsSuperblockExt.OFFSET + RafsSuperblockExt.PREFETCH_TABLE_OFFSET_OFF, offset);
        buf.putInt(RafsSuperblockExt.OFFSET + RafsSuperblockExt.PREFETCH_TABLE_SIZE_OFF, (int) size);
        Path p = Files.createTempFile(tmp, "prefetch", ".boot");
        Files.write(p, b);
        return p;
    }
}
