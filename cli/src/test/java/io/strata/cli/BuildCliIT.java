package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code strata build} through bin/strata: the image it writes, and its errors. */
class BuildCliIT {
    @TempDir
    Path tmp;

    StrataProcess.Run strata(String... args) throws Exception {
        return StrataProcess.run(tmp, args);
    }

    @Test
    void buildsInspectsAndExportsTheProjectsOwnSources() throws Exception {
        Path src = StrataProcess.home().resolve("core-blockmap/src");
        Path out = tmp.resolve("img");
        StrataProcess.Run b = strata("build", src.toString(), "-o", out.toString(), "--compressor", "lz4", "--chunk-size", "64K",
                "--source-date-epoch", "1700000000");
        assertEquals(0, b.code(), b.err());
        assertTrue(b.out().startsWith("wrote " + out.resolve("bootstrap")), b.out());
        assertTrue(b.err().contains("build: 100%"), "a final progress line: " + b.err());

        StrataProcess.Run i = strata("inspect", out.resolve("bootstrap").toString(), "--json");
        assertEquals(0, i.code(), i.err());
        JsonNode j = new ObjectMapper().readTree(i.out());
        JsonNode blob = j.get("blobs").get(0);
        assertEquals("lz4", blob.get("compression").asText());
        assertEquals(65536, blob.get("chunk_size").asLong());
        assertTrue(Files.isRegularFile(out.resolve("blobs").resolve(blob.get("id").asText())));
        assertEquals(1700000000L, j.get("superblock").get("build_time").asLong());

        Path disk = tmp.resolve("disk.raw");
        StrataProcess.Run e = strata("export", out.resolve("bootstrap").toString(), "-o", disk.toString());
        assertEquals(0, e.code(), e.err());
        // The kernel's EROFS is the oracle for the exported device: required like in every mount test
        // (a failure under CI=true, a skip elsewhere), never silently left out.
        HostTools.requireRootWithErofsAndLoop();
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(disk, tmp.resolve("mnt"))) {
            Path java = Path.of("main/java/io/strata/core/image/RafsImage.java");
            assertEquals(-1, Files.mismatch(src.resolve(java), m.path().resolve(java)));
        }
    }

    /** inspect's text shows a name's control characters as \xNN: an escape sequence from an image is not sent to the terminal. */
    /**
     * The image's files get 0666 less the umask, as mkfs.erofs and nydus-image give theirs: they were
     * 0600 whatever the umask, so an image built as root could not be read by strata.service, which
     * runs as a DynamicUser.
     */
    @Test
    void theImagesFilesHaveTheModeTheUmaskGives() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("mode-src"));
        Files.writeString(src.resolve("a"), "some bytes\n");
        for (String[] umaskAndMode : new String[][] {{"022", "rw-r--r--"}, {"077", "rw-------"}}) {
            Path out = tmp.resolve("mode-" + umaskAndMode[0]);
            HostTools.Outcome o = HostTools.execute(List.of("bash", "-c", "umask " + umaskAndMode[0] + " && '"
                    + StrataProcess.home().resolve("bin/strata") + "' build '" + src + "' -o '" + out + "'"));
            assertEquals(0, o.exitCode(), o.output());
            List<Path> files = new java.util.ArrayList<>(List.of(out.resolve("bootstrap")));
            try (var blobs = Files.list(out.resolve("blobs"))) {
                blobs.forEach(files::add);
            }
            assertEquals(2, files.size(), files.toString());
            for (Path f : files) {
                assertEquals(umaskAndMode[1], java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(f)),
                        f + " under umask " + umaskAndMode[0]);
            }
        }
    }

    @Test
    void inspectShowsControlCharactersInNamesEscaped() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("ctl-src"));
        String name = "\u001b[31mred\u0007";
        Files.writeString(src.resolve(name), "red");
        Path list = Files.writeString(tmp.resolve("ctl.list"), name + "\n");
        Path out = tmp.resolve("ctl-img");
        StrataProcess.Run b = strata("build", src.toString(), "-o", out.toString(), "--prefetch", list.toString());
        assertEquals(0, b.code(), b.err());
        StrataProcess.Run text = strata("inspect", out.resolve("bootstrap").toString());
        assertEquals(0, text.code(), text.err());
        assertTrue(text.out().contains("path: /\\x1b[31mred\\x07"), text.out());
        assertFalse(text.out().contains("\u001b") || text.out().contains("\u0007"), text.out());
    }

    @Test
    void prefetchListIsWrittenShownByInspectAndTheImageMounts() throws Exception {
        Path src = StrataProcess.home().resolve("core-blockmap/src/main/java/io/strata/core");
        Path list = tmp.resolve("prefetch.list");
        Files.writeString(list, "image\n/blob/Blob.java\nno/such/file\n");
        Path out = tmp.resolve("img");
        StrataProcess.Run b = strata("build", src.toString(), "-o", out.toString(), "--chunk-size", "64K",
                "--prefetch", list.toString());
        assertEquals(0, b.code(), b.err());
        assertTrue(b.err().contains("strata build: warning: prefetch: 'no/such/file' is not in the image"), b.err());

        StrataProcess.Run i = strata("inspect", out.resolve("bootstrap").toString(), "--json");
        assertEquals(0, i.code(), i.err());
        JsonNode p = new ObjectMapper().readTree(i.out()).get("prefetch");
        assertEquals(2, p.get("entries").asInt(), i.out());
        assertEquals(8, p.get("table_size").asInt());
        assertEquals("/image", p.get("inodes").get(0).get("path").asText());
        assertEquals("directory", p.get("inodes").get(0).get("type").asText());
        assertEquals("/blob/Blob.java", p.get("inodes").get(1).get("path").asText());
        long files;
        try (Stream<Path> s = Files.walk(src.resolve("image"))) {
            files = s.filter(Files::isRegularFile).count();
        }
        assertTrue(p.get("chunks").asLong() >= files + 1, "at least one chunk per planned file: " + p);

        StrataProcess.Run text = strata("inspect", out.resolve("bootstrap").toString());
        assertEquals(0, text.code(), text.err());
        assertTrue(text.out().contains("prefetch:") && text.out().contains("entries: 2") && text.out().contains("path: /image"),
                text.out());

        Path disk = tmp.resolve("disk.raw");
        StrataProcess.Run e = strata("export", out.resolve("bootstrap").toString(), "-o", disk.toString());
        assertEquals(0, e.code(), e.err());
        HostTools.requireRootWithErofsAndLoop();
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(disk, tmp.resolve("mnt"));
             Stream<Path> s = Files.walk(src)) {
            for (Path f : (Iterable<Path>) s.filter(Files::isRegularFile)::iterator) {
                assertEquals(-1, Files.mismatch(f, m.path().resolve(src.relativize(f))), f.toString());
            }
        }

        StrataProcess.Run missing = strata("build", src.toString(), "-o", tmp.resolve("o2").toString(),
                "--prefetch", tmp.resolve("no-such-list").toString());
        assertEquals(2, missing.code(), missing.err());
        assertEquals(1, missing.err().strip().lines().count(), missing.err());
        assertTrue(missing.err().startsWith("strata build: --prefetch: cannot read"), missing.err());
    }

    /**
     * A build stopped by SIGTERM part way leaves no temporary file and no blob in its output directory
     * (the JVM runs shutdown hooks on a signal, not the build's own cleanup). The process is frozen
     * (SIGSTOP) as soon as its first temporary file appears, so that the signal lands mid-build.
     */
    @Test
    void aBuildStoppedByASignalLeavesNothingBehind() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        byte[] big = new byte[96 << 20];
        new java.util.Random(7).nextBytes(big);
        Files.write(src.resolve("big.bin"), big);
        Path out = tmp.resolve("img");
        try (StrataProcess.Server b = StrataProcess.start(tmp, "build", "build", src.toString(), "-o", out.toString())) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (listRecursively(out).stream().noneMatch(n -> n.contains(".strata-partial-"))) {
                assertTrue(b.process.isAlive() && System.nanoTime() < deadline, "no temporary file appeared: " + b.log());
                Thread.sleep(2);
            }
            String pid = Long.toString(b.process.pid());
            assertEquals(0, HostTools.execute(List.of("kill", "-STOP", pid)).exitCode());
            b.process.destroy();
            assertEquals(0, HostTools.execute(List.of("kill", "-CONT", pid)).exitCode());
            assertTrue(b.process.waitFor(30, TimeUnit.SECONDS), "still running 30 s after SIGTERM: " + b.log());
            assertEquals(143, b.process.exitValue(), b.log());
        }
        assertEquals(List.of("blobs"), listRecursively(out), "left in the output directory by the stopped build");
    }

    private static List<String> listRecursively(Path dir) throws java.io.IOException {
        if (!Files.exists(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !p.equals(dir)).map(p -> dir.relativize(p).toString()).sorted().toList();
        }
    }

    @Test
    void badArgumentsAreOneLineAndExit2() throws Exception {
        Path tar = Fixtures.root().resolve("tar/all-entry-type.tar");
        for (String[] args : List.of(
                new String[] {"build", tar.toString(), "-o", tmp.resolve("o").toString(), "--chunk-size", "3000"},
                new String[] {"build", tar.toString(), "-o", tmp.resolve("o").toString(), "--chunk-size", "32M"},
                new String[] {"build", tar.toString(), "-o", tmp.resolve("o").toString(), "--compressor", "brotli"},
                new String[] {"build", tar.toString(), "-o", tmp.resolve("o").toString(), "--compressor", "zstd:99"},
                new String[] {"build", tar.toString(), "-o", tmp.resolve("o").toString(), "--digest", "md5"},
                new String[] {"build", tmp.resolve("no-such-source").toString(), "-o", tmp.resolve("o").toString()},
                new String[] {"build", tar.toString()})) {
            StrataProcess.Run r = strata(args);
            assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().startsWith("strata build: "), r.err());
        }
        assertFalse(Files.exists(tmp.resolve("o/bootstrap")));
    }

    @Test
    void badInputIsOneLineNamingTheEntryAndExit1() throws Exception {
        Path tar = tmp.resolve("escape.tar");
        Path staging = Files.createDirectories(tmp.resolve("staging/inner"));
        Files.writeString(staging.resolve("f"), "x");
        // GNU tar keeps "../" in member names with -P; the builder must refuse it.
        HostTools.run(List.of("tar", "-P", "-cf", tar.toString(), "-C", staging.toString(), "../inner/f"));
        Path out = tmp.resolve("o/deeper/out");
        StrataProcess.Run r = strata("build", tar.toString(), "-o", out.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("'../inner/f' climbs out of the image root"), r.err());
        // One line: no progress line before it (it read "build: 100%" when the tar had been read to its end).
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertFalse(Files.exists(tmp.resolve("o")), "no output left behind, not even the directories the build made");
        // An output directory that was there before stays, with what was in it.
        Path kept = Files.createDirectories(tmp.resolve("kept"));
        Files.writeString(kept.resolve("note"), "mine");
        StrataProcess.Run again = strata("build", tar.toString(), "-o", kept.toString());
        assertEquals(1, again.code(), again.err());
        try (Stream<Path> s = Files.list(kept)) {
            assertEquals(List.of(kept.resolve("note")), s.toList());
        }
    }
}
