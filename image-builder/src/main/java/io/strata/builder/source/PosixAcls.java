package io.strata.builder.source;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * POSIX ACLs from a tar's text form into the value of the xattr the kernel keeps them in. GNU tar
 * ({@code --acls}), star and bsdtar write an access ACL as the PAX record {@code SCHILY.acl.access}
 * and a directory's default ACL as {@code SCHILY.acl.default}: entries {@code TAG:QUALIFIER:PERMS},
 * one per line (GNU tar, acl_to_text) or comma-separated with the numeric id appended to named
 * entries (star, bsdtar: {@code user:bob:r--:1001}). {@code tar --acls -x} turns them back into
 * {@code system.posix_acl_access} and {@code system.posix_acl_default}, whose value
 * (include/uapi/linux/posix_acl_xattr.h) is a little-endian version word, 2, then 8 bytes per entry:
 * tag, permissions (16 bits each) and id (32 bits, -1 unless the entry names a user or group), in
 * the order the kernel's posix_acl_valid() wants: by tag, named entries by id.
 */
final class PosixAcls {
    static final String ACCESS_RECORD = "SCHILY.acl.access";
    static final String DEFAULT_RECORD = "SCHILY.acl.default";
    static final String ACCESS_XATTR = "system.posix_acl_access";
    static final String DEFAULT_XATTR = "system.posix_acl_default";

    private static final int XATTR_VERSION = 2;
    private static final int HEADER_SIZE = 4;
    private static final int ENTRY_SIZE = 8;
    // include/uapi/linux/posix_acl.h
    private static final int USER_OBJ = 0x01;
    private static final int USER = 0x02;
    private static final int GROUP_OBJ = 0x04;
    private static final int GROUP = 0x08;
    private static final int MASK = 0x10;
    private static final int OTHER = 0x20;
    private static final long UNDEFINED_ID = 0xFFFF_FFFFL;

    private record Entry(int tag, int perms, long id) {
    }

    private PosixAcls() {
    }

