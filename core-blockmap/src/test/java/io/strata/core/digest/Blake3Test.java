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

    /**
     * An input cut into pieces of 2^k chunks, each piece hashed by its own instance as a subtree and
     * the values joined, gives the whole input's hash: for pieces of 1 to 512 chunks and inputs from
     * two pieces (the smallest split) to a few MiB, last pieces whole, one byte long or partial.
     */
    @Test
    void piecesJoinedEqualTheWholeHash() {
        long seed = System.nanoTime();
        Random random = new Random(seed);
        Blake3 whole = new Blake3();
        Blake3[] hashers = {new Blake3(), new Blake3(), new Blake3()};
        for (int log2 = 0; log2 <= 9; log2++) {
            int piece = KIB << log2;
            int[] lengths = {
                piece + 1, 2 * piece, 2 * piece + 1, 3 * piece - 1, 3 * piece, 4 * piece, 5 * piece + 7,
                8 * piece, 8 * piece + 1, piece + 1 + random.nextInt(7 * piece),
            };
            for (int len : lengths) {
                if (len > 4 * MIB) {
                    continue;
                }
                byte[] input = new byte[len];
                random.nextBytes(input);
                byte[] expected = new byte[32];
                whole.hash(input, 0, len, expected, 0);
                int pieces = (len + piece - 1) / piece;
                int[] cvs = new int[8 * pieces];
                for (int p = 0; p < pieces; p++) {
                    int start = p * piece;
                    hashers[p % hashers.length].subtree(input, start, Math.min(piece, len - start),
                            (long) p << log2, cvs, 8 * p);
                }
                byte[] joined = new byte[32];
                whole.join(cvs, pieces, log2, joined, 0);
                assertArrayEquals(expected, joined, "length " + len + ", pieces of 2^" + log2 + " chunks (seed " + seed + ")");
            }
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
