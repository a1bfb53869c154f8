package io.strata.jmh;

import io.strata.core.digest.Blake3;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import org.bouncycastle.crypto.digests.Blake3Digest;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Chunk digests side by side, one core, over the first {@code size} bytes of the benchmark images'
 * chunk 0 (a heap array, as {@code ChunkStore} and the image builder digest): Strata's BLAKE3
 * ({@link Blake3}, what the core uses), BouncyCastle's {@code Blake3Digest} (what it used before) and the
 * JDK's SHA-256. One op digests {@code size} bytes: MiB/s = ops/s x size / 2^20.
 */
@State(Scope.Thread)
public class DigestBenchmark extends JvmSettings {
    /** 1 MiB is Strata's default chunk; 4 KiB is a small-chunk image (and too short for Blake3's lanes). */
    @Param({"1048576", "4096"})
    public int size;

    private byte[] data;
    private final byte[] out = new byte[32];
    private final Blake3 strata = new Blake3();
    private final Blake3Digest bouncyCastle = new Blake3Digest(256);
    private MessageDigest sha256;

    @Setup(Level.Trial)
    public void setup() throws NoSuchAlgorithmException {
        data = Arrays.copyOf(BenchImage.firstChunk(), size);
        sha256 = MessageDigest.getInstance("SHA-256");
        byte[] expected = blake3BouncyCastle().clone();
        if (!Arrays.equals(blake3Strata(), expected)) {
            throw new IllegalStateException("Strata's BLAKE3 differs from BouncyCastle's");
        }
    }

    @Benchmark
    public byte[] blake3Strata() {
        strata.hash(data, 0, size, out, 0);
        return out;
    }

    @Benchmark
    public byte[] blake3BouncyCastle() {
        bouncyCastle.update(data, 0, size);
        bouncyCastle.doFinal(out, 0);
        return out;
    }

    @Benchmark
    public byte[] sha256() throws DigestException {
        sha256.update(data, 0, size);
        sha256.digest(out, 0, 32);
        return out;
    }
}
