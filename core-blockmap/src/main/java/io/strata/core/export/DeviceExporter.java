package io.strata.core.export;

import io.strata.core.device.BlockDevice;
import io.strata.core.os.ExitCleanup;
import io.strata.core.verity.VerityLayout;
import io.strata.core.verity.VerityTree;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HexFormat;

/**
 * Writes a block device to a file, optionally followed by a dm-verity hash tree. The file is written
 * under a temporary name and renamed when complete, so an interrupted export leaves nothing that
 * looks finished. All-zero windows are skipped, leaving the file sparse.
 */
public final class DeviceExporter {
    /** Receives progress after each window: bytes of the device written so far, of the total. */
    @FunctionalInterface
    public interface Progress {
        void update(long done, long total);
    }

    /** What an export produced. {@code rootHash} is null without verity. */
    public record Result(long dataBytes, long treeBytes, VerityLayout verity, String rootHash) {
    }

    private static final int WINDOW = 1 << 20;

    private DeviceExporter() {
    }

    public static Result export(BlockDevice device, Path output, VerityLayout verity, Progress progress) throws IOException {
        long size = device.size();
        if (verity != null && size % VerityTree.BLOCK_SIZE != 0) {
            throw new IOException("device size " + size + " is not a multiple of 4096: no verity tree");
        }
        Path dir = output.toAbsolutePath().getParent();
        Path tmp = partialFile(dir, output);
        boolean done = false;
        try (ExitCleanup onSignal = ExitCleanup.register("export", () -> ExitCleanup.deleteQuietly(tmp));
                FileChannel out = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.READ,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            VerityTree tree = verity == null ? null : new VerityTree(verity, size / VerityTree.BLOCK_SIZE, out, size);
            ByteBuffer window = ByteBuffer.allocateDirect(WINDOW);
            ByteBuffer block = window.duplicate();
            for (long pos = 0; pos < size; pos += WINDOW) {
                int n = (int) Math.min(WINDOW, size - pos);
                window.clear().limit(n);
                device.read(pos, window);
                window.flip();
                if (tree != null) {
                    for (int b = 0; b < n; b += VerityTree.BLOCK_SIZE) {
                        block.clear().position(b).limit(b + VerityTree.BLOCK_SIZE);
                        tree.addDataBlock(block);
                    }
                }
                if (!isZero(window, n)) {
                    long p = pos;
                    while (window.hasRemaining()) {
                        p += out.write(window, p);
                    }
                }
                progress.update(pos + n, size);
            }
            String root = null;
            long treeBytes = 0;
            if (tree != null) {
                root = HexFormat.of().formatHex(tree.finish());
                treeBytes = tree.treeBytes();
            }
            if (out.size() < size + treeBytes) {
                // Trailing zeros were skipped: extend the file to its full length.
                out.write(ByteBuffer.allocate(1), size + treeBytes - 1);
            }
            out.force(false);
            if (Files.isRegularFile(output)) {
                // The mode of the file it replaces, given last: a read-only one (0444) would have kept
                // its owner from writing the export (open for writing checks the mode, except for root).
                Files.setPosixFilePermissions(tmp, Files.getPosixFilePermissions(output));
            }
            Files.move(tmp, output, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            done = true;
            return new Result(size, treeBytes, verity, root);
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /**
     * A fresh file beside {@code output} for the export to be written to and renamed from, with the
     * mode a file made there gets (0666 less the umask, as cp or dd would give it); the export gives it
     * the mode of the file it replaces once written. (Files.createTempFile makes 0600: an image QEMU or
     * libvirt then could not open.)
     */
    private static Path partialFile(Path dir, Path output) throws IOException {
        // Short: the name must stay within NAME_MAX (255 bytes) with a long output name too, cut in
        // bytes (120 'é' are 240 bytes), on a character boundary.
        String base = output.getFileName().toString();
        while (base.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 200) {
            base = base.substring(0, base.offsetByCodePoints(base.length(), -1));
        }
        String stem = "." + base + ".";
        for (int attempt = 0; ; attempt++) {
            Path p = dir.resolve(stem + Long.toHexString(java.util.concurrent.ThreadLocalRandom.current().nextLong() >>> 16) + ".partial");
            try {
                Files.createFile(p);
            } catch (java.nio.file.FileAlreadyExistsException taken) {
                if (attempt < 100) {
                    continue;
                }
                throw taken;
            } catch (java.nio.file.AccessDeniedException e) {
                // Named by the output the user gave, not the temporary name beside it.
                throw new java.nio.file.AccessDeniedException(output.toString(), null, "cannot create a file in " + dir + ": permission denied");
            } catch (java.nio.file.FileSystemException e) {
                throw new java.nio.file.FileSystemException(output.toString(), null, "cannot create a file in " + dir
                        + (e.getReason() != null ? ": " + e.getReason() : ""));
            }
            return p;
        }
    }

    private static boolean isZero(ByteBuffer b, int n) {
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            if (b.getLong(i) != 0) {
                return false;
            }
        }
        for (; i < n; i++) {
            if (b.get(i) != 0) {
                return false;
            }
        }
        return true;
    }
}
