package io.strata.core.buffer;

import java.nio.ByteBuffer;
import net.openhft.chronicle.bytes.BytesStore;
import net.openhft.chronicle.core.UnsafeMemory;

/**
 * Strata's own off-heap buffer: fixed capacity, allocated once and reused. It is backed by a
 * Chronicle Bytes store (design.md section 7) but hides it, so that a later move to
 * {@code java.lang.foreign} touches only this class.
 *
 * <p>The {@link #view()} ByteBuffer is shared by every user of the buffer: use absolute get/put only,
 * or {@link #copyTo}, never its position or limit.
 */
public final class NativeBuffer implements AutoCloseable {
    private final BytesStore<?, ByteBuffer> store;
    private final ByteBuffer view;
    private final long address;
    private final int capacity;

    private NativeBuffer(int capacity) {
        this.store = BytesStore.elasticByteBuffer(capacity, capacity);
        this.view = store.underlyingObject();
        this.address = store.addressForRead(0);
        this.capacity = capacity;
    }

    public static NativeBuffer allocate(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("buffer capacity must be positive: " + capacity);
        }
        return new NativeBuffer(capacity);
    }

    public int capacity() {
        return capacity;
    }

    /** The native address of byte 0, for native copies (e.g. into mapped guest memory). */
    public long address() {
        return address;
    }

    /** The whole buffer as a direct ByteBuffer, for JNI and NIO calls. Absolute access only. */
    public ByteBuffer view() {
        return view;
    }

    /** Copies {@code length} bytes from {@code offset} into {@code dst} at its position, advancing it. */
    public void copyTo(int offset, ByteBuffer dst, int length) {
        checkRange(offset, length);
        int at = dst.position();
        dst.put(at, view, offset, length);
        dst.position(at + length);
    }

    /** Copies {@code length} bytes from {@code offset} to native memory at {@code targetAddress}. */
    public void copyToAddress(int offset, long targetAddress, int length) {
        checkRange(offset, length);
        UnsafeMemory.MEMORY.copyMemory(address + offset, targetAddress, length);
    }

    private void checkRange(int offset, int length) {
        if (offset < 0 || length < 0 || offset > capacity - length) {
            throw new IndexOutOfBoundsException("range " + offset + "+" + length + " outside buffer of " + capacity);
        }
    }

    @Override
    public void close() {
        store.releaseLast();
    }
}
