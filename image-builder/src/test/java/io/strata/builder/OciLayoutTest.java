package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.image.ImageReport;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A three-layer OCI image layout made by umoci (Debian's, a tool nobody here wrote): layer 1 a
 * tree, layer 2 changes a file, deletes a file and a directory (umoci writes .wh. whiteouts) and
 * copies a file (its chunks must dedup against layer 1's blob), layer 3 a tar with an opaque
 * directory marker added with {@code umoci raw add-layer}. The mounted image must equal the rootfs
 * that umoci itself unpacks from the same layout.
 */
class OciLayoutTest {
    private static final long BUILD_TIME = 1_700_000_000L;

    @TempDir
    Path tmp;


    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        for (int i = 0; i < n / 3; i++) {
            b[i] = (byte) (i >> 9);
        }
        return b;
    }

    /** An empty OCI layout with image "img" (umoci init and new). */
    private static Path emptyLayout(Path tmp) throws Exception {
        Path layout = tmp.resolve("oci");
        HostTools.run(List.of("umoci", "init", "--layout", layout.toString()));
        HostTools.run(List.of("umoci", "new", "--image", layout + ":img"));
        return layout;
    }

    /** The rootfs of a fresh bundle of "img": umoci repack diffs a bundle against what it unpacked, so one per layer. */
    private static Path unpacked(Path layout, Path bundle) throws Exception {
        HostTools.run(List.of("umoci", "unpack", "--image", layout + ":img", bundle.toString()));
        return bundle.resolve("rootfs");
    }

    static Path makeLayout(Path tmp) throws Exception {
        Path layout = emptyLayout(tmp);
        Path bundle = tmp.resolve("bundle1");
        Path root = unpacked(layout, bundle);

        // Layer 1.
        Files.createDirectories(root.resolve("etc"));
        Files.writeString(root.resolve("etc/config"), "version 1\n");
        Files.write(root.resolve("shared.bin"), random(3 << 20, 1));
        Files.createDirectories(root.resolve("data"));
        Files.writeString(root.resolve("data/keep.txt"), "kept\n");
        Files.createLink(root.resolve("data/keep-link"), root.resolve("data/keep.txt"));
        Files.writeString(root.resolve("data/delete-me.txt"), "deleted in layer 2\n");
        Files.createSymbolicLink(root.resolve("data/to-config"), Path.of("../etc/config"));
        Files.createDirectories(root.resolve("gone-dir/inner"));
        Files.writeString(root.resolve("gone-dir/inner/x"), "x\n");
        Files.createDirectories(root.resolve("opaque-dir/sub"));
        Files.writeString(root.resolve("opaque-dir/old1"), "hidden by layer 3\n");
        Files.writeString(root.resolve("opaque-dir/sub/old2"), "hidden by layer 3\n");
        HostTools.run(List.of("umoci", "repack", "--image", layout + ":img", bundle.toString()));

        // Layer 2.
        bundle = tmp.resolve("bundle2");
        HostTools.run(List.of("umoci", "unpack", "--image", layout + ":img", bundle.toString()));
        root = bundle.resolve("rootfs");
        Files.writeString(root.resolve("etc/config"), "version 2\n");
        Files.delete(root.resolve("data/delete-me.txt"));
        Files.delete(root.resolve("gone-dir/inner/x"));
        Files.delete(root.resolve("gone-dir/inner"));
        Files.delete(root.resolve("gone-dir"));
        Files.copy(root.resolve("shared.bin"), root.resolve("copy-of-shared.bin"));
        Files.write(root.resolve("layer2.bin"), random(1 << 20, 2));
        HostTools.run(List.of("umoci", "repack", "--image", layout + ":img", bundle.toString()));

        // Layer 3: a hand-made tar with an opaque marker, added as it is.
        Path staging = tmp.resolve("layer3");
        Files.createDirectories(staging.resolve("opaque-dir"));
        Files.createFile(staging.resolve("opaque-dir/.wh..wh..opq"));
        Files.writeString(staging.resolve("opaque-dir/new.txt"), "the only entry left\n");
        Files.write(staging.resolve("layer3.bin"), random(200_000, 3));
        Path tar = tmp.resolve("layer3.tar");
        HostTools.run(List.of("tar", "--numeric-owner", "-C", staging.toString(), "-cf", tar.toString(), "opaque-dir", "layer3.bin"));
        HostTools.run(List.of("umoci", "raw", "add-layer", "--image", layout + ":img", tar.toString()));
        return layout;
    }

    @Test
    void threeLayersMergeAsUmociUnpacksThem() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        HostTools.requireTool("umoci", "umoci");
        Path layout = makeLayout(tmp);
        Path expectedBundle = tmp.resolve("expected");
        HostTools.run(List.of("umoci", "unpack", "--image", layout + ":img", expectedBundle.toString()));
        TreeSnapshot expected = TreeSnapshot.of(expectedBundle.resolve("rootfs"));
        assertTrue(expected.entries().containsKey("/opaque-dir/new.txt"));
        assertFalse(expected.entries().containsKey("/opaque-dir/old1"), "umoci applies the opaque marker");

        Path out = tmp.resolve("out");
        BuildResult r = RoundTrip.build(layout, out, BuildOptions.defaults(BUILD_TIME));
        assertEquals(3, r.blobIds().size(), "one blob per layer");
        for (String id : r.blobIds()) {
            assertTrue(Files.isRegularFile(out.resolve("blobs").resolve(id)));
        }
        Map<String, Object> report = ImageReport.of(RafsImage.open(r.bootstrap()));
        @SuppressWarnings("unchecked")
        Map<String, Object> chunks = (Map<String, Object>) report.get("chunks");
        assertEquals(3L, (Long) chunks.get("deduplicated"), "copy-of-shared.bin's 3 chunks point into layer 1's blob");

        Path disk = RoundTrip.export(out, tmp.resolve("disk.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> {
            TreeAssert.assertSameTree(expected, TreeSnapshot.of(m), TreeAssert.Ignore.NOTHING);
            assertEquals("version 2\n", Files.readString(m.resolve("etc/config"), StandardCharsets.UTF_8));
            assertFalse(Files.exists(m.resolve("data/delete-me.txt")));
            assertFalse(Files.exists(m.resolve("gone-dir")));
            try (var s = Files.list(m.resolve("opaque-dir"))) {
                assertEquals(List.of("new.txt"), s.map(p -> p.getFileName().toString()).toList());
            }
        });
        // Three devices in the legacy layout too: every chunk index becomes an address on device 0.
        Path legacy = RoundTrip.export(out, tmp.resolve("legacy.raw"), true);
        RoundTrip.mounted(legacy, tmp.resolve("mnt-legacy"), m -> TreeAssert.assertSameTree(expected, TreeSnapshot.of(m),
                TreeAssert.Ignore.NOTHING));
    }

    /**
     * An opaque marker after entries of its own layer: a subdirectory that layer declared again, or
     * wrote into without declaring, keeps only that layer's entries (umoci's unpack is the reference).
     */
    @Test
    void anOpaqueMarkerAfterItsLayersEntriesStillHidesTheLowerOnes() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        HostTools.requireTool("umoci", "umoci");
        Path layout = emptyLayout(tmp);
        Path bundle = tmp.resolve("bundle1");
        Path root = unpacked(layout, bundle);
        Files.createDirectories(root.resolve("a/b"));
        Files.createDirectories(root.resolve("a/c"));
        Files.createDirectories(root.resolve("a/gone"));
        Files.writeString(root.resolve("a/b/old"), "lower\n");
        Files.writeString(root.resolve("a/c/old"), "lower\n");
        Files.writeString(root.resolve("a/gone/old"), "lower\n");
        Files.writeString(root.resolve("a/top-old"), "lower\n");
        HostTools.run(List.of("umoci", "repack", "--image", layout + ":img", bundle.toString()));

        // Layer 2, entries in this order: a/, a/b/, a/b/new, a/c/new (a/c/ not declared), then the marker.
        Path staging = tmp.resolve("layer2");
        Files.createDirectories(staging.resolve("a/b"));
        Files.createDirectories(staging.resolve("a/c"));
        Files.writeString(staging.resolve("a/b/new"), "upper\n");
        Files.writeString(staging.resolve("a/c/new"), "upper\n");
        Files.createFile(staging.resolve("a/.wh..wh..opq"));
        Path tar = tmp.resolve("layer2.tar");
        HostTools.run(List.of("tar", "--numeric-owner", "--no-recursion", "-C", staging.toString(), "-cf", tar.toString(),
                "a", "a/b", "a/b/new", "a/c/new", "a/.wh..wh..opq"));
        HostTools.run(List.of("umoci", "raw", "add-layer", "--image", layout + ":img", tar.toString()));

        Path expectedBundle = tmp.resolve("expected");
        HostTools.run(List.of("umoci", "unpack", "--image", layout + ":img", expectedBundle.toString()));
        TreeSnapshot expected = TreeSnapshot.of(expectedBundle.resolve("rootfs"));
        assertTrue(expected.entries().containsKey("/a/b/new") && expected.entries().containsKey("/a/c/new"), expected.entries().keySet()::toString);
        assertFalse(expected.entries().containsKey("/a/b/old"), "umoci hides the lower a/b/old");

        Path out = tmp.resolve("out");
        RoundTrip.build(layout, out, BuildOptions.defaults(BUILD_TIME));
        Path disk = RoundTrip.export(out, tmp.resolve("disk.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> {
            assertFalse(Files.exists(m.resolve("a/b/old")), "a lower file under a directory the layer declared again");
            assertFalse(Files.exists(m.resolve("a/c/old")), "a lower file under a directory the layer wrote into");
            assertFalse(Files.exists(m.resolve("a/gone")) || Files.exists(m.resolve("a/top-old")));
            assertEquals("upper\n", Files.readString(m.resolve("a/b/new"), StandardCharsets.UTF_8));
            // Directory mtimes aside: umoci sets the re-declared directories' own (sub-second) times.
            TreeAssert.assertSameTree(expected, TreeSnapshot.of(m), new TreeAssert.Ignore(false, false, true));
        });
    }

    /**
     * A layer that hard-links a lower layer's file into a directory and then marks that directory
     * opaque: the link is the layer's own entry and stays (umoci's unpack keeps it); the lower
     * layer's files in that directory go.
     */
    @Test
    void aHardLinkToALowerFileSurvivesItsOwnLayersOpaqueMarker() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        HostTools.requireTool("umoci", "umoci");
        Path layout = emptyLayout(tmp);
        Path bundle = tmp.resolve("bundle1");
        Path root = unpacked(layout, bundle);
        Files.createDirectories(root.resolve("a"));
        Files.createDirectories(root.resolve("d"));
        Files.writeString(root.resolve("a/file"), "lower file\n");
        Files.writeString(root.resolve("d/old"), "lower, hidden\n");
        HostTools.run(List.of("umoci", "repack", "--image", layout + ":img", bundle.toString()));

        // Layer 2: d/link, a hard link to layer 1's a/file, then the opaque marker of d/.
        Path staging = tmp.resolve("layer2");
        Files.createDirectories(staging.resolve("a"));
        Files.createDirectories(staging.resolve("d"));
        Files.writeString(staging.resolve("a/file"), "lower file\n");
        Files.createLink(staging.resolve("d/link"), staging.resolve("a/file"));
        Files.createFile(staging.resolve("d/.wh..wh..opq"));
        Path full = tmp.resolve("full.tar");
        HostTools.run(List.of("tar", "--numeric-owner", "--no-recursion", "-C", staging.toString(), "-cf", full.toString(),
                "a/file", "d/link", "d/.wh..wh..opq"));
        // Keep only the link and the marker: the link's target is the lower layer's file.
        Path tar = tmp.resolve("layer2.tar");
        HostTools.run(List.of("tar", "--delete", "-f", full.toString(), "a/file"));
        Files.copy(full, tar);
        HostTools.run(List.of("umoci", "raw", "add-layer", "--image", layout + ":img", tar.toString()));

        Path expectedBundle = tmp.resolve("expected");
        HostTools.run(List.of("umoci", "unpack", "--image", layout + ":img", expectedBundle.toString()));
        TreeSnapshot expected = TreeSnapshot.of(expectedBundle.resolve("rootfs"));
        assertTrue(expected.entries().containsKey("/d/link"), () -> "umoci keeps the link: " + expected.entries().keySet());
        assertFalse(expected.entries().containsKey("/d/old"), "umoci hides the lower d/old");

        Path out = tmp.resolve("out");
        RoundTrip.build(layout, out, BuildOptions.defaults(BUILD_TIME));
        Path disk = RoundTrip.export(out, tmp.resolve("disk.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> {
            assertEquals("lower file\n", Files.readString(m.resolve("d/link"), StandardCharsets.UTF_8));
            assertFalse(Files.exists(m.resolve("d/old")));
            TreeAssert.assertSameTree(expected, TreeSnapshot.of(m), new TreeAssert.Ignore(false, false, true));
        });
    }
}
