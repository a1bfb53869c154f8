package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.RoundTrip;
import io.strata.core.image.ErofsSuperblock;
import io.strata.core.image.ImageFormatException;
import io.strata.core.image.LegacyBootstrap;
import io.strata.core.image.PrefetchPlan;
import io.strata.core.image.RafsImage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A bootstrap whose directories all list the same entries (each subdirectory's data blocks point at
 * the root's, so every directory holds every directory): walks of the tree were quadratic in it (8,000
 * directories in under 1 MiB took 17-25 s; a few MiB, hours) and are now refused once they read more
 * entries than the bootstrap holds. The image is built, then patched as a hostile one would be.
 */
@Timeout(60)
class HostileBootstrapTest {
    // EROFS on-disk inode fields (fs/erofs/erofs_fs.h, struct erofs_inode_compact/extended).
    private static final int INODE_SLOT = 32;
    private static final int I_FORMAT = 0;
    private static final int I_SIZE = 8;
    private static final int I_RAW_BLKADDR = 16;
    private static final int LAYOUT_FLAT_PLAIN = 0;
    // struct erofs_dirent: nid (u64), nameoff (u16), file_type (u8), reserved (u8).
    private static final int DIRENT_SIZE = 12;
    private static final int FT_DIR = 2;
    private static final int BLOCK = 4096;

    @TempDir
    Path tmp;

    @Test
    void directoriesSharingTheirEntriesAreRefusedNotWalkedForHours() throws Exception {
        Path src = tmp.resolve("src");
        for (int i = 0; i < 3000; i++) {
            Files.createDirectories(src.resolve(String.format("d%04d", i)));
        }
        Files.writeString(src.resolve("data.txt"), "a file, so the image has a blob and a prefetch table");
        Path out = tmp.resolve("out");
        BuildResult r = RoundTrip.build(src, out, BuildOptions.defaults(0).withPrefetch(List.of("/")));
        Path hostile = tmp.resolve("hostile.boot");
        Files.write(hostile, shareRootEntries(Files.readAllBytes(r.bootstrap())));
        Files.createSymbolicLink(tmp.resolve("blobs"), out.resolve("blobs"));

        RafsImage image = RafsImage.open(hostile);
        assertTrue(image.prefetchNids().length > 0, "the prefetch table lists the root");
        ImageFormatException legacy = assertThrows(ImageFormatException.class, () -> LegacyBootstrap.rewrite(image));
        assertTrue(legacy.getMessage().contains("share their entries"), legacy.getMessage());
        ImageFormatException prefetch = assertThrows(ImageFormatException.class, () -> PrefetchPlan.of(image));
        assertTrue(prefetch.getMessage().contains("share their entries"), prefetch.getMessage());
    }

    /** Points every subdirectory of the root at the root's (whole) entry blocks. */
    private static byte[] shareRootEntries(byte[] bootstrap) {
        ByteBuffer b = ByteBuffer.wrap(bootstrap).order(ByteOrder.LITTLE_ENDIAN);
        ErofsSuperblock sb = ErofsSuperblock.decode(b);
        long meta = sb.metaBlkaddr() * BLOCK;
        int root = (int) (meta + (long) sb.rootNid() * INODE_SLOT);
        boolean rootExtended = (b.getShort(root + I_FORMAT) & 1) != 0;
        long rootSize = rootExtended ? b.getLong(root + I_SIZE) : Integer.toUnsignedLong(b.getInt(root + I_SIZE));
        int rootBlk = b.getInt(root + I_RAW_BLKADDR);
        int fullBlocks = (int) (rootSize / BLOCK);
        assertTrue(fullBlocks >= 2, "the root's entries fill whole blocks: " + rootSize);
        int patched = 0;
        for (int blk = 0; blk < fullBlocks; blk++) {
            int base = (rootBlk + blk) * BLOCK;
            int count = Short.toUnsignedInt(b.getShort(base + 8)) / DIRENT_SIZE;
            for (int i = 0; i < count; i++) {
                int e = base + i * DIRENT_SIZE;
                if (b.get(e + 10) != FT_DIR) {
                    continue;
                }
                long nid = b.getLong(e);
                if (nid == sb.rootNid()) {
                    continue; // ".."
                }
                int at = (int) (meta + nid * INODE_SLOT);
                if (b.getInt(at + I_RAW_BLKADDR) == rootBlk) {
                    continue; // "." of the root
                }
                boolean extended = (b.getShort(at + I_FORMAT) & 1) != 0;
                b.putShort(at + I_FORMAT, (short) ((extended ? 1 : 0) | LAYOUT_FLAT_PLAIN << 1));
                if (extended) {
                    b.putLong(at + I_SIZE, (long) fullBlocks * BLOCK);
                } else {
                    b.putInt(at + I_SIZE, fullBlocks * BLOCK);
                }
                b.putInt(at + I_RAW_BLKADDR, rootBlk);
                patched++;
            }
        }
        assertTrue(patched > 1000, "subdirectories patched: " + patched);
        return bootstrap;
    }
}
