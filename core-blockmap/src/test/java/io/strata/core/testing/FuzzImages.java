package io.strata.core.testing;

import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.DeviceSlot;
import io.strata.core.image.ErofsSuperblock;
import io.strata.core.image.RafsImage;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * What the image fuzz tests share: one scratch bootstrap file per JVM (rewritten for every input),
 * and a blob directory holding the real blobs their seeds name (the Nydus fixture's blob and the
 * blobs of the small Strata-built images under {@code io/strata/core/image/fuzz-blobs/}).
 */
public final class FuzzImages {
    /** The blobs committed beside the seeds (each a few KiB), by blob id. */
    private static final String BLOB_RESOURCES = "/io/strata/core/image/fuzz-blobs/";
    private static final String BLOB_LIST = BLOB_RESOURCES + "blobs.txt";

    private static Path scratch;
    private static Path blobDir;
    private static Path scratchDir;

    private FuzzImages() {
    }

    /**
     * A directory for the files a fuzz test writes per input, made once per JVM: in /dev/shm when
     * there is one (a fuzzer writes thousands of files a second; the builder also fsyncs its blobs),
     * else in java.io.tmpdir. Deleted at exit.
     */
    public static synchronized Path scratchDir() throws IOException {
        if (scratchDir == null) {
            Path shm = Path.of("/dev/shm");
            scratchDir = Files.isDirectory(shm) && Files.isWritable(shm)
                    ? Files.createTempDirectory(shm, "strata-fuzz") : Files.createTempDirectory("strata-fuzz");
            Path dir = scratchDir;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try (var all = Files.walk(dir)) {
                    all.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                } catch (IOException ignored) {
                    // best effort: a temporary directory
                }
            }));
        }
        return scratchDir;
    }

    /**
     * Writes a fuzz input as the scratch bootstrap. When the input claims a superblock checksum, it is
     * recomputed first, so that mutations reach the structures behind it (a bad checksum has its own
     * test in BadInputTest).
     */
    public static synchronized Path writeBootstrap(byte[] input) throws IOException {
        if (scratch == null) {
            scratch = scratchDir().resolve("bootstrap");
        }
        if (input.length >= RafsImage.BLOCK_SIZE) {
            ByteBuffer b = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN);
            int compat = b.getInt(ErofsSuperblock.OFFSET + 8);
            if ((compat & ErofsSuperblock.COMPAT_SB_CHKSUM) != 0 && (b.get(ErofsSuperblock.OFFSET + 12) & 0xff) == 12) {
                b.putInt(ErofsSuperblock.OFFSET + 4, ErofsSuperblock.computeChecksum(b, RafsImage.BLOCK_SIZE));
            }
        }
        Files.write(scratch, input);
        return scratch;
    }

    /** The directory of every blob the seeds name (made once per JVM). */
    public static synchronized Path blobDir() {
        if (blobDir == null) {
            try {
                Path dir = Files.createTempDirectory("strata-fuzz-blobs");
                Files.copy(Fixtures.nydusDir().resolve(Fixtures.NYDUS_BLOB_ID), dir.resolve(Fixtures.NYDUS_BLOB_ID));
                try (InputStream list = FuzzImages.class.getResourceAsStream(BLOB_LIST)) {
                    if (list != null) {
                        for (String id : new String(list.readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII).split("\\s+")) {
                            if (id.isEmpty()) {
                                continue;
                            }
                            try (InputStream blob = FuzzImages.class.getResourceAsStream(BLOB_RESOURCES + id)) {
                                if (blob == null) {
                                    throw new IllegalStateException("blob " + id + " listed in " + BLOB_LIST + " is missing");
                                }
                                Files.copy(blob, dir.resolve(id), StandardCopyOption.REPLACE_EXISTING);
                            }
                        }
                    }
                }
                try (var files = Files.list(dir)) {
                    files.forEach(f -> f.toFile().deleteOnExit());
                }
                dir.toFile().deleteOnExit();
                blobDir = dir;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return blobDir;
    }

    /**
     * What an accepted image must satisfy (issue 8, defect 4): every device slot as large as its
     * blob's uncompressed space, rounded up to blocks, and the flat device no larger than the
     * bootstrap and the blobs laid end to end (each start aligned as Nydus aligns it) within 32-bit
     * block addresses.
     */
    public static void checkSizesAgree(RafsImage image) {
        List<DeviceSlot> devices = image.devices();
        long bound = RafsImage.alignBlocks(image.fileSize() / RafsImage.BLOCK_SIZE);
        for (int i = 0; i < devices.size(); i++) {
            DeviceSlot d = devices.get(i);
            BlobTableEntry blob = image.blobs().get(i);
            long want = (blob.uncompressedSize() + RafsImage.BLOCK_SIZE - 1) / RafsImage.BLOCK_SIZE;
            if (d.blocks() != want) {
                throw new AssertionError("accepted: device slot " + i + " has " + d.blocks() + " blocks for blob "
                        + blob.blobId() + " of " + blob.uncompressedSize() + " bytes");
            }
            bound = RafsImage.alignBlocks(bound + d.blocks());
        }
        if (image.flatDeviceBlocks() > bound || image.flatDeviceBlocks() > RafsImage.MAX_DEVICE_BLOCKS) {
            throw new AssertionError("accepted: a flat device of " + image.flatDeviceBlocks() + " blocks (bound " + bound + ")");
        }
    }
}
