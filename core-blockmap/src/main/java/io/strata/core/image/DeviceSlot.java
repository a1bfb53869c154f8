package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One 128-byte EROFS device table slot ({@code struct erofs_deviceslot}). In a RAFS v6 bootstrap
 * there is one per data blob, in blob-table order; {@code mappedBlkaddr} is where that blob's
 * uncompressed space starts on the flat device (the kernel's flatdev mode, Linux 6.4+).
 */
public record DeviceSlot(String tag, long blocks, long mappedBlkaddr) {

    public static final int SIZE = 128;
    static final int TAG_OFF = 0;
    static final int TAG_SIZE = 64;
    static final int BLOCKS_OFF = 64;
    static final int MAPPED_BLKADDR_OFF = 68;

    public static DeviceSlot decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return new DeviceSlot(
                cString(b, at + TAG_OFF, TAG_SIZE),
                Integer.toUnsignedLong(b.getInt(at + BLOCKS_OFF)),
                Integer.toUnsignedLong(b.getInt(at + MAPPED_BLKADDR_OFF)));
    }

    public void encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < SIZE; i++) {
            b.put(at + i, (byte) 0);
        }
        byte[] t = tag.getBytes(StandardCharsets.US_ASCII);
        b.put(at + TAG_OFF, t, 0, Math.min(t.length, TAG_SIZE));
        b.putInt(at + BLOCKS_OFF, (int) blocks);
        b.putInt(at + MAPPED_BLKADDR_OFF, (int) mappedBlkaddr);
    }

    /** A fixed-size, NUL-padded ASCII field, as both EROFS and Nydus store ids. */
    static String cString(ByteBuffer b, int at, int size) {
        byte[] raw = new byte[size];
        b.get(at, raw);
        int n = 0;
        while (n < size && raw[n] != 0) {
            n++;
        }
        return new String(raw, 0, n, StandardCharsets.US_ASCII);
    }
}
