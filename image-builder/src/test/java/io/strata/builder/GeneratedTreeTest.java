package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.BootstrapWalker;
import io.strata.builder.testing.GeneratedTree;
import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.image.ErofsInode;
import io.strata.core.testing.HostTools;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The generated tree with every case, built, composed, exported, mounted and compared. */
class GeneratedTreeTest {
    private static final long BUILD_TIME = 1_750_000_000L;

    @TempDir
    Path tmp;

    // ~30 s on an idle 2-core machine (every case built, exported and mounted): room for a loaded one.
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    @Test
    void everyCaseRoundTripsThroughTheKernel() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path src = GeneratedTree.create(tmp.resolve("src"), BUILD_TIME, true);
        TreeSnapshot expected = TreeSnapshot.of(src);
        Path out = tmp.resolve("out");
        BuildResult r = RoundTrip.build(src, out, BuildOptions.defaults(BUILD_TIME));
        assertEquals(1, r.blobIds().size());
        assertTrue(r.holes() > 5000, "the sparse file's zero chunks are holes: " + r);
        assertTrue(r.deduplicated() >= 6, "copies and repeats are deduplicated: " + r);

        Map<String, ErofsInode> inodes = BootstrapWalker.inodes(r.bootstrap());
        assertTrue(!inodes.get("/compact.txt").extended(), "an inode that fits is compact");
        assertTrue(inodes.get("/big-ids").extended(), "32-bit ids need the extended inode");
        assertTrue(inodes.get("/sparse-5g.img").extended(), "a size over 4 GiB needs the extended inode");
        assertEquals(ErofsInode.LAYOUT_FLAT_PLAIN, inodes.get("/links/sym-long").dataLayout());
        assertEquals(ErofsInode.LAYOUT_FLAT_INLINE, inodes.get("/links/sym-rel").dataLayout());
        assertTrue(inodes.get("/big-dir").size() > 4 * 4096, "big-dir spans several blocks");

        Path disk = RoundTrip.export(out, tmp.resolve("disk.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> TreeAssert.assertSameTree(expected, TreeSnapshot.of(m),
                TreeAssert.Ignore.NOTHING));
    }
}
