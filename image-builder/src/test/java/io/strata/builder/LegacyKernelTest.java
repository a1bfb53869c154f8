package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.strata.builder.testing.GeneratedTree;
import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --legacy-kernel}: the built image, served with the core's rewritten bootstrap (absolute
 * chunk addresses, no device table: what kernels 5.15-6.3 mount), shows the same tree; only the
 * bootstrap blocks of the device differ from the flat layout.
 */
class LegacyKernelTest {
    @TempDir
    Path tmp;

    @Test
    void legacyLayoutMountsWithIdenticalContent() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        long buildTime = 1_750_000_000L;
        Path src = GeneratedTree.create(tmp.resolve("src"), buildTime, false);
        TreeSnapshot expected = TreeSnapshot.of(src);
        Path out = tmp.resolve("out");
        BuildResult r = RoundTrip.build(src, out, BuildOptions.defaults(buildTime).withLegacyKernel(true));
        Path legacy = RoundTrip.export(out, tmp.resolve("legacy.raw"), true);
        Path flat = RoundTrip.export(out, tmp.resolve("flat.raw"), false);
        RoundTrip.mounted(legacy, tmp.resolve("mnt-legacy"), m -> TreeAssert.assertSameTree(expected, TreeSnapshot.of(m),
                TreeAssert.Ignore.NOTHING));
        byte[] a = Files.readAllBytes(flat);
        byte[] b = Files.readAllBytes(legacy);
        int boot = (int) r.bootstrapBytes();
        assertArrayEquals(Arrays.copyOfRange(a, boot, a.length), Arrays.copyOfRange(b, boot, b.length),
                "the data blocks are the same bytes in both layouts");
    }
}
