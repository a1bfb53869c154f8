package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The project's own tree as a source: every file of the checkout at HEAD ({@code git archive}, so
 * that nothing changes under the walk while Maven writes into target/ directories), plus the core
 * module's built classes and jars, which the reactor finished before this module's tests.
 */
class ProjectTreeTest {
    @TempDir
    Path tmp;

    @Test
    void checkoutAtHeadRoundTrips() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        HostTools.requireTool("git", "git");
        Path repo = Paths.get("").toAbsolutePath().getParent();
        Path src = Files.createDirectories(tmp.resolve("src"));
        Path archive = tmp.resolve("head.tar");
        HostTools.run(List.of("git", "-C", repo.toString(), "archive", "--format=tar", "-o", archive.toString(), "HEAD"));
        HostTools.run(List.of("tar", "-xpf", archive.toString(), "-C", src.toString()));
        HostTools.run(List.of("cp", "-a", repo.resolve("core-blockmap/target").toString(), src.resolve("core-blockmap").toString()));
        assertTrue(Files.isRegularFile(src.resolve("core-blockmap/src/main/java/io/strata/core/image/RafsImage.java")));

        TreeSnapshot expected = TreeSnapshot.of(src);
        Path out = tmp.resolve("out");
        RoundTrip.build(src, out, BuildOptions.defaults(0));
        Path disk = RoundTrip.export(out, tmp.resolve("disk.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> TreeAssert.assertSameTree(expected, TreeSnapshot.of(m),
                TreeAssert.Ignore.NOTHING));
    }
}
