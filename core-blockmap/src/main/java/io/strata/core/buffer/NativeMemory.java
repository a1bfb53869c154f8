package io.strata.core.buffer;

import java.lang.invoke.VarHandle;
import net.openhft.chronicle.core.UnsafeMemory;

/**
 * Loads and stores at raw native addresses (mapped guest memory, virtqueue rings), with the memory
 * ordering virtio needs. Backed by Chronicle's UnsafeMemory, kept behind this class like
 * {@link NativeBuffer}. All values are little-endian (the host's order, x86-64 and aarch64).
 */
public final class NativeMemory {
    private static final UnsafeMemory M = UnsafeMemory.MEMORY;

    private NativeMemory() {
    }

    public static int getU16(long address) {
        return Short.toUnsignedInt(M.readShort(address));
    }

    /** A load that later loads cannot move above (virtio: read avail->idx before the ring entries). */
    public static int getU16Acquire(long address) {
        return Short.toUnsignedInt(M.readVolatileShort(address));
    }

    public static void putU16(long address, int value) {
        M.writeShort(address, (short) value);
    }

    /** A store that earlier stores cannot move below (virtio: publish used->idx after the entries). */
    public static void putU16Release(long address, int value) {
        VarHandle.releaseFence();
        M.writeShort(address, (short) value);
    }

    public static int getInt(long address) {
        return M.readInt(address);
    }

    public static void putInt(long address, int value) {
        M.writeInt(address, value);
    }

    public static long getLong(long address) {
        return M.readLong(address);
    }

    public static void putLong(long address, long value) {
        M.writeLong(address, value);
    }

    public static byte getByte(long address) {
        return M.readByte(address);
    }

    public static void putByte(long address, byte value) {
        M.writeByte(address, value);
    }

    /** A full barrier: stores before it are visible before loads after it (event-index checks). */
    public static void fullFence() {
        VarHandle.fullFence();
    }

    public static void copy(long from, long to, long length) {
        M.copyMemory(from, to, length);
    }

    public static void zero(long address, long length) {
        M.setMemory(address, length, (byte) 0);
    }
}
