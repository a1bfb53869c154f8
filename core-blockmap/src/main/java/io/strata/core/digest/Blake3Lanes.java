package io.strata.core.digest;

import static io.strata.core.digest.Blake3.BLOCK_LEN;
import static io.strata.core.digest.Blake3.CHUNK_END;
import static io.strata.core.digest.Blake3.CHUNK_LEN;
import static io.strata.core.digest.Blake3.CHUNK_START;
import static io.strata.core.digest.Blake3.LE_INT;

import java.util.Arrays;

/**
 * The chaining values of many whole, non-root BLAKE3 chunks at once, one chunk per lane, and of a tree
 * level's parent nodes, one parent per lane. BLAKE3's chunks are independent until their chaining values
 * meet in the tree, and so are the parents of one level (spec section 5.3), so the same compression step
 * can run on all of them side by side.
 *
 * <p>Why it is shaped this way: the state is kept transposed, word {@code i} of every lane's state in
 * row {@code v[i]}, and G (section 2.2) is one loop over the lanes ({@link #mixLanes}). A plain counted
 * loop over int arrays is what HotSpot's C2 auto-vectorizer (SuperWord) turns into SIMD code (AVX2 here:
 * 8 lanes per instruction, rotations included), on JDK 17 and 25 without flags. The incubating Vector
 * API would do the same explicitly but needs {@code --add-modules jdk.incubator.vector} on every JVM
 * that runs Strata and prints a warning at each start; this needs nothing. Many lanes (up to 256 chunks,
 * 256 KiB of input per call) keep the vector loop long enough that its set-up and scalar tail cost
 * little; where the loop does not vectorize it still computes the same values, only slower.
 *
 * <p>Not thread-safe: owned by one {@link Blake3}.
 */
final class Blake3Lanes {
    /** Chunks per call at most: 40 KiB of rows, about L1-sized. */
    static final int MAX_LANES = 256;
    /** Below this many chunks the vector loop's set-up costs more than {@link Blake3#fullChunk} saves. */
    static final int MIN_LANES = 32;

