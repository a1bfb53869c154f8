package io.strata.builder.data;

import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdException;
import io.strata.core.image.Compression;
import java.nio.ByteBuffer;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;

/**
 * Compresses one chunk on its own, as the readers (the core's Decompressor, Nydus) expect: a zstd
 * frame or a raw LZ4 block. Like Nydus's {@code compress::compress}, output that is not smaller than
 * the input is refused (null), and the chunk is stored as it is. Not thread-safe: one per worker.
 */
abstract class ChunkCompressor {
    /** The compressed bytes, or null when compression would not make the chunk smaller. */
    abstract byte[] compress(byte[] data, int length);

    static ChunkCompressor create(Compression compression, int level) {
        switch (compression) {
            case NONE:
                return new Stored();
            case LZ4_BLOCK:
                return new Lz4();
            case ZSTD:
                return new Zstd(level);
            default:
                throw new IllegalArgumentException("the builder does not write " + compression + " chunks");
        }
    }

    /** Room for output one byte shorter than the input: anything longer is refused anyway. */
    static int limit(int length) {
        return length - 1;
    }

    private static final class Stored extends ChunkCompressor {
        @Override
        byte[] compress(byte[] data, int length) {
            return null;
        }
    }

    /**
     * Why direct buffers: given heap arrays, both JNI codecs pin them with GetPrimitiveArrayCritical,
     * which on JDK 17 holds off every GC while a worker compresses; a thread allocating meanwhile can
     * then fail with OutOfMemoryError ("Retried waiting for GCLocker too often") in a small heap.
     * Given direct buffers they take the address instead, so the chunk is copied in and the result
     * out, a small cost beside compressing it.
     */
    private abstract static class Direct extends ChunkCompressor {
        private ByteBuffer in = ByteBuffer.allocateDirect(0);
        private ByteBuffer out = ByteBuffer.allocateDirect(0);

        /** Compresses {@code length} bytes at 0 in {@code in} into at most {@code max} bytes at 0 in {@code out}; -1 if they do not fit. */
        abstract int compress(ByteBuffer in, int length, ByteBuffer out, int max);

        @Override
        final byte[] compress(byte[] data, int length) {
            if (length < 2) {
                return null;
            }
            if (in.capacity() < length) {
                in = ByteBuffer.allocateDirect(length);
                out = ByteBuffer.allocateDirect(length);
            }
            in.put(0, data, 0, length);
            int n = compress(in, length, out, limit(length));
            if (n < 0) {
                return null;
            }
            byte[] result = new byte[n];
            out.get(0, result, 0, n);
            return result;
        }
    }

    private static final class Lz4 extends Direct {
        private static final LZ4Compressor LZ4 = LZ4Factory.fastestInstance().fastCompressor();

        @Override
        int compress(ByteBuffer in, int length, ByteBuffer out, int max) {
            try {
                return LZ4.compress(in, 0, length, out, 0, max);
            } catch (LZ4Exception e) {
                return -1; // did not fit in fewer bytes than the input
            }
        }
    }

    private static final class Zstd extends Direct {
        private final ZstdCompressCtx ctx = new ZstdCompressCtx();

        Zstd(int level) {
            ctx.setLevel(level);
        }

        @Override
        int compress(ByteBuffer in, int length, ByteBuffer out, int max) {
            try {
                return ctx.compressDirectByteBuffer(out, 0, max, in, 0, length);
            } catch (ZstdException e) {
                return -1; // dstSize_tooSmall: the frame would not be smaller than the input
            }
        }
    }
}
