package io.strata.core.image;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A "bootstrap" grown to 2,000 MB (sparse: it costs its sender nothing) is refused from its superblock
 * and device table, before it is read: it was read whole into the heap, 16 s and 4 GB to refuse it,
 * or an OutOfMemoryError with a smaller heap. The test runs in the default test heap, far below 2 GB.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OversizedBootstrapTest {
    @TempDir
    Path tmp;

    @Test
    void aBootstrapLongerThanTheDeviceLeavesItIsRefusedBeforeItIsRead() throws Exception {
        Path big = Files.copy(Fixtures.nydusBootstrap(), tmp.resolve("big.boot"));
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(2000L << 20);
        }
        ImageFormatException e = assertThrows(ImageFormatException.class, () -> RafsImage.open(big));
        assertTrue(e.getMessage().contains("mapped_blkaddr") && e.getMessage().contains("overlaps the bootstrap (512000 blocks)"),
                e.getMessage());
    }
}
