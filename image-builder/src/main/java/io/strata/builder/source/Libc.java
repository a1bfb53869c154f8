package io.strata.builder.source;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/**
 * The libc calls the directory source needs and the JDK lacks: xattrs in every namespace, without
 * following symlinks. Paths are NUL-terminated bytes. Binding costs a few hundred milliseconds on
 * first use (jnr-ffi loads its native stub and generates the interface's class), so the directory
 * source reads xattrs on a thread of their own while file data is being chunked.
 */
public interface Libc {
    @SaveError
    @ssize_t
    long llistxattr(@In byte[] path, @Out byte[] list, @size_t long size);

    @SaveError
    @ssize_t
    long lgetxattr(@In byte[] path, @In byte[] name, @Out byte[] value, @size_t long size);

    /** Bound on first use. */
    final class Holder {
        static final Libc LIBC = LibraryLoader.create(Libc.class).load("c");
        static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

        private Holder() {
        }

        static int errno() {
            return RUNTIME.getLastError();
        }
    }
}
