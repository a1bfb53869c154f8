package io.strata.builder.data;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** A 32-byte chunk digest as a map key: four longs, cheap to hash and compare. */
record DigestKey(long a, long b, long c, long d) {
    static DigestKey of(byte[] digest) {
        ByteBuffer bb = ByteBuffer.wrap(digest).order(ByteOrder.LITTLE_ENDIAN);
        return new DigestKey(bb.getLong(0), bb.getLong(8), bb.getLong(16), bb.getLong(24));
    }
}
