package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.export.DeviceExporter;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import io.strata.core.testing.HostTools.ErofsMount;
import io.strata.core.verity.VerityLayout;
import io.strata.core.verity.VeritysetupArgs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real Nydus image: Strata must compose it exactly as Nydus does, and the kernel must mount it. */
class NydusFixtureTest {
    @TempDir
    Path tmp;

    private static FlatDevice open(boolean legacy) throws IOException {
        return FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()),
                FlatDeviceOptions.defaults().withLegacyKernel(legacy));
    }

    @Test
    void composesTo0x209Blocks() throws IOException {
        try (FlatDevice dev = open(false)) {
            assertEquals(Fixtures.NYDUS_BLOCKS * 4096, dev.size());
            RafsImage img = dev.image();
            assertEquals(1, img.blobs().size());
            assertEquals(Fixtures.NYDUS_BLOB_ID, img.blobs().get(0).blobId());
            assertEquals(0x200, img.devices().get(0).mappedBlkaddr());
            assertEquals(2, img.chunks().size());
        }
    }

    @Test
    void nydusVerityExportHasNydusSha256() throws Exception {
        Path out = tmp.resolve("disk.raw");
        DeviceExporter.Result r;
        try (FlatDevice dev = open(false)) {
            r = DeviceExporter.export(dev, out, VerityLayout.NYDUS, (d, t) -> { });
        }
        assertEquals(Fixtures.NYDUS_VERITY_EXPORT_SHA256, sha256(out));
        assertEquals(Fixtures.NYDUS_BLOCKS * 4096 + r.treeBytes(), Files.size(out));
    }

    @Test
    void exportMountsWithTheKernelsErofs() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        Path flat = tmp.resolve("flat.raw");
        Path legacy = tmp.resolve("legacy.raw");
        try (FlatDevice dev = open(false)) {
            DeviceExporter.export(dev, flat, null, (d, t) -> { });
        }
        try (FlatDevice dev = open(true)) {
            DeviceExporter.export(dev, legacy, null, (d, t) -> { });
        }
        Map<String, String> flatFiles;
        Map<String, String> legacyFiles;
        try (ErofsMount m = new ErofsMount(flat, tmp.resolve("mnt-flat"))) {
            flatFiles = digestTree(m.path());
            assertEquals(16931, Files.size(m.path().resolve("lib.rs")));
            assertEquals(13400, Files.size(m.path().resolve("sync_io.rs")));
            assertTrue(Files.readString(m.path().resolve("lib.rs")).contains("fn "), "lib.rs should be Rust source");
        }
        try (ErofsMount m = new ErofsMount(legacy, tmp.resolve("mnt-legacy"))) {
            legacyFiles = digestTree(m.path());
        }
        assertEquals(List.of("lib.rs", "sync_io.rs"), List.copyOf(flatFiles.keySet()));
        assertEquals(flatFiles, legacyFiles);
        // The legacy export differs only in its bootstrap; the data blocks are the same bytes.
        byte[] a = Files.readAllBytes(flat);
        byte[] b = Files.readAllBytes(legacy);
        int bootstrap = (int) Files.size(Fixtures.nydusBootstrap());
        assertNotEquals(ByteBuffer.wrap(a, 0, bootstrap), ByteBuffer.wrap(b, 0, bootstrap));
        assertArrayEquals(java.util.Arrays.copyOfRange(a, bootstrap, a.length), java.util.Arrays.copyOfRange(b, bootstrap, b.length));
    }

    @Test
    void veritysetupAcceptsTheStandardTree() throws Exception {
        HostTools.requireTool("veritysetup", "cryptsetup-bin");
        Path out = tmp.resolve("verity.raw");
        DeviceExporter.Result r;
        try (FlatDevice dev = open(false)) {
            r = DeviceExporter.export(dev, out, VerityLayout.VERITYSETUP, (d, t) -> { });
        }
        List<String> verify = VeritysetupArgs.verify(out, r);
        HostTools.run(verify);
        // A flipped data byte must make the same check fail, or the check proves nothing.
        try (var ch = java.nio.channels.FileChannel.open(out, java.nio.file.StandardOpenOption.WRITE,
                java.nio.file.StandardOpenOption.READ)) {
            ByteBuffer one = ByteBuffer.allocate(1);
            ch.read(one, 0x200L * 4096 + 100);
            one.put(0, (byte) (one.get(0) ^ 0x55)).rewind();
            ch.write(one, 0x200L * 4096 + 100);
        }
        assertNotEquals(0, HostTools.execute(verify).exitCode());
    }

    static Map<String, String> digestTree(Path root) throws Exception {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                if (Files.isRegularFile(p)) {
                    out.put(root.relativize(p).toString(), HexFormat.of().formatHex(
                            MessageDigest.getInstance("MD5").digest(Files.readAllBytes(p))));
                }
            }
        }
        return out;
    }

    static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }
}
