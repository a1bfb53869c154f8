package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.chunk.ChunkTable;
import io.strata.core.image.PrefetchPlan;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --prefetch}: the builder writes the RAFS prefetch table where Nydus puts it (right after
 * the blob table, before the inodes), the core reads it back as the listed inodes, the plan names
 * exactly the listed files' chunks (a directory: everything below it), and the image still mounts
 * with the kernel's EROFS with every file's bytes equal.
 */
@Timeout(120)
class PrefetchTableBuildTest {
    @TempDir
    Path tmp;

    private static void file(Path p, int size, Random r) throws Exception {
        Files.createDirectories(p.getParent());
        byte[] b = new byte[size];
        r.nextBytes(b);
        Files.write(p, b);
    }

    @Test
    void tableIsWrittenReadPlannedAndTheImageStillMounts() throws Exception {
        Random r = new Random(9);
        Path src = tmp.resolve("src");
        file(src.resolve("a/x"), 3 * 65536 + 100, r);
        file(src.resolve("a/y"), 4000, r);
        file(src.resolve("a/deep/w"), 70000, r);
        file(src.resolve("b/z"), 2 * 65536, r);
        file(src.resolve("c"), 5 * 65536, r);
        Files.createDirectories(src.resolve("empty"));
        Files.write(src.resolve("zero"), new byte[0]);

        RoundTrip.Warnings warnings = new RoundTrip.Warnings();
        Path out = tmp.resolve("out");
        BuildOptions options = BuildOptions.defaults(1_750_000_000L).withChunkSize(65536).withThreads(1)
                .withPrefetch(List.of("b/z", "/a", "", "no/such/file", "a/x", "zero"));
        ImageBuilder.build(src, out, options, warnings);
        assertEquals(3, warnings.messages.size(), warnings.messages.toString());
        assertTrue(warnings.messages.get(0).contains("'no/such/file' is not in the image"), warnings.messages.toString());
        assertTrue(warnings.messages.get(1).contains("'a/x' is covered by an earlier entry"), warnings.messages.toString());
        assertTrue(warnings.messages.get(2).contains("'zero' is an empty file"), warnings.messages.toString());

        RafsImage image = RafsImage.open(out.resolve("bootstrap"));
        // Where Nydus puts it: right after the blob table, 4 bytes per entry, inodes after it.
        assertEquals(image.ext().blobTableOffset() + image.ext().blobTableSize(), image.ext().prefetchTableOffset());
        assertEquals(8, image.ext().prefetchTableSize());
        assertTrue(image.superblock().metaBlkaddr() * RafsImage.BLOCK_SIZE >= image.ext().prefetchTableOffset() + 8);

        PrefetchPlan plan = PrefetchPlan.of(image);
        assertEquals(List.of("/b/z", "/a"), plan.entries().stream().map(PrefetchPlan.Entry::path).toList());
        assertEquals(List.of(false, true), plan.entries().stream().map(PrefetchPlan.Entry::directory).toList());
        // b/z: 2 chunks; /a: x (4), y (1), deep/w (2): 9 chunks, all different random data.
        assertEquals(9, plan.chunks().size(), plan.chunks().toString());
        Set<Long> offsets = new HashSet<>();
        long bytes = 0;
        for (PrefetchPlan.Chunk c : plan.chunks()) {
            assertTrue(offsets.add(c.compressedOffset()));
            bytes += c.compressedSize();
        }
        assertEquals(bytes, plan.compressedBytes());
        ChunkTable table = ChunkTable.buildAll(image)[0];
        assertEquals(9 + 5, table.size(), "c's 5 chunks are the only ones not planned");

        HostTools.requireRootWithErofsAndLoop();
        TreeSnapshot expected = TreeSnapshot.of(src);
        Path disk = RoundTrip.export(out, tmp.resolve("disk.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> TreeAssert.assertSameTree(expected, TreeSnapshot.of(m),
                TreeAssert.Ignore.NOTHING));
    }
}
