package io.strata.core.os;

import java.io.FileDescriptor;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.channels.Channel;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/** Loads {@link LibC} once and turns failed calls into IOExceptions that carry errno. */
public final class Native {
    private static volatile LibC libc;

    private Native() {
    }

    public static LibC libc() {
        LibC l = libc;
        if (l == null) {
            synchronized (Native.class) {
                if (libc == null) {
                    if (!"false".equals(System.getProperty("jnr.ffi.x86asm.enabled"))) {
                        throw new IllegalStateException("start the JVM with -Djnr.ffi.x86asm.enabled=false (bin/strata does)");
                    }
                    libc = LibraryLoader.create(LibC.class).load("c");
                }
                l = libc;
            }
        }
        return l;
    }

    private static volatile java.lang.reflect.Field bufferAddress;

    /** The native address of a direct ByteBuffer's byte 0 (for passing it to libc). */
    public static long addressOf(java.nio.ByteBuffer direct) {
        if (!direct.isDirect()) {
            throw new IllegalArgumentException("not a direct buffer");
        }
        try {
            java.lang.reflect.Field f = bufferAddress;
            if (f == null) {
                f = java.nio.Buffer.class.getDeclaredField("address");
                f.setAccessible(true);
                bufferAddress = f;
            }
            return f.getLong(direct);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("cannot read a direct buffer's address (needs --add-opens java.base/java.nio=ALL-UNNAMED)", e);
        }
    }

    public static int errno() {
        return Runtime.getRuntime(libc()).getLastError();
    }

    /** Throws {@code what: errno N} when {@code result} is negative; returns it otherwise. */
    public static int check(int result, String what) throws IOException {
        if (result < 0) {
            int e = errno();
            throw new IOException(what + " failed: " + errnoText(e));
        }
        return result;
    }

    /** "errno N (NAME)", e.g. "errno 16 (EBUSY)". */
    public static String errnoText(int errno) {
        return "errno " + errno + " (" + jnr.constants.platform.Errno.valueOf(errno) + ")";
    }

    /**
     * A read-only channel of the very file {@code fd} refers to, opened anew through
     * /proc/self/fd: whatever its path names now, and with a file offset of its own. How a descriptor
     * Strata opened itself (with flags the JDK does not offer, or to keep for lseek) becomes a
     * channel without the JDK's internals.
     */
    public static java.nio.channels.FileChannel reopenForReading(int fd) throws IOException {
        return java.nio.channels.FileChannel.open(java.nio.file.Path.of("/proc/self/fd/" + fd),
                java.nio.file.StandardOpenOption.READ);
    }

    /**
     * The file descriptor number behind a JDK channel (sockets, files), needed to hand a socket to
     * the kernel. Uses the JDK's internal accessor; bin/strata opens {@code sun.nio.ch} for it.
     */
    public static int fdOf(Channel channel) throws IOException {
        try {
            // Socket channels implement sun.nio.ch.SelChImpl.getFDVal(); FileChannelImpl keeps a field.
            for (Class<?> c = channel.getClass(); c != null; c = c.getSuperclass()) {
                for (Method m : c.getDeclaredMethods()) {
                    if (m.getName().equals("getFDVal") && m.getParameterCount() == 0) {
                        m.setAccessible(true);
                        return (Integer) m.invoke(channel);
                    }
                }
                for (java.lang.reflect.Field f : c.getDeclaredFields()) {
                    if (f.getType() == FileDescriptor.class && f.getName().equals("fd")) {
                        f.setAccessible(true);
                        FileDescriptor fd = (FileDescriptor) f.get(channel);
                        java.lang.reflect.Field raw = FileDescriptor.class.getDeclaredField("fd");
                        raw.setAccessible(true);
                        return raw.getInt(fd);
                    }
                }
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IOException("cannot read the file descriptor of " + channel.getClass().getName()
                    + " (run with --add-opens java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/java.io=ALL-UNNAMED)", e);
        }
        throw new IOException("no file descriptor found in " + channel.getClass().getName());
    }
}
