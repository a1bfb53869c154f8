package io.strata.builder.source;

import io.strata.core.os.Native;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads a file's extended attributes in every namespace without following symlinks, through libc's
 * {@code llistxattr}/{@code lgetxattr} (bound in core's {@link io.strata.core.os.LibC}): the JDK's {@code UserDefinedFileAttributeView}
 * sees only {@code user.*} and cannot read a symlink's own attributes.
 */
final class Xattrs {
    private static final int ERANGE = 34;
    private static final int ENOTSUP = 95;
    private static final int ENODATA = 61;

    private Xattrs() {
    }

    /** All xattrs of {@code file} (the link itself for a symlink), by full name. */
    static Map<String, byte[]> read(Path file) throws IOException {
        byte[] path = cPath(file);
        byte[] list = listNames(file, path);
        Map<String, byte[]> out = new TreeMap<>();
        int start = 0;
        for (int i = 0; i < list.length; i++) {
            if (list[i] == 0) {
                if (i > start) {
                    byte[] name = new byte[i - start + 1];
                    System.arraycopy(list, start, name, 0, i - start);
                    byte[] value = value(file, path, name);
                    if (value != null) {
                        out.put(utf8Name(file, name), value);
                    }
                }
                start = i + 1;
            }
        }
        return out;
    }

    /** The name without its NUL, refused when it is not UTF-8 (a replacement character would rename it). */
    private static String utf8Name(Path file, byte[] nulTerminated) throws IOException {
        try {
            return TarNameBytes.strictUtf8(nulTerminated, nulTerminated.length - 1);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new io.strata.builder.BuildException(file + ": has an xattr whose name is not UTF-8 ("
                    + new String(nulTerminated, 0, nulTerminated.length - 1, StandardCharsets.ISO_8859_1) + ")");
        }
    }

    private static byte[] listNames(Path file, byte[] path) throws IOException {
        for (int attempt = 0; attempt < 8; attempt++) {
            long size = Native.libc().llistxattr(path, null, 0);
            if (size < 0) {
                int errno = Native.errno();
                if (errno == ENOTSUP) {
                    return new byte[0];
                }
                throw new IOException(file + ": llistxattr failed, errno " + errno);
            }
            if (size == 0) {
                return new byte[0];
            }
            byte[] buf = new byte[(int) size];
            long n = Native.libc().llistxattr(path, buf, buf.length);
            if (n >= 0) {
                return java.util.Arrays.copyOf(buf, (int) n);
            }
            if (Native.errno() != ERANGE) {
                throw new IOException(file + ": llistxattr failed, errno " + Native.errno());
            }
        }
        throw new IOException(file + ": xattr list keeps changing");
    }

    /** The value, or null if the attribute vanished meanwhile. */
    private static byte[] value(Path file, byte[] path, byte[] name) throws IOException {
        for (int attempt = 0; attempt < 8; attempt++) {
            long size = Native.libc().lgetxattr(path, name, null, 0);
            if (size < 0) {
                int errno = Native.errno();
                if (errno == ENODATA) {
                    return null;
                }
                throw new IOException(file + ": lgetxattr " + new String(name, 0, name.length - 1, StandardCharsets.UTF_8)
                        + " failed, errno " + errno);
            }
            byte[] buf = new byte[(int) size];
            long n = size == 0 ? 0 : Native.libc().lgetxattr(path, name, buf, buf.length);
            if (n >= 0) {
                return java.util.Arrays.copyOf(buf, (int) n);
            }
            if (Native.errno() != ERANGE) {
                throw new IOException(file + ": lgetxattr failed, errno " + Native.errno());
            }
        }
        throw new IOException(file + ": xattr value keeps changing");
    }

    private static byte[] cPath(Path file) {
        byte[] p = file.toString().getBytes(StandardCharsets.UTF_8);
        return java.util.Arrays.copyOf(p, p.length + 1);
    }
}
