package io.strata.core.image;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.core.testing.FuzzContract;
import io.strata.core.testing.FuzzImages;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Mutated bootstraps through {@link LegacyBootstrap#rewrite}, which walks the directory tree (inodes,
 * directory blocks, chunk indexes) that {@link RafsImage} does not: either a format error naming
 * file and field, or a rewritten bootstrap of the same size with no device table and the flat
 * device's size in its superblock. Seeds: {@code LegacyBootstrapFuzzTestInputs/fuzz/} (the Nydus
 * fixture, Strata-built images with files, hard links and directories).
 */
class LegacyBootstrapFuzzTest {
    @FuzzTest
    void fuzz(byte[] input) throws IOException {
        Path file = FuzzImages.writeBootstrap(input);
        RafsImage image;
        ByteBuffer out;
        try {
            image = RafsImage.open(file);
            out = LegacyBootstrap.rewrite(image);
        } catch (ImageFormatException e) {
            FuzzContract.checkRefusal(e, file);
            return;
        }
        if (out.remaining() != image.fileSize()) {
            throw new AssertionError("rewritten bootstrap is " + out.remaining() + " bytes, the original " + image.fileSize());
        }
        ErofsSuperblock sb = ErofsSuperblock.decode(out);
        if (sb.extraDevices() != 0 || sb.hasDeviceTable() || sb.blocks() != image.flatDeviceBlocks()) {
            throw new AssertionError("rewritten superblock still has a device table or the wrong size: " + sb);
        }
    }
}
