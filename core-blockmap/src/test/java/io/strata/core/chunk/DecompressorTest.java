package io.strata.core.chunk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.github.luben.zstd.Zstd;
import io.strata.core.image.Compression;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A zstd decompressor owns a native context (about 95 KiB) that only close frees: ChunkStore closes
 * its workspaces' decompressors with the device. Before it did, opening and closing a device 3000
 * times grew the process by about 280 MiB (RafsImageFuzzTest ran out of memory that way).
 */
class DecompressorTest {
    @Test
    void zstdDecompressesUntilClosedAndNotAfter() throws IOException {
        byte[] data = new byte[100_000];
        new Random(1).nextBytes(data);
        byte[] frame = Zstd.compress(data, 3);
        ByteBuffer src = ByteBuffer.allocateDirect(frame.length).put(frame).flip();
        ByteBuffer dst = ByteBuffer.allocateDirect(data.length);
        Decompressor d = Decompressor.forAlgorithm(Compression.ZSTD);
        assertEquals(data.length, d.decompress(src, frame.length, dst, data.length));
        d.close();
        // The context is gone: zstd-jni refuses to use it (the decompressor reports it as an I/O error).
        assertThrows(IOException.class, () -> d.decompress(src, frame.length, dst, data.length));
        d.close(); // closing twice is harmless
    }
}
