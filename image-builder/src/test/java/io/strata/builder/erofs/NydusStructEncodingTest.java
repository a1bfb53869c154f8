package io.strata.builder.erofs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.strata.builder.tree.Name;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.DeviceSlot;
import io.strata.core.image.ErofsChunkIndex;
import io.strata.core.image.ErofsDirent;
import io.strata.core.image.ErofsExtendedInode;
import io.strata.core.image.ErofsSuperblock;
import io.strata.core.image.RafsSuperblockExt;
import io.strata.core.testing.Fixtures;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every structure the builder writes, encoded by the core's classes, must reproduce the bytes
 * nydus-image wrote in the fixture bootstrap (offsets from its hex dump: root directory inode at
 * 0x3000 with its entries inline at 0x3040, file inodes at 0x30a0 and 0x3100 with chunk indexes at
 * 0x30e0 and 0x3140, chunk-info table at 0x4000).
 */
class NydusStructEncodingTest {
    private final byte[] boot;

    NydusStructEncodingTest() throws Exception {
        boot = Files.readAllBytes(Fixtures.nydusBootstrap());
    }

    private String bytes(int at, int len) {
        return HexFormat.of().formatHex(boot, at, at + len);
    }

    private static String hex(ByteBuffer b) {
        return HexFormat.of().formatHex(b.array());
    }

    @Test
    void superblockExtensionAndTables() {
        ByteBuffer in = ByteBuffer.wrap(boot);
        ByteBuffer out = ByteBuffer.allocate(4096);
        ErofsSuperblock.decode(in).encode(out);
        RafsSuperblockExt.decode(in).encode(out);
        DeviceSlot.decode(in, 1408).encode(out, 1408);
        assertEquals(bytes(0, 4096), hex(out));
        ByteBuffer entry = ByteBuffer.allocate(BlobTableEntry.SIZE);
        BlobTableEntry.decode(in, 0x1000).encode(entry, 0);
        assertEquals(bytes(0x1000, BlobTableEntry.SIZE), hex(entry));
        for (int i = 0; i < 2; i++) {
            ByteBuffer c = ByteBuffer.allocate(ChunkInfo.SIZE);
            ChunkInfo.decode(in, 0x4000 + i * ChunkInfo.SIZE).encode(c, 0);
            assertEquals(bytes(0x4000 + i * ChunkInfo.SIZE, ChunkInfo.SIZE), hex(c));
        }
    }

    @Test
    void extendedInodes() {
        for (int at : new int[] {0x3000, 0x30a0, 0x3100}) {
            ByteBuffer out = ByteBuffer.allocate(ErofsExtendedInode.SIZE);
            ErofsExtendedInode.decode(ByteBuffer.wrap(boot), at).encode(out, 0);
            assertEquals(bytes(at, ErofsExtendedInode.SIZE), hex(out), "inode at 0x" + Integer.toHexString(at));
        }
    }

    @Test
    void chunkIndexesAsNydusWritesThem() {
        // lib.rs: chunk 0 of blob 0 at block 0; sync_io.rs: chunk 1 of blob 0 at block 5 (0x5000).
        ByteBuffer out = ByteBuffer.allocate(ErofsChunkIndex.SIZE);
        ErofsChunkIndex.ofChunk(0, 0, 0).encode(out, 0);
        assertEquals(bytes(0x30e0, 8), hex(out));
        ErofsChunkIndex.ofChunk(0, 1, 5).encode(out, 0);
        assertEquals(bytes(0x3140, 8), hex(out));
        assertEquals(ErofsChunkIndex.ofChunk(0, 1, 5), ErofsChunkIndex.decode(ByteBuffer.wrap(boot), 0x3140));
    }

    @Test
    void chunkIndexKeepsNydusChunkIndexBitsAboveTheDeviceByte() {
        ErofsChunkIndex i = ErofsChunkIndex.ofChunk(2, 0x123456, 77);
        assertEquals(0x3456, i.startblkHi());
        assertEquals(0x1203, i.deviceId(), "bits 16-23 of the chunk index above blob index + 1");
    }

    @Test
    void directoryEntriesPackLikeNydus() {
        List<DirEntry> entries = List.of(
                new DirEntry(Name.DOT, 0x80, ErofsDirent.FT_DIR),
                new DirEntry(Name.DOT_DOT, 0x80, ErofsDirent.FT_DIR),
                new DirEntry(Name.of("lib.rs"), 0x85, ErofsDirent.FT_REG_FILE),
                new DirEntry(Name.of("sync_io.rs"), 0x88, ErofsDirent.FT_REG_FILE));
        long size = DirectoryPacker.size(entries.stream().map(DirEntry::name).toList());
        assertEquals(0x43, size, "the root directory's i_size in the fixture");
        assertEquals(bytes(0x3040, 0x43), HexFormat.of().formatHex(DirectoryPacker.encode(entries, size)));
    }
}
