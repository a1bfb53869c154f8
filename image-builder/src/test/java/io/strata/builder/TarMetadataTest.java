package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.builder.testing.OciWriter;
import io.strata.builder.testing.RoundTrip;
import io.strata.builder.testing.TarWriter;
import io.strata.builder.testing.TreeAssert;
import io.strata.builder.testing.TreeSnapshot;
import io.strata.core.testing.HostTools;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tar entry's metadata as {@code tar -x} would restore it, or a refusal, never a silently different
 * file: owners beyond 32 bits, damaged headers, more xattrs than an inode holds, an opaque marker
 * before its directory, a directory named twice, POSIX ACLs in GNU tar's text records, xattr names
 * that are not UTF-8; and an OCI layout with one image under two tags, or two images named by tag.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TarMetadataTest {
    private static final long BUILD_TIME = 1_700_000_000L;

    @TempDir
    Path tmp;

    private BuildException fails(Path source) {
        BuildException e = assertThrows(BuildException.class,
                () -> ImageBuilder.build(source, tmp.resolve("out"), BuildOptions.defaults(0), BuildListener.SILENT));
        System.out.println("error as reported: " + e.getMessage());
        return e;
    }

    private Path write(String name, byte[] bytes) throws Exception {
        return Files.write(tmp.resolve(name), bytes);
    }

    /** Builds {@code source}, mounts it with the kernel and hands over the mounted tree's snapshot. */
    private TreeSnapshot builtAndMounted(Path source, String name) throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path out = tmp.resolve("out-" + name);
        ImageBuilder.build(source, out, BuildOptions.defaults(BUILD_TIME), BuildListener.SILENT);
        Path disk = RoundTrip.export(out, tmp.resolve(name + ".raw"), false);
        TreeSnapshot[] seen = new TreeSnapshot[1];
        RoundTrip.mounted(disk, tmp.resolve("mnt-" + name), m -> seen[0] = TreeSnapshot.of(m));
        return seen[0];
    }

    @Test
    void anOwnerBeyond32BitsIsRefused() throws Exception {
        // Cut to 32 bits, uid 2^32 was root: a set-uid root file. GNU tar refuses it ("out of range").
        for (String[] owner : List.of(new String[] {"uid", "4294967296"}, new String[] {"gid", "4294967301"})) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            try (TarArchiveOutputStream t = new TarArchiveOutputStream(b, StandardCharsets.UTF_8.name())) {
                t.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
                TarArchiveEntry e = new TarArchiveEntry("suid");
                e.setMode(0104755);
                e.setSize(1);
                if (owner[0].equals("uid")) {
                    e.setUserId(Long.parseLong(owner[1]));
                } else {
                    e.setGroupId(Long.parseLong(owner[1]));
                }
                t.putArchiveEntry(e);
                t.write('x');
                t.closeArchiveEntry();
            }
            BuildException e = fails(write(owner[0] + ".tar", b.toByteArray()));
            assertTrue(e.getMessage().contains("'suid' has " + owner[0] + " " + owner[1] + ", outside 0..4294967295"), e.getMessage());
        }
    }

    @Test
    void aHeaderWhoseChecksumDoesNotMatchIsRefused() throws Exception {
        byte[] tar = new TarWriter().file("ok", "fine").file("victim", "data").bytes();
        // The second header (after the first's 512-byte header and 512-byte data block): its mode
        // field (offset 100) "0100644" becomes "0104644", set-uid, with the checksum left as it was.
        int mode = 1024 + 100;
        assertEquals("0100644", new String(tar, mode, 7, StandardCharsets.US_ASCII));
        tar[mode + 3] = '4';
        BuildException e = fails(write("damaged.tar", tar));
        assertTrue(e.getMessage().contains("entry 'victim': its tar header's checksum does not match"), e.getMessage());
    }

    @Test
    void moreXattrsThanAnInodeHoldsAreRefused() throws Exception {
        // Each value within the 65,535-byte limit; together past what the 16-bit i_xattr_icount can
        // describe. Before, the count wrapped and the kernel read past the area ("Structure needs cleaning").
        Map<String, String> pax = new LinkedHashMap<>();
        for (char c = 'a'; c <= 'e'; c++) {
            pax.put("SCHILY.xattr.user." + c, "v".repeat(60_000));
        }
        BuildException e = fails(write("xattrs.tar", new TarWriter().file("big", "x".getBytes(StandardCharsets.UTF_8), pax).bytes()));
        assertTrue(e.getMessage().contains("'/big': its xattrs take") && e.getMessage().contains("at most 262136 bytes"), e.getMessage());
    }

    /**
     * libarchive's LIBARCHIVE.xattr names escape only bytes outside 33..126, '%' and '=': a '+' is
     * itself (URL decoding made it a space, so bsdtar's two records of one xattr became two xattrs),
     * an escape that is not UTF-8 is refused (it became U+FFFD), and a NUL in any xattr name is refused
     * (listxattr would show two names).
     */
    @Test
    void libarchiveXattrNamesAreReadAsLibarchiveWritesThem() throws Exception {
        String v = java.util.Base64.getEncoder().encodeToString("v".getBytes(StandardCharsets.UTF_8));
        byte[] tar = new TarWriter()
                .file("both", "x".getBytes(StandardCharsets.UTF_8), Map.of("LIBARCHIVE.xattr.user.a+b", v, "SCHILY.xattr.user.a+b", "v"))
                .file("escaped", "x".getBytes(StandardCharsets.UTF_8), Map.of("LIBARCHIVE.xattr.user.caf%C3%A9%3D", v))
                .bytes();
        TreeSnapshot t = builtAndMounted(write("libarchive.tar", tar), "libarchive");
        assertEquals(Map.of("user.a+b", "0x76"), t.entries().get("/both").xattrs());
        assertEquals(Map.of("user.caf\u00e9=", "0x76"), t.entries().get("/escaped").xattrs());
        BuildException latin1 = fails(write("latin1.tar", new TarWriter()
                .file("f", "x".getBytes(StandardCharsets.UTF_8), Map.of("LIBARCHIVE.xattr.user.caf%E9", v)).bytes()));
        assertTrue(latin1.getMessage().contains("has an xattr whose name is not UTF-8"), latin1.getMessage());
        BuildException nul = fails(write("nul.tar", new TarWriter()
                .file("f", "x".getBytes(StandardCharsets.UTF_8), Map.of("SCHILY.xattr.user.a\u0000b", "v")).bytes()));
        assertTrue(nul.getMessage().contains("a NUL byte in its name"), nul.getMessage());
    }

    @Test
    void anOpaqueMarkerBeforeItsDirectoryStaysAndADirectoryNamedTwiceTakesTheLaterXattrs() throws Exception {
        byte[] tar = new TarWriter()
                .file("d/.wh..wh..opq", new byte[0])
                .dir("d")
                .file("d/f", "f")
                .dir("e", Map.of("SCHILY.xattr.user.first", "1"))
                .dir("e", Map.of("SCHILY.xattr.user.second", "2"))
                .bytes();
        TreeSnapshot t = builtAndMounted(write("overlay.tar", tar), "overlay");
        assertEquals("0x79", t.entries().get("/d").xattrs().get("trusted.overlay.opaque"), t.entries().get("/d").toString());
        // The later entry's xattrs replace the earlier's (tar --acls -x replaces ACLs; an upper layer's
        // directory shows only its own under overlayfs): a removed ACL must not survive.
        assertEquals(Map.of("user.second", "0x32"), t.entries().get("/e").xattrs());
    }

    /**
     * A whiteout of a directory applies to lower layers only, wherever it stands among its own
     * layer's entries (OCI image spec, "Whiteouts"; umoci's unpack): its layer's a/y written before
     * .wh.a stays (it was removed with the rest of a), and a lower b/x under a b/ its layer declared
     * again goes (it stayed).
     */
    @Test
    void aDirectoryWhiteoutHidesLowerLayersOnly() throws Exception {
        Path layout = tmp.resolve("whiteouts");
        OciWriter.write(layout, List.of(
                gzip(new TarWriter().dir("a").file("a/x", "x").dir("b").file("b/x", "x").dir("c").file("c/x", "x").bytes()),
                gzip(new TarWriter().file("a/y", "y").file(".wh.a", new byte[0])
                        .dir("b").file(".wh.b", new byte[0])
                        .file(".wh.c", new byte[0]).file("c/z", "z").bytes())),
                "application/vnd.oci.image.layer.v1.tar+gzip");
        TreeSnapshot t = builtAndMounted(layout, "whiteouts");
        java.util.Set<String> names = new java.util.TreeSet<>(t.entries().keySet());
        names.remove("/");
        assertEquals(new java.util.TreeSet<>(List.of("/a", "/a/y", "/b", "/c", "/c/z")), names);
    }

    /** An upper layer's directory shows its own xattrs only (overlayfs), a lower layer's do not leak through. */
    @Test
    void aDirectoryOfALaterLayerHasOnlyItsOwnXattrs() throws Exception {
        Path layout = tmp.resolve("layers");
        OciWriter.write(layout, List.of(
                gzip(new TarWriter().dir("d", Map.of("SCHILY.xattr.user.lower", "1")).file("d/old", "old").bytes()),
                gzip(new TarWriter().dir("d").file("d/.wh..wh..opq", new byte[0]).file("d/new", "new").bytes())),
                "application/vnd.oci.image.layer.v1.tar+gzip");
        TreeSnapshot t = builtAndMounted(layout, "layers");
        assertEquals(Map.of(), t.entries().get("/d").xattrs(), t.entries().get("/d").toString());
        assertEquals(null, t.entries().get("/d/old"));
        assertTrue(t.entries().containsKey("/d/new"));
    }

    /**
     * GNU tar --acls writes SCHILY.acl.access and SCHILY.acl.default as text, naming users and groups
     * this host knows (root, daemon) and numbering the rest; the image must hold the same
     * system.posix_acl_* values the source had (the kernel checks access by them), read back through
     * the kernel's EROFS. A minimal ACL (the mode bits) is stored as none, as the kernel does.
     */
    @Test
    void gnuTarAclsBecomeTheKernelsAclXattrs() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        HostTools.requireTool("setfattr", "attr");
        Path src = Files.createDirectories(tmp.resolve("src/dir"));
        Path f = Files.writeString(src.resolve("shared"), "acl\n");
        Files.createDirectories(src.resolve("inherits"));
        // user::rw- user:root:rwx user:1234:r-x group::r-- group:55:r-x mask::rwx other::r--
        String access = acl(1, 6, -1, 2, 7, 0, 2, 5, 1234, 4, 4, -1, 8, 5, 55, 0x10, 7, -1, 0x20, 4, -1);
        // default: user::rwx user:daemon(1):rwx group::r-x mask::rwx other::r-x
        String dflt = acl(1, 7, -1, 2, 7, 1, 4, 5, -1, 0x10, 7, -1, 0x20, 5, -1);
        HostTools.run(List.of("setfattr", "-n", "system.posix_acl_access", "-v", access, f.toString()));
        HostTools.run(List.of("setfattr", "-n", "system.posix_acl_default", "-v", dflt, src.resolve("inherits").toString()));
        Path tar = tmp.resolve("acls.tar");
        HostTools.run(List.of("tar", "--acls", "--format=posix", "--numeric-owner", "-C", tmp.resolve("src").toString(),
                "-cf", tar.toString(), "dir"));
        String records = HostTools.run(List.of("strings", tar.toString()));
        assertTrue(records.contains("SCHILY.acl.access") && records.contains("user:root:rwx"), records);
        TreeSnapshot expected = TreeSnapshot.of(tmp.resolve("src"));
        assertEquals(access, expected.entries().get("/dir/shared").xattrs().get("system.posix_acl_access"));
        TreeSnapshot image = builtAndMounted(tar, "acls");
        TreeAssert.assertSameTree(expected, image, new TreeAssert.Ignore(true, true, true));

        // A name this host does not know: refused rather than guessed (or dropped, widening access).
        Map<String, String> unknown = Map.of("SCHILY.acl.access", "user::rw-\nuser:no-such-user-here:rwx\ngroup::r--\nmask::rwx\nother::r--\n");
        BuildException e = fails(write("unknown.tar", new TarWriter().file("f", "f".getBytes(StandardCharsets.UTF_8), unknown).bytes()));
        assertTrue(e.getMessage().contains("names 'no-such-user-here', which /etc/passwd does not list"), e.getMessage());
    }

    /** The kernel's ACL xattr value (version 2, then tag, perm, id per entry) as setfattr's 0x hex. */
    private static String acl(int... tagPermId) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 + tagPermId.length / 3 * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(2);
        for (int i = 0; i < tagPermId.length; i += 3) {
            b.putShort((short) tagPermId[i]).putShort((short) tagPermId[i + 1]).putInt(tagPermId[i + 2]);
        }
        return "0x" + HexFormat.of().formatHex(b.array());
    }

    @Test
    void anXattrNameThatIsNotUtf8IsRefused() throws Exception {
        // Decoded with replacement, user.caf\xe9 became user.caf\ufffd: a different name, silently.
        Path src = Files.createDirectories(tmp.resolve("tree"));
        Files.writeString(src.resolve("f"), "f");
        HostTools.run(List.of("python3", "-c", "import os,sys; os.setxattr(sys.argv[1].encode(), b'user.caf\\xe9', b'v')",
                src.resolve("f").toString()));
        BuildException e = fails(src);
        assertTrue(e.getMessage().contains("has an xattr whose name is not UTF-8"), e.getMessage());
    }

    @Test
    void oneImageUnderTwoTagsBuildsAndTwoImagesAreNamedByTag() throws Exception {
        Path layout = tmp.resolve("oci");
        OciWriter.write(layout, List.of(gzip(new TarWriter().file("a", "a").bytes())), "application/vnd.oci.image.layer.v1.tar+gzip");
        String index = Files.readString(layout.resolve("index.json"));
        String descriptor = index.substring(index.indexOf("[{") + 1, index.lastIndexOf("}]") + 1);
        String latest = tagged(descriptor, "latest");
        Files.writeString(layout.resolve("index.json"), "{\"schemaVersion\":2,\"manifests\":[" + latest + "," + tagged(descriptor, "v1") + "]}");
        ImageBuilder.build(layout, tmp.resolve("two-tags"), BuildOptions.defaults(0), BuildListener.SILENT);

        // A second image under tag "other": the plain layout is ambiguous; DIR:TAG picks one.
        Path other = tmp.resolve("other");
        OciWriter.write(other, List.of(gzip(new TarWriter().file("b", "b").bytes())), "application/vnd.oci.image.layer.v1.tar+gzip");
        for (Path blob : Files.newDirectoryStream(other.resolve("blobs/sha256"))) {
            Files.copy(blob, layout.resolve("blobs/sha256").resolve(blob.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        String otherIndex = Files.readString(other.resolve("index.json"));
        String otherDescriptor = otherIndex.substring(otherIndex.indexOf("[{") + 1, otherIndex.lastIndexOf("}]") + 1);
        Files.writeString(layout.resolve("index.json"), "{\"schemaVersion\":2,\"manifests\":[" + latest + ","
                + tagged(otherDescriptor, "other") + "," + tagged(otherDescriptor, "library/other:3.19") + "]}");
        assertTrue(fails(layout).getMessage().contains("name one as DIR:TAG"));
        assertTrue(fails(Path.of(layout + ":nope")).getMessage().contains("no manifest tagged 'nope' (tags: latest, library/other:3.19, other)"));
        ImageBuilder.build(Path.of(layout + ":other"), tmp.resolve("by-tag"), BuildOptions.defaults(0), BuildListener.SILENT);
        assertTrue(Files.exists(tmp.resolve("by-tag/bootstrap")));
        // A tag with ':' and '/' in it, as skopeo's oci:DIR:alpine:3.19 writes (it was "source not found").
        ImageBuilder.build(Path.of(layout + ":library/other:3.19"), tmp.resolve("by-tag2"), BuildOptions.defaults(0), BuildListener.SILENT);
        assertTrue(Files.exists(tmp.resolve("by-tag2/bootstrap")));
    }

    private static String tagged(String descriptor, String tag) {
        return descriptor.substring(0, descriptor.length() - 1) + ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"" + tag + "\"}}";
    }

    @Test
    void aTruncatedGzipTarSaysItEndsEarly() throws Exception {
        byte[] whole = gzip(new TarWriter().file("zeros", new byte[1 << 20]).file("more", "more").bytes());
        byte[] cut = java.util.Arrays.copyOf(whole, whole.length / 2);
        BuildException e = fails(write("cut.tar.gz", cut));
        assertTrue(e.getMessage().contains("ends early"), e.getMessage());
    }

    private static byte[] gzip(byte[] data) throws Exception {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        try (GZIPOutputStream g = new GZIPOutputStream(o)) {
            g.write(data);
        }
        return o.toByteArray();
    }
}
