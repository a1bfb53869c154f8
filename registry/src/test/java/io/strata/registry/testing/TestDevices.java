package io.strata.registry.testing;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.device.BlockDevice;
import io.strata.core.image.ChunkInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/** Small helpers the registry's cache and prefetch tests share: a whole device read, a blob's chunk ranges. */
public final class TestDevices {
    private TestDevices() {
    }

    /** Every byte of the device, in one read. */
    public static byte[] readAll(BlockDevice dev) throws IOException {
        byte[] all = new byte[(int) dev.size()];
        dev.read(0, ByteBuffer.wrap(all));
        return all;
    }

    /** Every byte of the device, in reads of {@code piece} bytes (many requests, as a client makes them). */
    public static byte[] readAll(BlockDevice dev, int piece) throws IOException {
        byte[] all = new byte[(int) dev.size()];
        for (int at = 0; at < all.length; at += piece) {
            dev.read(at, ByteBuffer.wrap(all, at, Math.min(piece, all.length - at)));
        }
        return all;
    }

    /** The compressed ranges of a blob's chunks, as {@code ChunkStore} hands them to a blob source. */
    public static ChunkRanges rangesOf(List<ChunkInfo> chunks) {
        long[] offsets = new long[chunks.size()];
        int[] lengths = new int[chunks.size()];
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = chunks.get(i).compressedOffset();
            lengths[i] = (int) chunks.get(i).compressedSize();
        }
        return ChunkRanges.of(offsets, lengths);
    }
}