    /**
     * The xattr value for the ACL {@code text}, or null for an access ACL that names no user or group:
     * it says no more than the mode bits (the mask, if any, is the group bits), and the kernel stores
     * no xattr for it (posix_acl_equiv_mode).
     *
     * @throws IllegalArgumentException naming what is wrong with the text
     */
    static byte[] toXattr(String text, boolean isDefault) {
        List<Entry> entries = new ArrayList<>();
        for (String raw : text.split("[,\n]")) {
            int hash = raw.indexOf('#');
            String line = (hash >= 0 ? raw.substring(0, hash) : raw).trim();
            if (!line.isEmpty()) {
                entries.add(parse(line));
            }
        }
        entries.sort(Comparator.comparingInt(Entry::tag).thenComparingLong(Entry::id));
        check(entries);
        if (!isDefault && entries.stream().noneMatch(e -> e.tag() == USER || e.tag() == GROUP)) {
            return null;
        }
        ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE + ENTRY_SIZE * entries.size()).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(XATTR_VERSION);
        for (Entry e : entries) {
            b.putShort((short) e.tag()).putShort((short) e.perms()).putInt((int) e.id());
        }
        return b.array();
    }

    private static Entry parse(String line) {
        String[] f = line.split(":", -1);
        if (f.length < 2 || f.length > 4) {
            throw new IllegalArgumentException("ACL entry '" + line + "' is not TAG:QUALIFIER:PERMS");
        }
        String tag = f[0].trim().toLowerCase(Locale.ROOT);
        // "mask::rwx" and "other::r--"; libacl also reads "mask:rwx" and "other:r--".
        boolean noQualifier = tag.equals("mask") || tag.equals("m") || tag.equals("other") || tag.equals("o");
        String qualifier = noQualifier && f.length == 2 ? "" : f[1].trim();
        String permText = noQualifier && f.length == 2 ? f[1] : f.length > 2 ? f[2] : "";
        String idText = f.length == 4 ? f[3].trim() : null;
        int perms = perms(line, permText.trim());
        switch (tag) {
            case "user", "u" -> {
                return qualifier.isEmpty() ? new Entry(USER_OBJ, perms, UNDEFINED_ID)
                        : new Entry(USER, perms, id(line, qualifier, idText, HostIds.USERS));
            }
            case "group", "g" -> {
                return qualifier.isEmpty() ? new Entry(GROUP_OBJ, perms, UNDEFINED_ID)
                        : new Entry(GROUP, perms, id(line, qualifier, idText, HostIds.GROUPS));
            }
            case "mask", "m", "other", "o" -> {
                if (!qualifier.isEmpty()) {
                    throw new IllegalArgumentException("ACL entry '" + line + "' names someone in a " + tag + " entry");
                }
                return new Entry(tag.startsWith("m") ? MASK : OTHER, perms, UNDEFINED_ID);
            }
            default -> throw new IllegalArgumentException("ACL entry '" + line + "' has an unknown tag '" + f[0] + "'");
        }
    }

    private static int perms(String line, String text) {
        int p = 0;
        for (char c : text.toCharArray()) {
            switch (c) {
                case 'r' -> p |= 4;
                case 'w' -> p |= 2;
                case 'x' -> p |= 1;
                case '-' -> {
                }
                default -> throw new IllegalArgumentException("ACL entry '" + line + "' has permissions '" + text + "'");
            }
        }
        return p;
    }

    /**
     * A named entry's id: the numeric id star and bsdtar append, a numeric qualifier, or (GNU tar
     * writes names, even with --numeric-owner) the name looked up in this host's /etc/passwd or
     * /etc/group, as {@code tar --acls -x} here would. A name the host does not know is refused:
     * guessing an id would give someone else the access.
     */
    private static long id(String line, String qualifier, String idText, HostIds names) {
        String digits = idText != null && !idText.isEmpty() ? idText : qualifier;
        if (digits.isEmpty() || digits.length() > 10 || !digits.chars().allMatch(Character::isDigit)) {
            Long known = names.idOf(qualifier);
            if (known == null) {
                throw new IllegalArgumentException("ACL entry '" + line + "' names '" + qualifier + "', which " + names.file
                        + " does not list (make the tar with numeric ids, e.g. bsdtar --acls or star)");
            }
            return known;
        }
        long id = Long.parseLong(digits);
        if (id >= UNDEFINED_ID) {
            throw new IllegalArgumentException("ACL entry '" + line + "' has id " + id + ", outside 0.." + (UNDEFINED_ID - 1));
        }
        return id;
    }

    /** The names of one of the host's id files (NAME:PASSWORD:ID:...), read once. */
    static final class HostIds {
        static final HostIds USERS = new HostIds("/etc/passwd");
        static final HostIds GROUPS = new HostIds("/etc/group");

        final String file;
        private volatile java.util.Map<String, Long> ids;

        private HostIds(String file) {
            this.file = file;
        }

        Long idOf(String name) {
            java.util.Map<String, Long> m = ids;
            if (m == null) {
                m = new java.util.HashMap<>();
                try {
                    for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of(file))) {
                        String[] f = l.split(":", -1);
                        if (f.length > 2 && !f[0].isEmpty() && f[2].matches("[0-9]{1,10}")) {
                            m.putIfAbsent(f[0], Long.parseLong(f[2]));
                        }
                    }
                } catch (java.io.IOException | RuntimeException unreadable) {
                    // no names then: every named entry without an id is refused
                }
                ids = m;
            }
            return m.get(name);
        }
    }

    /** What posix_acl_valid() checks: one owner, group and other entry; a mask with named entries; no name twice. */
    private static void check(List<Entry> entries) {
        int[] count = new int[OTHER + 1];
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            count[e.tag()]++;
            if (i > 0 && entries.get(i - 1).tag() == e.tag() && (e.tag() == USER || e.tag() == GROUP)
                    && entries.get(i - 1).id() == e.id()) {
                throw new IllegalArgumentException("ACL names " + (e.tag() == USER ? "user " : "group ") + e.id() + " twice");
            }
        }
        if (count[USER_OBJ] != 1 || count[GROUP_OBJ] != 1 || count[OTHER] != 1 || count[MASK] > 1) {
            throw new IllegalArgumentException("ACL needs exactly one user::, group:: and other:: entry and at most one mask::");
        }
        if (count[MASK] == 0 && count[USER] + count[GROUP] > 0) {
            throw new IllegalArgumentException("ACL names users or groups but has no mask:: entry");
        }
    }
}
