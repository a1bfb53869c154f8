package io.strata.core.image;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.core.testing.FuzzContract;
import io.strata.core.testing.FuzzImages;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Mutated data blobs through {@link BlobTrailerReader}: the ToC, blob.meta header and chunk-info
 * array either hold together (every chunk inside image.blob) or the blob is refused with a format
 * error naming the file and field. Seeds: {@code BlobTrailerFuzzTestInputs/fuzz/} (the Nydus
 * fixture's blob, blobs from Strata's builder with lz4, zstd and uncompressed chunk-info arrays).
 */
class BlobTrailerFuzzTest {
    private static Path file;

    @FuzzTest
    void fuzz(byte[] blob) throws IOException {
        if (file == null) {
            file = FuzzImages.scratchDir().resolve("blob");
        }
        Files.write(file, blob);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            BlobTrailerReader.Trailer t = BlobTrailerReader.read(file, ch);
            for (BlobChunkInfoV1 c : t.chunks()) {
                if (c.compressedOffset() + c.compressedSize() > t.dataSize() || t.dataSize() > blob.length) {
                    throw new AssertionError("accepted a chunk outside the blob's data: " + c);
                }
            }
        } catch (ImageFormatException e) {
            FuzzContract.checkRefusal(e, file);
        }
    }
}
