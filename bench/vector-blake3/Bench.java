package bench;

import io.strata.core.digest.Blake3;
import io.strata.core.digest.VecBlake3;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;

public class Bench {
    static final ThreadMXBean TMX = ManagementFactory.getThreadMXBean();

    static byte[] strata(Blake3 b, byte[] in, int off, int len) {
        byte[] out = new byte[32];
        b.hash(in, off, len, out, 0);
        return out;
    }

    static byte[] bc(byte[] in, int off, int len) throws Exception {
        Class<?> c = Class.forName("org.bouncycastle.crypto.digests.Blake3Digest");
        Object d = c.getConstructor().newInstance();
        c.getMethod("update", byte[].class, int.class, int.class).invoke(d, in, off, len);
        byte[] out = new byte[32];
        c.getMethod("doFinal", byte[].class, int.class).invoke(d, out, 0);
        return out;
    }

    public static void main(String[] args) throws Exception {
        String what = args.length > 0 ? args[0] : "all";
        if (what.equals("first")) { first(); return; }
        if (what.equals("profile")) {
            byte[] in = new byte[1 << 20]; new Random(7).nextBytes(in);
            Blake3 s = new Blake3(); VecBlake3 v = new VecBlake3();
            run(args[1], s, v, in, Long.getLong("warm", 6_000_000_000L));
            com.sun.management.ThreadMXBean t = (com.sun.management.ThreadMXBean) TMX;
            long a0 = t.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 100; i++) { if (args[1].equals("strata")) strata(s, in, 0, in.length); else v.hash(in, 0, in.length); }
            long a1 = t.getCurrentThreadAllocatedBytes();
            System.out.println("alloc bytes per 1 MiB hash: " + (a1 - a0) / 100);
            System.out.println("steady MiB/cpu-s: " + run(args[1], s, v, in, 3_000_000_000L));
            return;
        }
        verify();
        if (what.equals("verify")) return;
        bench(args.length > 1 ? Integer.parseInt(args[1]) : 7, args.length > 2 ? args[2] : "0/0,strata");
    }

    static void verify() throws Exception {
        Random r = new Random(42);
        Blake3 s = new Blake3();
        VecBlake3 v = new VecBlake3();
        boolean haveBc;
        try { Class.forName("org.bouncycastle.crypto.digests.Blake3Digest"); haveBc = true; } catch (ClassNotFoundException e) { haveBc = false; }
        // sanity: known answer for empty input
        String empty = HexFormat.of().formatHex(strata(s, new byte[0], 0, 0));
        System.out.println("strata(empty)=" + empty + (empty.equals("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262") ? " OK(KAT)" : " BAD"));
        int[] sizes = {16384, 32768, 49152, 65536, 16384 * 5, 16384 * 7, 1 << 20, (1 << 20) + 16384, 3 << 20, 4 << 20, 1000, 1024, 1025, 70000};
        int bad = 0, n = 0;
        for (int mode = 0; mode < 3; mode++) {
            for (int cm = 0; cm < 7; cm++) {
                VecBlake3.mode = mode; VecBlake3.compressMode = cm;
                for (int size : sizes) {
                    for (int rep = 0; rep < 2; rep++) {
                        int off = rep * 3;
                        byte[] in = new byte[size + off + 5];
                        r.nextBytes(in);
                        byte[] a = strata(s, in, off, size);
                        byte[] b = v.hash(in, off, size);
                        n++;
                        if (!Arrays.equals(a, b)) { bad++; System.out.println("MISMATCH vec vs strata mode=" + mode + " cm=" + cm + " size=" + size); }
                        if (haveBc && mode == 0 && cm == 0) {
                            byte[] c = bc(in, off, size);
                            if (!Arrays.equals(a, c)) { bad++; System.out.println("MISMATCH strata vs BC size=" + size); }
                        }
                    }
                }
            }
        }
        System.out.println("verify: " + n + " vec/strata comparisons, mismatches=" + bad + (haveBc ? " (strata also checked vs BouncyCastle Blake3Digest)" : ""));
        VecBlake3.mode = 0; VecBlake3.compressMode = 3;
    }

    /** First call in a fresh JVM: wall and thread CPU time of hashing 1 MiB once, then a few more. */
    static void first() {
        byte[] in = new byte[1 << 20];
        new Random(1).nextBytes(in);
        boolean vec = !"strata".equals(System.getProperty("impl"));
        Blake3 s = new Blake3();
        VecBlake3 v = vec ? new VecBlake3() : null;
        StringBuilder sb = new StringBuilder(vec ? "vec   " : "strata");
        for (int i = 0; i < 6; i++) {
            long w0 = System.nanoTime(), c0 = TMX.getCurrentThreadCpuTime();
            byte[] d = vec ? v.hash(in, 0, in.length) : strata(s, in, 0, in.length);
            long c1 = TMX.getCurrentThreadCpuTime(), w1 = System.nanoTime();
            sb.append(String.format(" call%d: %.1f ms wall/%.1f ms cpu;", i + 1, (w1 - w0) / 1e6, (c1 - c0) / 1e6));
        }
        System.out.println(sb);
        // time to steady state: first call (after the 6 above) whose thread CPU is under 0.6 ms, cumulative since start
        long cum = 0, cumW = 0; int i = 0;
        for (; i < 20000; i++) {
            long w0 = System.nanoTime(), c0 = TMX.getCurrentThreadCpuTime();
            byte[] d = vec ? v.hash(in, 0, in.length) : strata(s, in, 0, in.length);
            long c1 = TMX.getCurrentThreadCpuTime(), w1 = System.nanoTime();
            cum += c1 - c0; cumW += w1 - w0;
            if (c1 - c0 < (vec ? 600_000 : 1_000_000) && i > 3) {
                int ok = 0;
                for (int k = 0; k < 5; k++) { long a = TMX.getCurrentThreadCpuTime(); if (vec) v.hash(in, 0, in.length); else strata(s, in, 0, in.length); if (TMX.getCurrentThreadCpuTime() - a < (vec ? 600_000 : 1_000_000)) ok++; }
                if (ok >= 4) break;
            }
        }
        System.out.printf("   reached steady (<%s ms cpu/call) after %d more calls, %.0f ms wall / %.0f ms thread-cpu more%n", vec ? "0.6" : "1.0", i + 1, cumW / 1e6, cum / 1e6);
    }

    static void bench(int rounds, String spec) {
        String[] impls = spec.split(",");
        byte[] in = new byte[1 << 20];
        new Random(7).nextBytes(in);
        Blake3 s = new Blake3();
        VecBlake3 v = new VecBlake3();
        System.out.println("species preferred=" + jdk.incubator.vector.IntVector.SPECIES_PREFERRED + " used=" + jdk.incubator.vector.IntVector.SPECIES_512);
        // warm-up: ~2 s per impl
        for (String impl : impls) run(impl, s, v, in, 2_000_000_000L);
        for (String impl : impls) run(impl, s, v, in, 1_000_000_000L);
        double[][] res = new double[impls.length][rounds];
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < impls.length; k++) res[k][r] = run(impls[k], s, v, in, 500_000_000L);
        }
        for (int k = 0; k < impls.length; k++) {
            double[] x = res[k].clone();
            Arrays.sort(x);
            System.out.printf("%-10s MiB/cpu-s over %d rounds: min %.0f  median %.0f  max %.0f   all %s%n", impls[k], rounds,
                    x[0], x[rounds / 2], x[rounds - 1], Arrays.toString(Arrays.stream(res[k]).map(Math::rint).toArray()));
        }
    }

    static int sink;

    /** Hashes 1 MiB repeatedly for about cpuBudget ns of thread CPU; returns MiB per CPU-second. */
    static double run(String impl, Blake3 s, VecBlake3 v, byte[] in, long cpuBudget) {
        boolean strata = impl.equals("strata");
        if (!strata) {
            String[] mc = impl.split("/");
            VecBlake3.mode = Integer.parseInt(mc[0]);
            VecBlake3.compressMode = Integer.parseInt(mc[1]);
        }
        long c0 = TMX.getCurrentThreadCpuTime(), c;
        int n = 0;
        do {
            byte[] d = strata ? strata(s, in, 0, in.length) : v.hash(in, 0, in.length);
            sink += d[0];
            n++;
            c = TMX.getCurrentThreadCpuTime();
        } while (c - c0 < cpuBudget);
        return n / ((c - c0) / 1e9);
    }
}
