package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.GeneratedTree;
import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.HostTools;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

/** The generated tree with each compressor, several chunk sizes and both digests. */
class CompressionVariantsTest {
    private static final long BUILD_TIME = 1_750_000_000L;

    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({"none, 4096, sha256", "lz4, 65536, blake3", "zstd:19, 16777216, sha256", "zstd:-5, 1048576, blake3"})
    void roundTrips(String compressor, long chunkSize, String digest) throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path src = GeneratedTree.create(tmp.resolve("src"), BUILD_TIME, false);
        TreeSnapshot expected = TreeSnapshot.of(src);
        BuildOptions o = BuildOptions.defaults(BUILD_TIME).withCompressor(CompressorSpec.parse(compressor))
                .withChunkSize(chunkSize).withDigest(DigestAlgorithm.valueOf(digest.toUpperCase()));
        Path out = tmp.resolve("out");
        BuildResult r = RoundTrip.build(src, out, o);

        RafsImage image = RafsImage.open(r.bootstrap());
        BlobTableEntry blob = image.blobs().get(0);
        assertEquals(o.compressor().compression(), blob.compression());
        assertEquals(o.digest(), blob.digest());
        assertEquals(chunkSize, blob.chunkSize());
        long compressed = image.chunks().stream().filter(ChunkInfo::isCompressed).count();
        if (compressor.equals("none")) {
            assertEquals(0, compressed);
        } else {
            assertTrue(compressed > 0, "some chunks compress");
            assertTrue(compressed < image.chunks().size(), "random chunks are stored as they are");
        }
        Path disk = RoundTrip.export(out, tmp.resolve("disk.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> TreeAssert.assertSameTree(expected, TreeSnapshot.of(m),
                TreeAssert.Ignore.NOTHING));
    }
}
