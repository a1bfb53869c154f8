package io.strata.builder.data;

import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdException;
import io.strata.core.image.Compression;
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

    private static final class Lz4 extends ChunkCompressor {
        private static final LZ4Compressor LZ4 = LZ4Factory.fastestInstance().fastCompressor();
        private byte[] scratch = new byte[0];

        @Override
        byte[] compress(byte[] data, int length) {
            if (length < 2) {
                return null;
            }
            if (scratch.length < length) {
                scratch = new byte[length];
            }
            try {
                int n = LZ4.compress(data, 0, length, scratch, 0, limit(length));
                return java.util.Arrays.copyOf(scratch, n);
            } catch (LZ4Exception e) {
                return null; // did not fit in fewer bytes than the input
            }
        }
    }

    private static final class Zstd extends ChunkCompressor {
        private final ZstdCompressCtx ctx = new ZstdCompressCtx();
        private byte[] scratch = new byte[0];

        Zstd(int level) {
            ctx.setLevel(level);
        }

        @Override
        byte[] compress(byte[] data, int length) {
            if (length < 2) {
                return null;
            }
            if (scratch.length < length) {
                scratch = new byte[length];
            }
            try {
                int n = ctx.compressByteArray(scratch, 0, limit(length), data, 0, length);
                return java.util.Arrays.copyOf(scratch, n);
            } catch (ZstdException e) {
                return null; // dstSize_tooSmall: the frame would not be smaller than the input
            }
        }
    }
}
