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

    public static int errno() {
        return Runtime.getRuntime(libc()).getLastError();
    }

    /** Throws {@code what: errno N} when {@code result} is negative; returns it otherwise. */
    public static int check(int result, String what) throws IOException {
        if (result < 0) {
            int e = errno();
            throw new IOException(what + " failed: errno " + e + " (" + jnr.constants.platform.Errno.valueOf(e) + ")");
        }
        return result;
    }

    /**
     * The file descriptor number behind a JDK channel (sockets, files), needed to hand a socket to
     * the kernel. Uses the JDK's internal accessor; bin/strata opens {@code sun.nio.ch} for it.
     */
    public static int fdOf(Channel channel) throws IOException {
        try {
            Method m = channel.getClass().getMethod("getFDVal");
            m.setAccessible(true);
            return (Integer) m.invoke(channel);
        } catch (ReflectiveOperationException | RuntimeException e) {
            try {
                Method m = channel.getClass().getMethod("getFD");
                m.setAccessible(true);
                FileDescriptor fd = (FileDescriptor) m.invoke(channel);
                java.lang.reflect.Field f = FileDescriptor.class.getDeclaredField("fd");
                f.setAccessible(true);
                return f.getInt(fd);
            } catch (ReflectiveOperationException | RuntimeException e2) {
                throw new IOException("cannot read the file descriptor of " + channel.getClass().getName()
                        + " (run with --add-opens java.base/sun.nio.ch=ALL-UNNAMED)", e2);
            }
        }
    }
}
