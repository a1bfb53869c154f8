package io.strata.core.digest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bouncycastle.crypto.digests.Blake3Digest;
import org.junit.jupiter.api.Test;

/**
 * {@link Blake3} against the BLAKE3 team's test vectors and against BouncyCastle's {@code Blake3Digest}
 * on random inputs of every length class: empty, within one block, block edges, chunk (1 KiB) edges,
 * tree shapes with full and partial last chunks, the edges of {@link Blake3Lanes}' groups (32 to 256
 * whole chunks before the last one), and the 1 MiB image chunk with its neighbours.
 */
class Blake3Test {
    private static final int KIB = 1024;
    private static final int MIB = 1024 * KIB;

    @Test
    void officialTestVectorsHashMode() throws IOException {
        String json;
        try (InputStream in = Blake3Test.class.getResourceAsStream("blake3-test-vectors.json")) {
            json = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
        Matcher m = Pattern.compile("\"input_len\":\\s*(\\d+),\\s*\"hash\":\\s*\"([0-9a-f]+)\"").matcher(json);
        Blake3 blake3 = new Blake3();
        int cases = 0;
        while (m.find()) {
            int len = Integer.parseInt(m.group(1));
            byte[] input = new byte[len];
            for (int i = 0; i < len; i++) {
                input[i] = (byte) (i % 251);
            }
            // The file's outputs are 131 bytes of extended output; the default hash is their first 32.
            String expected = m.group(2).substring(0, 2 * Blake3.OUT_LEN);
            byte[] out = new byte[Blake3.OUT_LEN];
            blake3.hash(input, 0, len, out, 0);
            assertEquals(expected, HexFormat.of().formatHex(out), "input_len " + len);
            cases++;
        }
        assertEquals(35, cases, "test vector cases parsed");
    }

    @Test
    void matchesBouncyCastleOnEveryLengthClass() {
        int[] lengths = {
            0, 1, 2, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 3073,
            4 * KIB, 7 * KIB, 8 * KIB - 1, 8 * KIB, 8 * KIB + 1, 9 * KIB, 9 * KIB + 5, 16 * KIB, 16 * KIB + 1,
            17 * KIB, 31 * KIB + 1, 32 * KIB, 33 * KIB - 1, 33 * KIB, 33 * KIB + 1, 34 * KIB, 64 * KIB,
            100_000, 256 * KIB, 257 * KIB, 257 * KIB + 1, 258 * KIB + 3, 289 * KIB, 289 * KIB + 1,
            512 * KIB, 512 * KIB + 64, 768 * KIB, MIB - 1, MIB, MIB + 1, 1280 * KIB, 2 * MIB,
            MIB + 1000, 2 * MIB + KIB, 3 * MIB + 512, 4 * MIB,
        };
        long seed = System.nanoTime();
        Random random = new Random(seed);
        Blake3 blake3 = new Blake3();
        for (int len : lengths) {
            checkAgainstBouncyCastle(blake3, random, len, seed);
        }
        for (int i = 0; i < 12; i++) {
            checkAgainstBouncyCastle(blake3, random, random.nextInt(3 * MIB), seed);
        }
    }

    @Test
    void readsOnlyItsRangeOfALargerArray() {
        Random random = new Random(7);
        byte[] big = new byte[3 * KIB + 100];
        random.nextBytes(big);
        Blake3 blake3 = new Blake3();
        for (int off : new int[] {0, 1, 37, 64, 1024}) {
            int len = 2 * KIB + 13;
            byte[] copy = java.util.Arrays.copyOfRange(big, off, off + len);
            byte[] a = new byte[40];
            byte[] b = new byte[32];
            blake3.hash(big, off, len, a, 8);
            blake3.hash(copy, 0, len, b, 0);
            assertArrayEquals(b, java.util.Arrays.copyOfRange(a, 8, 40), "offset " + off);
        }
    }

    private static void checkAgainstBouncyCastle(Blake3 blake3, Random random, int len, long seed) {
        byte[] input = new byte[len];
        random.nextBytes(input);
        Blake3Digest bc = new Blake3Digest(256);
        bc.update(input, 0, len);
        byte[] expected = new byte[32];
        bc.doFinal(expected, 0);
        byte[] out = new byte[32];
        blake3.hash(input, 0, len, out, 0);
        assertArrayEquals(expected, out, "length " + len + " (seed " + seed + ")");
    }
}
