package io.strata.core.chunk;

import io.strata.core.digest.Blake3;
import io.strata.core.image.DigestAlgorithm;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** Computes a chunk's digest (blake3 or sha256 over the uncompressed bytes). One per thread. */
final class ChunkDigester {
    private final Blake3 blake3 = new Blake3();
    private final MessageDigest sha256;
    private final byte[] out = new byte[32];

    ChunkDigester() {
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks SHA-256", e);
        }
    }

    /**
     * True when the digest of {@code data[0..length)} equals {@code expected[at..at+32)}. The input
     * is first copied into {@code heapScratch} (one bulk copy): {@link Blake3} takes only arrays, and
     * the JDK's SHA-256 would copy a direct buffer anyway, 4 KiB at a time through its own array,
     * after the caller allocated a duplicate of the buffer to give it a position and limit.
     */
    boolean matches(DigestAlgorithm algorithm, java.nio.ByteBuffer data, int length, byte[] heapScratch,
                    byte[] expected, int at) {
        data.get(0, heapScratch, 0, length);
        if (algorithm == DigestAlgorithm.BLAKE3) {
            blake3.hash(heapScratch, 0, length, out, 0);
        } else {
            sha256.update(heapScratch, 0, length);
            try {
                sha256.digest(out, 0, 32);
            } catch (java.security.DigestException e) {
                throw new IllegalStateException(e);
            }
        }
        return java.util.Arrays.equals(out, 0, 32, expected, at, at + 32);
    }
}
