package io.strata.core.buffer;

import io.strata.core.os.Native;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Strata's own off-heap buffer: fixed capacity, allocated once and reused, freed by {@link #close()}.
 * A direct ByteBuffer in the host's byte order underneath, hidden so that a later move to
 * {@code java.lang.foreign} touches only this class.
 *
 * <p>It was a Chronicle Bytes store until start-up was measured (issue 10 item 4): the first
 * Chronicle store initialises Chronicle Core and its POSIX layer over jnr-ffi, about 700 classes,
 * which every NBD server paid on its first connection. The JDK's direct buffer gives the same
 * memory (Chronicle allocated one too) without any of that.
 *
 * <p>The {@link #view()} ByteBuffer is shared by every user of the buffer: use absolute get/put only,
 * or {@link #copyTo}, never its position or limit.
 */
public final class NativeBuffer implements AutoCloseable {
    /**
     * sun.misc.Unsafe.invokeCleaner(ByteBuffer) (jdk.unsupported, JDK 9+): frees a direct buffer's
     * memory now rather than whenever the GC finds the buffer unreachable, so a closed connection's
     * buffers are gone at once. Looked up reflectively: javac warns on every direct use.
     */
    private static final MethodHandle INVOKE_CLEANER = invokeCleaner();

    private final ByteBuffer view;
    /**
     * The native address of byte 0, read on first use ({@link #address()}): reading it takes
     * {@code --add-opens java.base/java.nio}, which only vhost-user's launch gives (any module
     * option costs every start the JDK's archived module graph, docs/benchmarks.md "Start-up and
     * idle footprint"), and the NBD path never needs it. Volatile: a 64-bit field published to the
     * queue threads; 0 until read.
     */
    private volatile long address;
    private final int capacity;
    private boolean closed;

    private NativeBuffer(int capacity) {
        this.view = ByteBuffer.allocateDirect(capacity).order(ByteOrder.nativeOrder());
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
        long a = address;
        if (a == 0) {
            a = Native.addressOf(view);
            address = a;
        }
        return a;
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
        NativeMemory.copy(address() + offset, targetAddress, length);
    }

    private void checkRange(int offset, int length) {
        if (offset < 0 || length < 0 || offset > capacity - length) {
            throw new IndexOutOfBoundsException("range " + offset + "+" + length + " outside buffer of " + capacity);
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            INVOKE_CLEANER.invokeExact(view);
        } catch (Throwable e) {
            throw new IllegalStateException("cannot free a direct buffer", e);
        }
    }

    private static MethodHandle invokeCleaner() {
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            java.lang.reflect.Field f = unsafeClass.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            Object unsafe = f.get(null);
            return MethodHandles.lookup().findVirtual(unsafeClass, "invokeCleaner", MethodType.methodType(void.class, ByteBuffer.class))
                    .bindTo(unsafe);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
