package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.ZstdOutputStream;
import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Nydus's tar fixtures (every tar entry type, a macOS tar with AppleDouble files and libarchive
 * xattrs, the empty tar) built into images and compared, mounted, with what GNU tar extracts.
 */
class TarFixturesTest {
    private static final long BUILD_TIME = 1_700_000_000L;

    @TempDir
    Path tmp;

    private static Path fixture(String name) {
        return Fixtures.root().resolve("tar").resolve(name);
    }

    /** GNU tar's extraction, as root: owners, modes and mtimes kept. */
    private Path extract(Path tar) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("extracted"));
        HostTools.run(List.of("tar", "--numeric-owner", "--same-owner", "-xpf", tar.toString(), "-C", dir.toString()));
        return dir;
    }

    private void buildAndCompare(Path tar, Path expectedTree, RoundTrip.Warnings warnings) throws Exception {
        TreeSnapshot expected = TreeSnapshot.of(expectedTree);
        Path out = tmp.resolve("out-" + tar.getFileName());
        ImageBuilder.build(tar, out, BuildOptions.defaults(BUILD_TIME), warnings);
        Path disk = RoundTrip.export(out, tmp.resolve(tar.getFileName() + ".raw"), false);
        // GNU tar makes symlinks 0777 whatever the archive says, and the root is its own directory.
        // It also restores a directory's mtime when it leaves the directory, so in a tar that comes
        // back to a directory later (the macOS one) the extracted mtime is the extraction time:
        // directory mtimes are checked against GNU tar's own listing of the headers instead.
        RoundTrip.mounted(disk, tmp.resolve("mnt-" + tar.getFileName()), m -> {
            TreeSnapshot actual = TreeSnapshot.of(m);
            TreeAssert.assertSameTree(expected, actual, new TreeAssert.Ignore(true, true, true));
            Map<String, Instant> listed = directoryMtimes(tar);
            assertTrue(!listed.isEmpty() || Files.size(tar) < 1024, "tar lists directories");
            listed.forEach((dir, t) -> assertEquals(t, actual.entries().get(dir).mtime().toInstant(), dir));
        });
    }

    /** Directory mtimes as `tar --utc --full-time -tv` lists them ("2022-10-13 02:40:06.107725102 tar/dir1/dir3/"). */
    private static Map<String, Instant> directoryMtimes(Path tar) throws Exception {
        Map<String, Instant> out = new TreeMap<>();
        String listing = HostTools.run(List.of("tar", "--utc", "--full-time", "--numeric-owner", "-tvf", tar.toString()));
        for (String line : listing.split("\n")) {
            if (!line.startsWith("d")) {
                continue;
            }
            String[] f = line.trim().split("\\s+", 6);
            String name = f[5].endsWith("/") ? f[5].substring(0, f[5].length() - 1) : f[5];
            out.put("/" + name, LocalDateTime.parse(f[3] + "T" + f[4]).toInstant(ZoneOffset.UTC));
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"all-entry-type.tar", "all-entry-type-macos.tar"})
    void fixtureTarMatchesGnuTarExtraction(String name) throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path tar = fixture(name);
        RoundTrip.Warnings w = new RoundTrip.Warnings();
        buildAndCompare(tar, extract(tar), w);
        if (name.contains("macos")) {
            // libarchive stored macOS xattrs without a namespace; neither GNU tar nor EROFS can keep them.
            assertTrue(w.messages.stream().anyMatch(m -> m.contains("left out xattr")), w.messages.toString());
        }
    }

    @Test
    void emptyTarIsAnImageWithAnEmptyRoot() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path tar = fixture("empty.tar");
        assertEquals(0, Files.size(tar));
        Path out = tmp.resolve("out");
        BuildResult r = RoundTrip.build(tar, out, BuildOptions.defaults(BUILD_TIME));
        assertEquals(List.of(), r.blobIds());
        assertEquals(1, r.inodes());
        Path disk = RoundTrip.export(out, tmp.resolve("empty.raw"), false);
        RoundTrip.mounted(disk, tmp.resolve("mnt"), m -> {
            try (var s = Files.list(m)) {
                assertEquals(0, s.count());
            }
            assertEquals(BUILD_TIME, Files.getLastModifiedTime(m).toInstant().getEpochSecond());
        });
    }

    /**
     * GNU tar stores xattrs as PAX {@code SCHILY.xattr.NAME} records with the raw value, which need
     * not be UTF-8 (a file capability, every byte value): the image must keep them byte for byte.
     */
    @Test
    void gnuTarXattrsWithBinaryValues() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        HostTools.requireTool("setfattr", "attr");
        Path src = Files.createDirectories(tmp.resolve("src/dir"));
        Path f = Files.writeString(src.resolve("ping"), "not really ping\n");
        StringBuilder all = new StringBuilder("0x");
        for (int i = 0; i < 256; i++) {
            all.append(String.format("%02x", i));
        }
        HostTools.run(List.of("setfattr", "-n", "user.binary", "-v", all.toString(), f.toString()));
        // cap_net_raw+ep, VFS_CAP_REVISION_2 (20 bytes, little-endian words).
        HostTools.run(List.of("setfattr", "-n", "security.capability", "-v", "0x0100000200200000000000000000000000000000",
                f.toString()));
        HostTools.run(List.of("setfattr", "-n", "trusted.utf8", "-v", "caf\u00e9", src.toString()));
        Path tar = tmp.resolve("xattrs.tar");
        HostTools.run(List.of("tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", tmp.resolve("src").toString(),
                "-cf", tar.toString(), "dir"));
        assertTrue(HostTools.run(List.of("strings", tar.toString())).contains("SCHILY.xattr.security.capability"));
        buildAndCompare(tar, tmp.resolve("src"), new RoundTrip.Warnings());
    }

    @ParameterizedTest
    @ValueSource(strings = {"gzip", "zstd"})
    void compressedTarGivesTheSameImage(String codec) throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path plain = fixture("all-entry-type.tar");
        Path packed = tmp.resolve("layer.tar." + codec);
        try (OutputStream o = codec.equals("gzip") ? new GZIPOutputStream(Files.newOutputStream(packed))
                : new ZstdOutputStream(Files.newOutputStream(packed))) {
            Files.copy(plain, o);
        }
        buildAndCompare(packed, extract(plain), new RoundTrip.Warnings());
        // Same entries, same options: the same bootstrap as from the plain tar.
        RoundTrip.build(plain, tmp.resolve("plain"), BuildOptions.defaults(BUILD_TIME));
        assertEquals(-1, Files.mismatch(tmp.resolve("plain/bootstrap"), tmp.resolve("out-" + packed.getFileName() + "/bootstrap")));
    }
}
