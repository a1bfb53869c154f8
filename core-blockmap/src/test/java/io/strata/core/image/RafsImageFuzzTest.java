package io.strata.core.image;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.blob.MissingBlobsException;
import io.strata.core.chunk.ChunkCorruptedException;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.testing.FuzzContract;
import io.strata.core.testing.FuzzImages;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Mutated bootstraps against {@link RafsImage} and the {@link FlatDevice} composed from them with the
 * fixture's real blobs: either the image is refused with an {@link ImageFormatException} naming file
 * and field, or it opens, its size agrees with its tables, and reads of a few ranges return bytes
 * (a chunk whose digest no longer matches fails that read with {@link ChunkCorruptedException}).
 * Its prefetch table is planned ({@link PrefetchPlan}) under the same contract.
 * Seeds: {@code RafsImageFuzzTestInputs/fuzz/} (the Nydus fixture's bootstrap, one with a prefetch
 * table naming its root, Strata-built images).
 */
class RafsImageFuzzTest {
    private static final long CACHE_BYTES = 4L << 20;

    @FuzzTest
    void fuzz(byte[] input) throws IOException {
        Path file = FuzzImages.writeBootstrap(input);
        RafsImage image;
        try {
            image = RafsImage.open(file);
        } catch (ImageFormatException e) {
            FuzzContract.checkRefusal(e, file);
            return;
        }
        FuzzImages.checkSizesAgree(image);
        try {
            // The prefetch table's walk (what inspect shows and the prefetcher fetches).
            PrefetchPlan.of(image);
        } catch (ImageFormatException e) {
            FuzzContract.checkRefusal(e, file);
        }
        try (FlatDevice dev = FlatDevice.open(file, new LocalBlobDirectory(FuzzImages.blobDir()),
                new FlatDeviceOptions(CACHE_BYTES, false))) {
            readSome(dev);
        } catch (ImageFormatException e) {
            FuzzContract.checkRefusal(e, FuzzImages.blobDir().resolve(e.file().getFileName()).equals(e.file()) ? e.file() : file);
        } catch (MissingBlobsException e) {
            // A mutated blob id names a blob that is not there: refused before serving, as it must be.
        }
    }

    /** The first and last block, the bootstrap's end, and the start and end of every blob's extent. */
    static void readSome(BlockDevice dev) throws IOException {
        long size = dev.size();
        read(dev, 0, 4096);
        read(dev, size - 4096, 4096);
        if (dev instanceof FlatDevice flat) {
            RafsImage image = flat.image();
            read(dev, image.fileSize() - 512, 1024);
            for (DeviceSlot d : image.devices()) {
                long start = d.mappedBlkaddr() * RafsImage.BLOCK_SIZE;
                long end = (d.mappedBlkaddr() + d.blocks()) * RafsImage.BLOCK_SIZE;
                read(dev, start, 65536);
                read(dev, end - 8192, 12288);
            }
        }
    }

    private static void read(BlockDevice dev, long offset, int length) throws IOException {
        long start = Math.max(0, Math.min(offset, dev.size()));
        int n = (int) Math.min(length, dev.size() - start);
        if (n <= 0) {
            return;
        }
        try {
            dev.read(start, ByteBuffer.allocate(n));
        } catch (ChunkCorruptedException e) {
            // A chunk that does not decompress or verify fails only this read.
        }
    }
}
