package io.strata.builder.tree;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One path component as bytes. Names order by unsigned bytes, as EROFS requires of directory
 * entries (the kernel binary-searches them with a byte comparison).
 */
public final class Name implements Comparable<Name> {
    public static final Name DOT = new Name(new byte[] {'.'});
    public static final Name DOT_DOT = new Name(new byte[] {'.', '.'});

    private final byte[] bytes;

    private Name(byte[] bytes) {
        this.bytes = bytes;
    }

    public static Name of(String s) {
        return new Name(s.getBytes(StandardCharsets.UTF_8));
    }

    public static Name of(byte[] bytes) {
        return new Name(bytes.clone());
    }

    public byte[] bytes() {
        return bytes.clone();
    }

    public int length() {
        return bytes.length;
    }

    /** Copies the name into {@code dst} at {@code at}. */
    public void copyTo(byte[] dst, int at) {
        System.arraycopy(bytes, 0, dst, at, bytes.length);
    }

    public boolean startsWith(String prefix) {
        byte[] p = prefix.getBytes(StandardCharsets.UTF_8);
        return bytes.length >= p.length && Arrays.equals(bytes, 0, p.length, p, 0, p.length);
    }

    /** The name without its first {@code n} bytes. */
    public Name dropPrefix(int n) {
        return new Name(Arrays.copyOfRange(bytes, n, bytes.length));
    }

    @Override
    public int compareTo(Name o) {
        return Arrays.compareUnsigned(bytes, o.bytes);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Name n && Arrays.equals(bytes, n.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
