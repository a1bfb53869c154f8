package io.strata.jmh;

import io.strata.core.digest.Blake3;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import org.bouncycastle.crypto.digests.Blake3Digest;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Chunk digests side by side, one core, over the first {@code size} bytes of the benchmark images'
 * chunk 0 (a heap array, as {@code ChunkStore} and the image builder digest): Strata's BLAKE3
 * ({@link Blake3}, what the core uses), BouncyCastle's {@code Blake3Digest} (what it used before) and the
 * JDK's SHA-256. One op digests {@code size} bytes: MiB/s = ops/s x size / 2^20.
 *
 * <p>On a shared machine the wall-clock score also measures how often the thread was off the CPU, so
 * each benchmark also reports, per iteration, the benchmark thread's CPU time ({@code cpuMicros}) and
 * its ops ({@code ops}): MiB per CPU-second = ops x size / 2^20 / (cpuMicros / 10^6).
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

    /** The benchmark thread's CPU time and op count in one iteration (JMH secondary results). */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class CpuTime {
        private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
        public long cpuMicros;
        public long ops;
        private long start;

        @Setup(Level.Iteration)
        public void start() {
            ops = 0;
            cpuMicros = 0;
            start = THREADS.getCurrentThreadCpuTime();
        }

        @TearDown(Level.Iteration)
        public void stop() {
            cpuMicros = (THREADS.getCurrentThreadCpuTime() - start) / 1000;
        }
    }

    @Benchmark
    public byte[] blake3Strata(CpuTime cpu) {
        cpu.ops++;
        return blake3Strata();
    }

    @Benchmark
    public byte[] blake3BouncyCastle(CpuTime cpu) {
        cpu.ops++;
        return blake3BouncyCastle();
    }

    @Benchmark
    public byte[] sha256(CpuTime cpu) throws DigestException {
        cpu.ops++;
        sha256.update(data, 0, size);
        sha256.digest(out, 0, 32);
        return out;
    }

    private byte[] blake3Strata() {
        strata.hash(data, 0, size, out, 0);
        return out;
    }

    private byte[] blake3BouncyCastle() {
        bouncyCastle.update(data, 0, size);
        bouncyCastle.doFinal(out, 0);
        return out;
    }
}
