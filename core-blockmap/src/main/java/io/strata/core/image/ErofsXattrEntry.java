package io.strata.core.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One xattr entry ({@code struct erofs_xattr_entry}): name length u8, name index u8, value size
 * u16, then the name without its namespace prefix and the value, padded to 4 bytes. The index
 * stands for the prefix, as in the kernel's {@code erofs_xattr_prefix()}: only these namespaces can
 * be stored without the long-prefix table (which this format's writers do not use).
 */
public record ErofsXattrEntry(int nameIndex, byte[] nameSuffix, byte[] value) {
    public static final int HEADER_SIZE = 4;
    static final int NAME_LEN_OFF = 0;
    static final int NAME_INDEX_OFF = 1;
    static final int VALUE_SIZE_OFF = 2;

    public static final int INDEX_USER = 1;
    public static final int INDEX_POSIX_ACL_ACCESS = 2;
    public static final int INDEX_POSIX_ACL_DEFAULT = 3;
    public static final int INDEX_TRUSTED = 4;
    public static final int INDEX_SECURITY = 6;

    public static final int MAX_NAME_LEN = 255;
    public static final int MAX_VALUE_SIZE = 0xFFFF;

    /** Prefixes by index; an ACL's whole name is its prefix (its suffix is empty). */
    private static final String[] PREFIX = {
        null, "user.", "system.posix_acl_access", "system.posix_acl_default", "trusted.", null, "security."
    };

    /**
     * The entry for a full xattr name such as {@code user.foo}, or null if EROFS has no index for its
     * namespace. Throws if the name or value is too long for the on-disk fields.
     */
    public static ErofsXattrEntry of(String fullName, byte[] value) {
        for (int i = 1; i < PREFIX.length; i++) {
            String p = PREFIX[i];
            if (p == null || !fullName.startsWith(p)) {
                continue;
            }
            boolean acl = i == INDEX_POSIX_ACL_ACCESS || i == INDEX_POSIX_ACL_DEFAULT;
            if (acl && fullName.length() != p.length()) {
                continue;
            }
            byte[] suffix = fullName.substring(p.length()).getBytes(StandardCharsets.UTF_8);
            if (!acl && suffix.length == 0) {
                throw new IllegalArgumentException("xattr name '" + fullName + "' is only a namespace prefix");
            }
            if (suffix.length > MAX_NAME_LEN) {
                throw new IllegalArgumentException("xattr name '" + fullName + "' is longer than " + MAX_NAME_LEN + " bytes after its prefix");
            }
            if (value.length > MAX_VALUE_SIZE) {
                throw new IllegalArgumentException("xattr '" + fullName + "' has a " + value.length
                        + "-byte value; EROFS stores at most " + MAX_VALUE_SIZE);
            }
            return new ErofsXattrEntry(i, suffix, value);
        }
        return null;
    }

    public String fullName() {
        String p = nameIndex > 0 && nameIndex < PREFIX.length ? PREFIX[nameIndex] : null;
        if (p == null) {
            p = "?" + nameIndex + ".";
        }
        return p + new String(nameSuffix, StandardCharsets.UTF_8);
    }

    /** Bytes this entry takes on disk, including padding to 4. */
    public int encodedSize() {
        return (HEADER_SIZE + nameSuffix.length + value.length + 3) & ~3;
    }

    /** Writes the entry and its zero padding; returns the bytes written. */
    public int encode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.put(at + NAME_LEN_OFF, (byte) nameSuffix.length);
        b.put(at + NAME_INDEX_OFF, (byte) nameIndex);
        b.putShort(at + VALUE_SIZE_OFF, (short) value.length);
        b.put(at + HEADER_SIZE, nameSuffix);
        b.put(at + HEADER_SIZE + nameSuffix.length, value);
        int used = HEADER_SIZE + nameSuffix.length + value.length;
        int size = encodedSize();
        for (int i = used; i < size; i++) {
            b.put(at + i, (byte) 0);
        }
        return size;
    }

    public static ErofsXattrEntry decode(ByteBuffer buf, int at) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int nameLen = Byte.toUnsignedInt(b.get(at + NAME_LEN_OFF));
        int index = Byte.toUnsignedInt(b.get(at + NAME_INDEX_OFF));
        int valueSize = Short.toUnsignedInt(b.getShort(at + VALUE_SIZE_OFF));
        byte[] name = new byte[nameLen];
        byte[] value = new byte[valueSize];
        b.get(at + HEADER_SIZE, name);
        b.get(at + HEADER_SIZE + nameLen, value);
        return new ErofsXattrEntry(index, name, value);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ErofsXattrEntry e && e.nameIndex == nameIndex
                && Arrays.equals(e.nameSuffix, nameSuffix) && Arrays.equals(e.value, value);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * nameIndex + Arrays.hashCode(nameSuffix)) + Arrays.hashCode(value);
    }

    @Override
    public String toString() {
        return fullName() + " (" + value.length + " bytes)";
    }
}
