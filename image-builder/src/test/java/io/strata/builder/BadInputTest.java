package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.OciWriter;
import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TarWriter;
import io.strata.core.testing.HostTools;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inputs that cannot become an image: each must fail with a message naming the entry (or layer) at
 * fault, and leave nothing in the output directory that looks like an image: no bootstrap, no blob,
 * no temporary file, and an earlier good image there untouched.
 */
class BadInputTest {
    @TempDir
    Path tmp;

    private BuildException fails(Path source, Path out) {
        BuildException e = assertThrows(BuildException.class,
                () -> ImageBuilder.build(source, out, BuildOptions.defaults(0), BuildListener.SILENT));
        System.out.println("error as reported: " + e.getMessage());
        return e;
    }

    private static List<Path> files(Path dir) throws Exception {
        if (!Files.exists(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).toList();
        }
    }

    private Path tar(String name, TarWriter t) throws Exception {
        Path p = tmp.resolve(name);
        Files.write(p, t.bytes());
        return p;
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        new Random(n).nextBytes(b);
        return b;
    }

    private static byte[] gzip(byte[] data) throws Exception {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        try (GZIPOutputStream g = new GZIPOutputStream(o)) {
            g.write(data);
        }
        return o.toByteArray();
    }

    @Test
    void aWhiteoutThatNamesNothing() throws Exception {
        // ".wh." alone names no file: as an overlay whiteout it became an empty (or ".", "..") entry.
        for (String marker : List.of(".wh.", ".wh..", ".wh...")) {
            Path src = tar("wh.tar", new TarWriter().dir("d").file("d/f", "x").file("d/" + marker, ""));
            BuildException e = fails(src, tmp.resolve("out"));
            assertTrue(e.getMessage().contains("is not a name a directory entry can have"), e.getMessage());
            assertEquals(List.of(), files(tmp.resolve("out")));
        }
    }

