package io.strata.builder.data;

import io.strata.core.digest.Blake3;
import io.strata.core.image.DigestAlgorithm;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** A chunk's digest over its uncompressed bytes (blake3 or sha256, 32 bytes). Not thread-safe. */
abstract class ChunkHasher {
    static final int DIGEST_SIZE = 32;

    abstract byte[] digest(byte[] data, int length);

    static ChunkHasher create(DigestAlgorithm algorithm) {
        return algorithm == DigestAlgorithm.SHA256 ? new Sha256() : new Blake3Hasher();
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks SHA-256", e);
        }
    }

    private static final class Sha256 extends ChunkHasher {
        private final MessageDigest md = sha256();

        @Override
        byte[] digest(byte[] data, int length) {
            md.update(data, 0, length);
            byte[] out = new byte[DIGEST_SIZE];
            try {
                md.digest(out, 0, DIGEST_SIZE);
            } catch (DigestException e) {
                throw new IllegalStateException(e);
            }
            return out;
        }
    }

    private static final class Blake3Hasher extends ChunkHasher {
        private final Blake3 b3 = new Blake3();

        @Override
        byte[] digest(byte[] data, int length) {
            byte[] out = new byte[DIGEST_SIZE];
            b3.hash(data, 0, length, out, 0);
            return out;
        }
    }
}
