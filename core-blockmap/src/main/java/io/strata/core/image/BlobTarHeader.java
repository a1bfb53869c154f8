package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The 512-byte GNU tar header Nydus writes after each item of a data blob's trailer (and after the
 * chunk data itself), so the blob reads as a tar with headers behind their data. Only the name, the
 * size, the type (regular file) and the checksum are set; mode, ids and mtime are as Rust's
 * {@code tar::Header::new_gnu()} leaves them, which Go's and GNU tar's readers accept.
 */
public record BlobTarHeader(String name, long size) {
    public static final int SIZE = 512;
    static final int NAME_OFF = 0;
    static final int NAME_SIZE = 100;
    static final int SIZE_OFF = 124;
    static final int SIZE_FIELD = 12;
    static final int MTIME_OFF = 136;
    static final int MTIME_FIELD = 12;
    static final int CHKSUM_OFF = 148;
    static final int CHKSUM_FIELD = 8;
    static final int TYPEFLAG_OFF = 156;
    static final int MAGIC_OFF = 257;
    static final byte TYPE_REGULAR = '0';
    /** GNU magic and version: "ustar " then " \0". */
    static final byte[] GNU_MAGIC = "ustar  \0".getBytes(StandardCharsets.US_ASCII);

    public byte[] encode() {
        byte[] h = new byte[SIZE];
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        if (n.length > NAME_SIZE) {
            throw new IllegalArgumentException("tar name longer than 100 bytes: " + name);
        }
        System.arraycopy(n, 0, h, NAME_OFF, n.length);
        numeric(h, SIZE_OFF, SIZE_FIELD, size);
        numeric(h, MTIME_OFF, MTIME_FIELD, 0);
        h[TYPEFLAG_OFF] = TYPE_REGULAR;
        System.arraycopy(GNU_MAGIC, 0, h, MAGIC_OFF, GNU_MAGIC.length);
        long sum = 0;
        for (int i = 0; i < SIZE; i++) {
            sum += (i >= CHKSUM_OFF && i < CHKSUM_OFF + CHKSUM_FIELD) ? ' ' : (h[i] & 0xff);
        }
        octal(h, CHKSUM_OFF, CHKSUM_FIELD, sum);
        return h;
    }

    /** The name and size of a header written by {@link #encode} (or any GNU/ustar regular-file header). */
    public static BlobTarHeader decode(ByteBuffer buf, int at) {
        byte[] h = new byte[SIZE];
        buf.duplicate().get(at, h);
        int n = 0;
        while (n < NAME_SIZE && h[NAME_OFF + n] != 0) {
            n++;
        }
        long size;
        if ((h[SIZE_OFF] & 0x80) != 0) {
            size = 0;
            for (int i = 1; i < SIZE_FIELD; i++) {
                size = (size << 8) | (h[SIZE_OFF + i] & 0xff);
            }
        } else {
            String s = new String(h, SIZE_OFF, SIZE_FIELD, StandardCharsets.US_ASCII).replace("\0", "").trim();
            size = s.isEmpty() ? 0 : Long.parseLong(s, 8);
        }
        return new BlobTarHeader(new String(h, NAME_OFF, n, StandardCharsets.US_ASCII), size);
    }

    /**
     * A numeric field as Rust's tar crate writes it: zero-padded octal and a NUL, or, for values
     * that do not fit (sizes of 8 GiB and more), base-256 with the top bit of the first byte set.
     */
    private static void numeric(byte[] h, int off, int len, long value) {
        if (value < (1L << (3 * (len - 1)))) {
            octal(h, off, len, value);
            return;
        }
        h[off] = (byte) 0x80;
        for (int i = len - 1; i >= 1; i--) {
            h[off + i] = (byte) value;
            value >>>= 8;
        }
    }

    private static void octal(byte[] h, int off, int len, long value) {
        String s = Long.toOctalString(value);
        String padded = "0".repeat(len - 1 - s.length()) + s;
        System.arraycopy(padded.getBytes(StandardCharsets.US_ASCII), 0, h, off, len - 1);
        h[off + len - 1] = 0;
    }
}