    private static final int[] IV = {
        Blake3.IV0, Blake3.IV1, Blake3.IV2, Blake3.IV3, Blake3.IV4, Blake3.IV5, Blake3.IV6, Blake3.IV7,
    };
    /** The four columns, then the four diagonals, of the 4x4 state (section 2.2): a, b, c, d of each G. */
    private static final int[][] QUARTERS = {
        {0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15},
        {0, 5, 10, 15}, {1, 6, 11, 12}, {2, 7, 8, 13}, {3, 4, 9, 14},
    };
    /** MSG_PERMUTATION (section 2.2): the message schedule of round r+1 is round r's permuted by it. */
    private static final int[] PERMUTATION = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};
    /** Message word order of each of the seven rounds. */
    private static final int[][] SCHEDULE = new int[7][];

    static {
        int[] s = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        for (int r = 0; r < 7; r++) {
            SCHEDULE[r] = s;
            int[] next = new int[16];
            for (int i = 0; i < 16; i++) {
                next[i] = s[PERMUTATION[i]];
            }
            s = next;
        }
    }

    private final int[][] state = new int[16][MAX_LANES];
    private final int[][] message = new int[16][MAX_LANES];
    private final int[][] chaining = new int[8][MAX_LANES];
    private final int[] counterLow = new int[MAX_LANES];
    private final int[] counterHigh = new int[MAX_LANES];

    /**
     * The chaining values of the {@code lanes} 1 KiB chunks at {@code in[off..off+lanes*1024)}, whose chunk
     * counters are {@code firstCounter, firstCounter+1, ...}, to {@code cvs[8*lane..8*lane+8)}.
     */
    void chunks(byte[] in, int off, long firstCounter, int lanes, int[] cvs) {
        for (int l = 0; l < lanes; l++) {
            counterLow[l] = (int) (firstCounter + l);
            counterHigh[l] = (int) ((firstCounter + l) >>> 32);
        }
        for (int i = 0; i < 8; i++) {
            Arrays.fill(chaining[i], 0, lanes, IV[i]);
        }
        int[][] v = state;
        for (int b = 0; b < CHUNK_LEN / BLOCK_LEN; b++) {
            loadMessage(in, off + b * BLOCK_LEN, lanes);
            // Initial state (section 2.2): chaining value, IV[0..4), counter, block length, flags.
            for (int i = 0; i < 8; i++) {
                System.arraycopy(chaining[i], 0, v[i], 0, lanes);
            }
            for (int i = 0; i < 4; i++) {
                Arrays.fill(v[8 + i], 0, lanes, IV[i]);
            }
            System.arraycopy(counterLow, 0, v[12], 0, lanes);
            System.arraycopy(counterHigh, 0, v[13], 0, lanes);
            Arrays.fill(v[14], 0, lanes, BLOCK_LEN);
            int flags = (b == 0 ? CHUNK_START : 0) | (b == CHUNK_LEN / BLOCK_LEN - 1 ? CHUNK_END : 0);
            Arrays.fill(v[15], 0, lanes, flags);
            rounds(lanes);
            for (int i = 0; i < 8; i++) {
                xorLanes(chaining[i], v[i], v[i + 8], lanes);
            }
        }
        for (int l = 0; l < lanes; l++) {
            for (int i = 0; i < 8; i++) {
                cvs[8 * l + i] = chaining[i][l];
            }
        }
    }

    /**
     * One level of the tree in place: the parent of nodes {@code 2l} and {@code 2l+1} (8 words each, from
     * {@code nodes[16l..16l+16)}) to {@code nodes[8l..8l+8)}, for {@code l < parents}. A parent node is
     * one compression with the key (the IV in hash mode) as chaining value, the two children's chaining
     * values as message, counter 0, block length 64 and flag PARENT (section 2.5); never the root.
     */
    void parents(int[] nodes, int parents) {
        for (int l = 0; l < parents; l++) {
            for (int w = 0; w < 16; w++) {
                message[w][l] = nodes[16 * l + w];
            }
        }
        int[][] v = state;
        for (int i = 0; i < 8; i++) {
            Arrays.fill(v[i], 0, parents, IV[i]);
        }
        for (int i = 0; i < 4; i++) {
            Arrays.fill(v[8 + i], 0, parents, IV[i]);
        }
        Arrays.fill(v[12], 0, parents, 0);
        Arrays.fill(v[13], 0, parents, 0);
        Arrays.fill(v[14], 0, parents, BLOCK_LEN);
        Arrays.fill(v[15], 0, parents, Blake3.PARENT);
        rounds(parents);
        for (int l = 0; l < parents; l++) {
            for (int i = 0; i < 8; i++) {
                nodes[8 * l + i] = v[i][l] ^ v[i + 8][l];
            }
        }
    }

    /** The seven rounds (section 2.2) on the state rows, with the message rows. */
    private void rounds(int lanes) {
        int[][] v = state;
        for (int[] s : SCHEDULE) {
            for (int g = 0; g < 8; g++) {
                int[] q = QUARTERS[g];
                mixLanes(v[q[0]], v[q[1]], v[q[2]], v[q[3]], message[s[2 * g]], message[s[2 * g + 1]], lanes);
            }
        }
    }

    /**
     * One 64-byte block of every lane's chunk, transposed: word w of lane l's block (at
     * {@code blockOff + l*1024}) to {@code message[w][l]}.
     */
    private void loadMessage(byte[] in, int blockOff, int lanes) {
        for (int l = 0; l < lanes; l++) {
            int at = blockOff + l * CHUNK_LEN;
            for (int w = 0; w < 16; w++) {
                message[w][l] = (int) LE_INT.get(in, at + 4 * w);
            }
        }
    }

    /** G (section 2.2) on every lane: the loop C2 vectorizes. */
    private static void mixLanes(int[] a, int[] b, int[] c, int[] d, int[] x, int[] y, int lanes) {
        for (int l = 0; l < lanes; l++) {
            int va = a[l];
            int vb = b[l];
            int vc = c[l];
            int vd = d[l];
            va += vb + x[l];
            vd = Integer.rotateRight(vd ^ va, 16);
            vc += vd;
            vb = Integer.rotateRight(vb ^ vc, 12);
            va += vb + y[l];
            vd = Integer.rotateRight(vd ^ va, 8);
            vc += vd;
            vb = Integer.rotateRight(vb ^ vc, 7);
            a[l] = va;
            b[l] = vb;
            c[l] = vc;
            d[l] = vd;
        }
    }

    /** The chaining value of the block just compressed (section 2.2's output, first half). */
    private static void xorLanes(int[] dst, int[] low, int[] high, int lanes) {
        for (int l = 0; l < lanes; l++) {
            dst[l] = low[l] ^ high[l];
        }
    }
}
