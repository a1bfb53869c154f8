package io.strata.jmh;

import com.github.luben.zstd.ZstdDecompressCtx;
import io.strata.core.digest.Blake3;
import io.strata.core.image.Compression;
import io.strata.core.testing.SyntheticImage;
import java.nio.ByteBuffer;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The pieces of a cache miss, one core, on chunk 0 of the {@link ReadPathBenchmark} images (1 MiB,
 * same content, same compression settings): decompress with the calls the core makes (lz4 safe
 * decompressor and zstd context, direct buffers), digest with the same classes (JDK SHA-256,
 * Strata's {@link Blake3}; {@link DigestBenchmark} sets it beside BouncyCastle's), and the 1 MiB copy from the cache slot to a heap array that precedes the
 * digest in {@code ChunkStore.loadChunk}. Every op processes 1 MiB.
 */
@State(Scope.Thread)
public class CodecBenchmark extends JvmSettings {
    private static final int CHUNK = BenchImage.CHUNK;

    private byte[] plain;
    private ByteBuffer plainDirect;
    private ByteBuffer lz4Src;
    private ByteBuffer zstdSrc;
    private ByteBuffer dst;
    private final byte[] heap = new byte[CHUNK];
    private final byte[] out = new byte[32];
    private final LZ4SafeDecompressor lz4 = LZ4Factory.fastestInstance().safeDecompressor();
    private ZstdDecompressCtx zstd;
    private MessageDigest sha256;
    private final Blake3 blake3 = new Blake3();

    @Setup(Level.Trial)
    public void setup() throws NoSuchAlgorithmException {
        plain = BenchImage.firstChunk();
        plainDirect = direct(plain);
        lz4Src = direct(SyntheticImage.compress(Compression.LZ4_BLOCK, plain));
        zstdSrc = direct(SyntheticImage.compress(Compression.ZSTD, plain));
        dst = ByteBuffer.allocateDirect(CHUNK);
        zstd = new ZstdDecompressCtx();
        sha256 = MessageDigest.getInstance("SHA-256");
        System.out.printf("%n[codec] 1 MiB chunk: lz4 %d bytes, zstd %d bytes%n", lz4Src.capacity(), zstdSrc.capacity());
        check("lz4", lz4Decompress());
        check("zstd", zstdDecompress());
    }

    private void check(String codec, int produced) {
        byte[] got = new byte[CHUNK];
        dst.get(0, got);
        if (produced != CHUNK || !Arrays.equals(got, plain)) {
            throw new IllegalStateException(codec + " did not reproduce the chunk");
        }
    }

    private static ByteBuffer direct(byte[] bytes) {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes.length);
        b.put(0, bytes);
        return b;
    }

    @TearDown(Level.Trial)
    public void close() {
        zstd.close();
    }

    @Benchmark
    public int lz4Decompress() {
        return lz4.decompress(lz4Src, 0, lz4Src.capacity(), dst, 0, CHUNK);
    }

    @Benchmark
    public int zstdDecompress() {
        return zstd.decompressDirectByteBuffer(dst, 0, CHUNK, zstdSrc, 0, zstdSrc.capacity());
    }

    @Benchmark
    public byte[] sha256() throws DigestException {
        sha256.update(plain, 0, CHUNK);
        sha256.digest(out, 0, 32);
        return out;
    }

    @Benchmark
    public byte[] blake3() {
        blake3.hash(plain, 0, CHUNK, out, 0);
        return out;
    }

    /** The copy from the native cache slot to the heap array that {@code ChunkStore} digests. */
    @Benchmark
    public byte[] copySlotToHeap() {
        plainDirect.get(0, heap, 0, CHUNK);
        return heap;
    }
}
