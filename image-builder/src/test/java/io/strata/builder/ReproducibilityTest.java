package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.GeneratedTree;
import io.strata.builder.testing.RoundTrip;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The same input and options give the same bytes, whatever the thread count and timing. */
class ReproducibilityTest {
    @TempDir
    Path tmp;

    private static void assertSameOutput(Path a, Path b, BuildResult ra, BuildResult rb) throws Exception {
        assertEquals(ra.blobIds(), rb.blobIds());
        assertEquals(-1, Files.mismatch(a.resolve("bootstrap"), b.resolve("bootstrap")), "bootstraps differ");
        for (String id : ra.blobIds()) {
            assertEquals(-1, Files.mismatch(a.resolve("blobs").resolve(id), b.resolve("blobs").resolve(id)), id);
        }
    }

    @Test
    void oneThreadAndManyThreadsWriteTheSameImage() throws Exception {
        HostTools.require("root".equals(System.getProperty("user.name")), "the generated tree needs root (mknod, chown)");
        Path src = GeneratedTree.create(tmp.resolve("src"), 1_000L, false);
        BuildOptions o = BuildOptions.defaults(1_000L).withChunkSize(65536);
        BuildResult a = RoundTrip.build(src, tmp.resolve("a"), o.withThreads(1));
        BuildResult b = RoundTrip.build(src, tmp.resolve("b"), o.withThreads(7));
        assertSameOutput(tmp.resolve("a"), tmp.resolve("b"), a, b);
    }

    @Test
    void sourceDateEpochFixesTheBuildTime() throws Exception {
        Path tar = Fixtures.root().resolve("tar/all-entry-type.tar");
        long startSecond = Instant.now().getEpochSecond();
        BuildResult a = RoundTrip.build(tar, tmp.resolve("a"), BuildOptions.defaults(1_234_567_890L));
        // The tar fixes every mtime; what could still leak into the bytes is the clock (times have
        // whole seconds on disk). The second build must run in a later second than the first began.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (Instant.now().getEpochSecond() <= startSecond) {
            assertTrue(System.nanoTime() < deadline, "the wall clock never moved on");
            Thread.sleep(10);
        }
        BuildResult b = RoundTrip.build(tar, tmp.resolve("b"), BuildOptions.defaults(1_234_567_890L));
        assertSameOutput(tmp.resolve("a"), tmp.resolve("b"), a, b);
        assertEquals(List.of(a.blobIds().get(0)), b.blobIds());
        // The blob id is the sha256 of the blob file.
        assertEquals(a.blobIds().get(0), io.strata.builder.testing.TreeSnapshotAccess.sha256(
                tmp.resolve("a/blobs").resolve(a.blobIds().get(0))));
    }
}