    /**
     * Sparse files the tar library cannot read (GNU sparse over 8 GiB, PAX sparse over 2 GiB, made by
     * GNU tar --sparse from files with holes): the error says so; it was "Corrupted TAR archive" or
     * "Unable to parse int from string value". A small sparse file still builds.
     */
    @Test
    void sparseEntriesTheTarLibraryCannotReadAreNamed() throws Exception {
        HostTools.requireTool("tar", "tar");
        Path dir = Files.createDirectories(tmp.resolve("sparse"));
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(dir.resolve("nine-gib").toFile(), "rw")) {
            f.setLength(9L << 30);
            f.seek(5_000_000_000L);
            f.write("data in a hole".getBytes(StandardCharsets.US_ASCII));
        }
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(dir.resolve("three-gib").toFile(), "rw")) {
            f.setLength(3L << 30);
        }
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(dir.resolve("small").toFile(), "rw")) {
            f.setLength(1 << 20);
            f.seek(4096);
            f.write("x".getBytes(StandardCharsets.US_ASCII));
        }
        for (String[] c : List.of(new String[] {"gnu", "nine-gib"}, new String[] {"pax", "nine-gib"}, new String[] {"pax", "three-gib"})) {
            Path t = tmp.resolve(c[0] + "-" + c[1] + ".tar");
            HostTools.run(List.of("tar", "--format=" + c[0], "--sparse", "-C", dir.toString(), "-cf", t.toString(), c[1]));
            BuildException e = fails(t, tmp.resolve("out"));
            assertTrue(e.getMessage().contains("a sparse file's entry: the tar library cannot read sparse entries"), e.getMessage());
            assertEquals(List.of(), files(tmp.resolve("out")));
        }
        Path small = tmp.resolve("small.tar");
        HostTools.run(List.of("tar", "--format=pax", "--sparse", "-C", dir.toString(), "-cf", small.toString(), "small"));
        ImageBuilder.build(small, tmp.resolve("out-small"), BuildOptions.defaults(0), BuildListener.SILENT);
    }

    @Test
    void aPathDeeperThanPathMaxAllows() throws Exception {
        // 2,049 directories down: the tree walks recurse per level (6,000 overflowed the stack).
        Path src = tar("deep.tar", new TarWriter().file("a/".repeat(2049) + "f", "deep").file("ok.txt", "ok"));
        BuildException e = fails(src, tmp.resolve("out"));
        assertTrue(e.getMessage().contains("lies more than 2048 directories deep"), e.getMessage());
        assertTrue(e.getMessage().length() < 600, "one readable line: " + e.getMessage().length() + " characters");
        assertEquals(List.of(), files(tmp.resolve("out")));
        // 2,048 is fine.
        Path ok = tar("deep-ok.tar", new TarWriter().file("a/".repeat(2047) + "f", "deep"));
        ImageBuilder.build(ok, tmp.resolve("out-ok"), BuildOptions.defaults(0), BuildListener.SILENT);
    }

    @Test
    void tarNamesAndLinkTargetsThatAreNotUtf8() throws Exception {
        // Two names that differ only in a byte that is not UTF-8 (Latin-1 e-acute, e-grave): the tar
        // reader turned both into "caf?", one name, and a file was lost without a word.
        Path names = tmp.resolve("latin1.tar");
        try (TarArchiveOutputStream t = new TarArchiveOutputStream(Files.newOutputStream(names), "ISO-8859-1")) {
            for (String n : List.of("caf\u00e9", "caf\u00e8")) {
                TarArchiveEntry e = new TarArchiveEntry(n);
                e.setSize(1);
                t.putArchiveEntry(e);
                t.write('x');
                t.closeArchiveEntry();
            }
        }
        BuildException e = fails(names, tmp.resolve("out"));
        assertTrue(e.getMessage().contains("has a name that is not valid UTF-8"), e.getMessage());
        Path link = tmp.resolve("latin1-link.tar");
        try (TarArchiveOutputStream t = new TarArchiveOutputStream(Files.newOutputStream(link), "ISO-8859-1")) {
            TarArchiveEntry l = new TarArchiveEntry("link", TarConstants.LF_SYMLINK);
            l.setLinkName("caf\u00e9");
            t.putArchiveEntry(l);
            t.closeArchiveEntry();
        }
        BuildException le = fails(link, tmp.resolve("out2"));
        assertTrue(le.getMessage().contains("'link' has a link target that is not valid UTF-8"), le.getMessage());
        // UTF-8 names, short (ustar) and long (PAX path, GNU long name), stay as they are.
        Path good = tmp.resolve("utf8.tar");
        String longName = "d\u00e9j\u00e0/" + "\u6f22".repeat(40) + "/caf\u00e9";
        Files.write(good, new TarWriter().file("caf\u00e9", "1").file(longName, "2").bytes());
        ImageBuilder.build(good, tmp.resolve("out3"), BuildOptions.defaults(0), BuildListener.SILENT);
        Path gnu = tmp.resolve("gnu.tar");
        try (TarArchiveOutputStream t = new TarArchiveOutputStream(Files.newOutputStream(gnu), "UTF-8")) {
            t.setLongFileMode(TarArchiveOutputStream.LONGFILE_GNU);
            TarArchiveEntry g = new TarArchiveEntry(longName);
            g.setSize(1);
            t.putArchiveEntry(g);
            t.write('x');
            t.closeArchiveEntry();
        }
        ImageBuilder.build(gnu, tmp.resolve("out4"), BuildOptions.defaults(0), BuildListener.SILENT);
        assertEquals(List.of(), files(tmp.resolve("out")));
        assertEquals(List.of(), files(tmp.resolve("out2")));
    }

    @Test
    void namesAndLinkTargetsThatAreNotUtf8() throws Exception {
        // A directory holding a name and a symlink target that are not UTF-8 (Latin-1 e-acute): decoded
        // with replacement they became "caf" + U+FFFD, a changed name, without a word. Made by python3:
        // a Java path cannot hold such bytes.
        Path dir = tmp.resolve("latin1");
        Files.createDirectories(dir);
        for (String py : List.of("import os,sys; os.symlink(b'caf\\xe9', os.path.join(sys.argv[1].encode(), b'link'))",
                "import os,sys; open(os.path.join(sys.argv[1].encode(), b'caf\\xe9'), 'w').close()")) {
            Files.walk(dir).sorted(java.util.Comparator.reverseOrder()).filter(p -> !p.equals(dir)).forEach(p -> p.toFile().delete());
            HostTools.run(List.of("python3", "-c", py, dir.toString()));
            BuildException e = fails(dir, tmp.resolve("out"));
            assertTrue(e.getMessage().contains("not valid UTF-8"), e.getMessage());
            assertEquals(List.of(), files(tmp.resolve("out")));
        }
    }

    /**
     * The tar library reads a GNU long name or a PAX record whole into memory, whatever size its
     * header claims: a 4.5 MB tar.gz declaring a 1 GiB long name took 5.6 GB before "out of memory".
     * Headers past 16 MiB are refused as they are read.
     */
    @Test
    void headersPast16MiBAreRefusedAsTheyAreRead() throws Exception {
        int n = 40 << 20;
        Path longName = tmp.resolve("longname.tar.gz");
        try (java.io.OutputStream o = new GZIPOutputStream(Files.newOutputStream(longName))) {
            o.write(header("././@LongLink", n, 'L'));
            byte[] a = new byte[1 << 20];
            java.util.Arrays.fill(a, (byte) 'a');
            for (int left = n; left > 0; left -= a.length) {
                o.write(a, 0, Math.min(left, a.length));
            }
            o.write(new byte[(512 - n % 512) % 512]);
            o.write(header("x", 0, '0'));
            o.write(new byte[1024]);
        }
        BuildException ln = fails(longName, tmp.resolve("out"));
        assertTrue(ln.getMessage().contains("the headers of one entry (a GNU long name, PAX records) pass 16 MiB"), ln.getMessage());
        Path pax = tmp.resolve("pax.tar");
        Files.write(pax, paxEntry("comment", "c".repeat(20 << 20), "f"));
        BuildException px = fails(pax, tmp.resolve("out2"));
        assertTrue(px.getMessage().contains("pass 16 MiB"), px.getMessage());
        // A large file's data is no header: read (and skipped, if unread) outside the bound.
        Path big = tar("big.tar", new TarWriter().file("big", random(24 << 20)).file("after", "a"));
        ImageBuilder.build(big, tmp.resolve("out3"), BuildOptions.defaults(0), BuildListener.SILENT);
        assertEquals(List.of(), files(tmp.resolve("out")));
        assertEquals(List.of(), files(tmp.resolve("out2")));
    }

    /** A NUL in a PAX path: the name would end there for every reader of the directory (two "a" entries). */
    @Test
    void aNulByteInANameIsRefused() throws Exception {
        Path t = tmp.resolve("nul.tar");
        Files.write(t, paxEntry("path", "a\u0000evil", "x"));
        BuildException e = fails(t, tmp.resolve("out"));
        assertTrue(e.getMessage().contains("has a NUL byte in a name"), e.getMessage());
    }

    /** One ustar/GNU header block, written by hand: a hostile archive's header says what it likes. */
    private static byte[] header(String name, long size, char type) {
        byte[] h = new byte[512];
        byte[] nm = name.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(nm, 0, h, 0, Math.min(100, nm.length));
        put(h, 100, "0000644\0");
        put(h, 108, "0000000\0");
        put(h, 116, "0000000\0");
        put(h, 124, String.format("%011o\0", size));
        put(h, 136, "00000000000\0");
        h[156] = (byte) type;
        put(h, 257, "ustar  \0");
        put(h, 148, "        ");
        int sum = 0;
        for (byte x : h) {
            sum += x & 0xff;
        }
        put(h, 148, String.format("%06o\0 ", sum));
        return h;
    }

    private static void put(byte[] h, int at, String s) {
        byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
        System.arraycopy(b, 0, h, at, b.length);
    }

    /** A PAX 'x' header with one record, then an empty file entry and the archive's end. */
    private static byte[] paxEntry(String key, String value, String name) {
        byte[] kv = (" " + key + "=" + value + "\n").getBytes(StandardCharsets.UTF_8);
        int len = kv.length;
        String rec = null;
        for (int digits = 1; digits < 12; digits++) {
            int total = len + digits;
            if (String.valueOf(total).length() == digits) {
                rec = total + " " + key + "=" + value + "\n";
                break;
            }
        }
        byte[] record = rec.getBytes(StandardCharsets.UTF_8);
        java.io.ByteArrayOutputStream o = new java.io.ByteArrayOutputStream();
        o.writeBytes(header("PaxHeaders/" + name, record.length, 'x'));
        o.writeBytes(record);
        o.writeBytes(new byte[(512 - record.length % 512) % 512]);
        o.writeBytes(header(name, 0, '0'));
        o.writeBytes(new byte[1024]);
        return o.toByteArray();
    }

    @Test
    void pathClimbingOutOfTheRoot() throws Exception {
        Path src = tar("escape.tar", new TarWriter().file("ok.txt", random(3 << 20)).file("../evil.txt", "x"));
        Path out = tmp.resolve("out");
        BuildException e = fails(src, out);
        assertTrue(e.getMessage().contains("'../evil.txt'") && e.getMessage().contains("climbs out of the image root"), e.getMessage());
        assertTrue(e.getMessage().startsWith(src.toString()), e.getMessage());
        assertEquals(List.of(), files(out), "ok.txt's blob was written, then removed");
    }

    @Test
    void hardLinkToAMissingTarget() throws Exception {
        Path src = tar("link.tar", new TarWriter().file("a.txt", "a").hardLink("dir/b.txt", "missing.txt"));
        Path out = tmp.resolve("out");
        BuildException e = fails(src, out);
        assertTrue(e.getMessage().contains("'dir/b.txt' is a hard link to 'missing.txt', which no earlier entry created"),
                e.getMessage());
        assertEquals(List.of(), files(out));
    }

    @Test
    void nameLongerThan255Bytes() throws Exception {
        String name = "dir/" + "n".repeat(256);
        Path src = tar("long.tar", new TarWriter().file("fine-" + "m".repeat(250), "ok").file(name, "too long"));
        Path out = tmp.resolve("out");
        BuildException e = fails(src, out);
        assertTrue(e.getMessage().contains("'" + name + "' has a 256-byte name; EROFS allows at most 255"), e.getMessage());
        assertEquals(List.of(), files(out));
    }

    @Test
    void corruptGzipLayer() throws Exception {
        byte[] good = gzip(new TarWriter().file("one.bin", random(2 << 20)).bytes());
        byte[] bad = gzip(new TarWriter().file("two.bin", random(3 << 20)).file("three.txt", "3").bytes());
        for (int i = bad.length / 2; i < bad.length / 2 + 64; i++) {
            bad[i] ^= 0x5a;
        }
        Path layout = tmp.resolve("oci");
        List<String> digests = OciWriter.write(layout, List.of(good, bad), "application/vnd.oci.image.layer.v1.tar+gzip");
        Path out = tmp.resolve("out");
        BuildException e = fails(layout, out);
        assertTrue(e.getMessage().contains("layer 2/2 (" + digests.get(1) + ")"), e.getMessage());
        assertTrue(e.getMessage().contains("two.bin") || e.getMessage().contains("after"), e.getMessage());
        assertEquals(List.of(), files(out), "layer 1's finished blob is removed too");
    }

    @Test
    void manifestReferencingAMissingLayer() throws Exception {
        Path layout = tmp.resolve("oci");
        List<String> digests = OciWriter.write(layout, List.of(gzip(new TarWriter().file("a", "a").bytes()),
                gzip(new TarWriter().file("b", "b").bytes())), "application/vnd.oci.image.layer.v1.tar+gzip");
        Files.delete(OciWriter.blobPath(layout, digests.get(1)));
        Path out = tmp.resolve("out");
        BuildException e = fails(layout, out);
        assertTrue(e.getMessage().contains("references layer 2 (" + digests.get(1) + "), which is missing"), e.getMessage());
        assertEquals(List.of(), files(out));
    }

    @Test
    void layerWhoseDigestDoesNotMatch() throws Exception {
        Path layout = tmp.resolve("oci");
        List<String> digests = OciWriter.write(layout, List.of(gzip(new TarWriter().file("a", "a").bytes())),
                "application/vnd.oci.image.layer.v1.tar+gzip");
        Files.write(OciWriter.blobPath(layout, digests.get(0)), gzip(new TarWriter().file("a", "b").bytes()));
        BuildException e = fails(layout, tmp.resolve("out"));
        assertTrue(e.getMessage().contains("the manifest says " + digests.get(0)), e.getMessage());
    }

    @Test
    void failedBuildLeavesTheEarlierImageAsItWas() throws Exception {
        Path good = tar("good.tar", new TarWriter().file("data.bin", random(3 << 20)));
        Path out = tmp.resolve("out");
        BuildResult first = ImageBuilder.build(good, out, BuildOptions.defaults(0), BuildListener.SILENT);
        byte[] bootstrap = Files.readAllBytes(first.bootstrap());
        List<Path> before = files(out);

        Path bad = tar("bad.tar", new TarWriter().file("other.bin", random(4 << 20)).file("../x", "x"));
        fails(bad, out);
        assertEquals(before, files(out), "no new blob, no temporary file");
        assertTrue(java.util.Arrays.equals(bootstrap, Files.readAllBytes(first.bootstrap())));
        assertFalse(files(out).stream().anyMatch(p -> p.getFileName().toString().startsWith(".strata-partial")));
    }

    @Test
    void outputInsideTheSourceIsLeftOut() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Files.writeString(src.resolve("a.txt"), "a");
        RoundTrip.Warnings w = new RoundTrip.Warnings();
        BuildResult first = ImageBuilder.build(src, src.resolve("img"), BuildOptions.defaults(0), w);
        BuildResult again = ImageBuilder.build(src, src.resolve("img"), BuildOptions.defaults(0), w);
        assertEquals(first.inodes(), again.inodes(), "the second build does not take in the first one's output");
        assertEquals(2, first.inodes(), "root and a.txt");
        assertTrue(w.messages.stream().allMatch(m -> m.contains("build's output directory")), w.messages.toString());
        // The source given as a symlink to it (/lib on a merged-/usr system) is the directory it names
        // (it was refused as "not a directory"), and the output inside it is left out however spelt.
        Path src2 = Files.createDirectories(tmp.resolve("src2"));
        Files.writeString(src2.resolve("a.txt"), "a");
        Path link = Files.createSymbolicLink(tmp.resolve("link"), src2);
        BuildResult viaLink = ImageBuilder.build(link, src2.resolve("img"), BuildOptions.defaults(0), w);
        BuildResult viaLinkAgain = ImageBuilder.build(link, src2.resolve("img"), BuildOptions.defaults(0), w);
        assertEquals(2, viaLink.inodes(), "root and a.txt: " + w.messages);
        assertEquals(2, viaLinkAgain.inodes(), "the output, named by the real path, is left out of the source named by the link");
        BuildResult outViaLink = ImageBuilder.build(src2, link.resolve("img"), BuildOptions.defaults(0), w);
        assertEquals(2, outViaLink.inodes(), "the output named through the link is left out: " + w.messages);
    }

    @Test
    void missingSource() {
        BuildException e = fails(tmp.resolve("nope"), tmp.resolve("out"));
        assertTrue(e.getMessage().contains("no such directory, tar file or OCI image layout"), e.getMessage());
    }
}
