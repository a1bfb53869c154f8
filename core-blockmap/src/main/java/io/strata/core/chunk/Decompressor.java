package io.strata.core.chunk;

import com.github.luben.zstd.ZstdDecompressCtx;
import io.strata.core.image.Compression;
import java.io.IOException;
import java.nio.ByteBuffer;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

/**
 * Decompresses one chunk between direct buffers at absolute offsets (no position changes, so one
 * buffer can serve many threads). Not thread-safe: each reading thread owns its own instance.
 */
abstract class Decompressor implements AutoCloseable {

    /** Decompresses {@code srcLen} bytes into {@code dst}; returns the number of bytes produced. */
    abstract int decompress(ByteBuffer src, int srcLen, ByteBuffer dst, int dstCapacity) throws IOException;

    /** Frees native state now rather than at some later garbage collection. */
    @Override
    public void close() {
    }

    static Decompressor forAlgorithm(Compression c) {
        switch (c) {
            case NONE:
                return new Stored();
            case LZ4_BLOCK:
                return new Lz4();
            case ZSTD:
                return new Zstd();
            default:
                throw new IllegalArgumentException("no decompressor for " + c);
        }
    }

    /** Chunks stored as they are. */
    static final class Stored extends Decompressor {
        @Override
        int decompress(ByteBuffer src, int srcLen, ByteBuffer dst, int dstCapacity) throws IOException {
            if (srcLen > dstCapacity) {
                throw new IOException("stored chunk of " + srcLen + " bytes exceeds " + dstCapacity);
            }
            dst.put(0, src, 0, srcLen);
            return srcLen;
        }
    }

    /** Raw LZ4 blocks (no frame), as Nydus writes them. */
    static final class Lz4 extends Decompressor {
        private static final LZ4SafeDecompressor LZ4 = LZ4Factory.fastestInstance().safeDecompressor();

        @Override
        int decompress(ByteBuffer src, int srcLen, ByteBuffer dst, int dstCapacity) throws IOException {
            try {
                return LZ4.decompress(src, 0, srcLen, dst, 0, dstCapacity);
            } catch (LZ4Exception e) {
                throw new IOException("lz4 block is malformed: " + e.getMessage(), e);
            }
        }
    }

    /** Zstd frames; the context is reused for every chunk this thread reads. */
    static final class Zstd extends Decompressor {
        private final ZstdDecompressCtx ctx = new ZstdDecompressCtx();

        @Override
        int decompress(ByteBuffer src, int srcLen, ByteBuffer dst, int dstCapacity) throws IOException {
            try {
                return ctx.decompressDirectByteBuffer(dst, 0, dstCapacity, src, 0, srcLen);
            } catch (RuntimeException e) {
                throw new IOException("zstd frame is malformed: " + e.getMessage(), e);
            }
        }

        /**
         * A zstd decompression context holds about 95 KiB of native memory that zstd-jni frees only
         * on close (or a finalizer that may never run): left open, every closed device leaked it.
         */
        @Override
        public void close() {
            ctx.close();
        }
    }
}
