package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.RawImageDevice;
import io.strata.core.testing.HostTools;
import io.strata.core.testing.HostTools.ErofsMount;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NBD server against the clients people use: nbdinfo, nbdcopy (4 connections), qemu-img and
 * fio's nbd engine, over a unix socket and TCP on 127.0.0.1. Exports: the Nydus fixture (default)
 * and "tree", a mkfs.erofs image of a few thousand real files from this machine.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RealClientsTest {
    Path tmp;
    ServerFixture server;
    Path tree;
    Path treeImage;

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        tmp = dir;
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        HostTools.requireTool("mkfs.erofs", "erofs-utils");
        tree = realTree();
        treeImage = tmp.resolve("tree.erofs");
        HostTools.run(List.of("mkfs.erofs", treeImage.toString(), tree.toString()));
        RawImageDevice raw = RawImageDevice.open(treeImage);
        oddImage = tmp.resolve("odd.raw");
        byte[] odd = new byte[1000];
        new java.util.Random(5).nextBytes(odd);
        Files.write(oddImage, odd);
        sparseImage = tmp.resolve("sparse.raw");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(sparseImage.toFile(), "rw")) {
            f.setLength(8 << 20);
            f.seek(4 << 20);
            f.write(odd); // 1000 bytes of data in the middle of 8 MiB of holes
        }
        server = new ServerFixture(tmp, List.of(new Export("tree", raw, "mkfs.erofs image of " + tree),
                new Export("odd", RawImageDevice.open(oddImage), "1000 bytes"),
                new Export("sparse", RawImageDevice.open(sparseImage), "a sparse file")));
    }

    /** A raw image of 1000 bytes: not a whole number of 512-byte blocks. */
    Path oddImage;
    /** 8 MiB with 1000 bytes written at 4 MiB, the rest holes. */
    Path sparseImage;

    /** A directory of this machine with a few thousand files (STRATA_TREE overrides). */
    static Path realTree() throws Exception {
        String env = System.getenv("STRATA_TREE");
        List<String> candidates = env != null ? List.of(env) : List.of("/usr/lib/python3", "/usr/include", "/usr/share/doc");
        for (String c : candidates) {
            Path p = Paths.get(c);
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.walk(p)) {
                    if (s.filter(Files::isRegularFile).count() >= 2000) {
                        return p;
                    }
                }
            }
        }
        throw new IllegalStateException("no directory with 2000+ files among " + candidates);
    }

    @AfterAll
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void nbdinfoListsExportsAndMapsHoles() throws Exception {
        String list = HostTools.run(List.of("nbdinfo", "--list", server.unixUri("")));
        assertTrue(list.contains("export=\"\"") && list.contains("export=\"tree\""), list);
        String map = HostTools.run(List.of("nbdinfo", "--map", server.tcpUri("")));
        // The gap between the bootstrap (20480 bytes) and the blob at mapped_blkaddr 0x200 is a hole.
        assertTrue(map.lines().anyMatch(l -> l.trim().matches("20480\\s+2076672\\s+3\\s+hole,zero")), map);
        assertTrue(map.lines().anyMatch(l -> l.trim().matches("2097152\\s+36864\\s+0\\s+data")), map);
        String info = HostTools.run(List.of("nbdinfo", server.unixUri("tree")));
        assertTrue(info.contains("is_read_only: true") && info.contains("can_multi_conn: true")
                && info.contains("block_size_preferred: 4096"), info);
    }

    /**
     * An export whose size is not a multiple of 512 advertises a minimum block size of 1 (as qemu-nbd
     * does): with 512, nbdcopy refused the unaligned tail ("request is unaligned") and qemu-img
     * aborted on its assertion that every request is a multiple of the minimum.
     */
    @Test
    void anExportOfAnOddSizeIsCopiedWhole() throws Exception {
        HostTools.requireTool("qemu-img", "qemu-utils");
        String info = HostTools.run(List.of("nbdinfo", server.unixUri("odd")));
        assertTrue(info.contains("export-size: 1000") && info.contains("block_size_minimum: 1"), info);
        Path copy = tmp.resolve("odd-copy.raw");
        HostTools.run(List.of("nbdcopy", server.unixUri("odd"), copy.toString()));
        assertEquals(-1, Files.mismatch(oddImage, copy), "nbdcopy's copy");
        Path converted = tmp.resolve("odd-converted.raw");
        HostTools.run(List.of("qemu-img", "convert", "-f", "raw", "-O", "raw", server.unixUri("odd"), converted.toString()));
        // qemu's block layer counts whole sectors: its copy is 1024 bytes, the last 24 zeros (so with nbdkit too).
        byte[] q = Files.readAllBytes(converted);
        assertArrayEquals(Files.readAllBytes(oddImage), java.util.Arrays.copyOf(q, 1000), "qemu-img's copy");
        assertArrayEquals(new byte[q.length - 1000], java.util.Arrays.copyOfRange(q, 1000, q.length), "qemu-img's padding");
        // Whole-block exports keep 512.
        assertTrue(HostTools.run(List.of("nbdinfo", server.unixUri("tree"))).contains("block_size_minimum: 512"));
    }

    /**
     * A sparse raw image's holes are holes in base:allocation, as qemu-nbd and nbdkit report them,
     * so nbdinfo --map shows them and copies skip them (it was one data extent of 8 MiB).
     */
    @Test
    void aSparseRawImageMapsItsHoles() throws Exception {
        String map = HostTools.run(List.of("nbdinfo", "--map", server.unixUri("sparse")));
        assertTrue(map.lines().anyMatch(l -> l.trim().matches("0\\s+4194304\\s+3\\s+hole,zero")), map);
        assertTrue(map.lines().anyMatch(l -> l.trim().matches("4194304\\s+\\d+\\s+0\\s+data")), map);
        Path copy = tmp.resolve("sparse-copy.raw");
        HostTools.run(List.of("nbdcopy", server.unixUri("sparse"), copy.toString()));
        assertEquals(-1, Files.mismatch(sparseImage, copy));
    }

    @Test
    void nbdcopyWithFourConnectionsIsByteIdentical() throws Exception {
        for (String uri : List.of(server.unixUri(""), server.tcpUri(""))) {
            Path out = tmp.resolve("copy-" + Math.abs(uri.hashCode()) + ".raw");
            HostTools.run(List.of("nbdcopy", "--connections=4", uri, out.toString()));
            assertArrayEquals(Files.readAllBytes(server.fixtureExport), Files.readAllBytes(out), uri);
        }
        Path out = tmp.resolve("tree-copy.raw");
        HostTools.run(List.of("nbdcopy", "--connections=4", server.tcpUri("tree"), out.toString()));
        assertEquals(-1, Files.mismatch(treeImage, out));
    }

    @Test
    void copiesMountAndEveryFileMatchesItsSource() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path treeCopy = tmp.resolve("tree-mount.raw");
        HostTools.run(List.of("nbdcopy", "--connections=4", server.unixUri("tree"), treeCopy.toString()));
        Map<String, String> source = md5Tree(tree);
        try (ErofsMount m = new ErofsMount(treeCopy, tmp.resolve("mnt-tree"))) {
            Map<String, String> mounted = md5Tree(m.path());
            assertTrue(source.size() >= 2000, "a few thousand files: " + source.size());
            assertEquals(source, mounted);
        }
        Path fixtureCopy = tmp.resolve("fixture-mount.raw");
        HostTools.run(List.of("nbdcopy", server.unixUri(""), fixtureCopy.toString()));
        try (ErofsMount m = new ErofsMount(fixtureCopy, tmp.resolve("mnt-fixture"))) {
            assertEquals(16931, Files.size(m.path().resolve("lib.rs")));
            assertEquals(13400, Files.size(m.path().resolve("sync_io.rs")));
            Map<String, String> files = md5Tree(m.path());
            assertEquals(2, files.size());
        }
    }

    @Test
    void qemuImgComparesEqual() throws Exception {
        HostTools.requireTool("qemu-img", "qemu-utils");
        HostTools.run(List.of("qemu-img", "compare", "-f", "raw", "-F", "raw", server.unixUri(""), server.fixtureExport.toString()));
        HostTools.run(List.of("qemu-img", "compare", "-f", "raw", "-F", "raw", server.tcpUri("tree"), treeImage.toString()));
        // And compare can fail: a different file must not compare equal.
        Path other = tmp.resolve("other.raw");
        byte[] b = Files.readAllBytes(server.fixtureExport);
        b[100] ^= 1;
        Files.write(other, b);
        assertEquals(1, HostTools.execute(List.of("qemu-img", "compare", "-f", "raw", "-F", "raw",
                server.unixUri(""), other.toString())).exitCode());
    }

    @Test
    void fioNbdEngineRunsClean() throws Exception {
        HostTools.requireTool("fio", "fio");
        for (String uri : List.of(server.unixUri("tree"), server.tcpUri("tree"))) {
            String out = HostTools.run(List.of("fio", "--name=strata", "--ioengine=nbd", "--uri=" + uri,
                    "--rw=randread", "--bs=4k", "--iodepth=16", "--runtime=2", "--time_based",
                    "--output-format=json"));
            String json = out.substring(out.indexOf('{'));
            var node = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json);
            var job = node.get("jobs").get(0);
            assertEquals(0, job.get("error").asInt(), out);
            assertTrue(job.get("read").get("io_bytes").asLong() > 0, out);
        }
    }

    static Map<String, String> md5Tree(Path root) throws Exception {
        Map<String, String> out = new TreeMap<>();
        MessageDigest md5 = MessageDigest.getInstance("MD5");
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                if (Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                    out.put(root.relativize(p).toString(), HexFormat.of().formatHex(md5.digest(Files.readAllBytes(p))));
                }
            }
        }
        return out;
    }
}
