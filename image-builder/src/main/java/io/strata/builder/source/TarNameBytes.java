package io.strata.builder.source;

import io.strata.builder.tree.EntryException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Checks that a tar entry's name and link target were UTF-8 as the archive stores them. The tar
 * reader decodes them with replacement ('?' for a byte that is not UTF-8), so two names that differ
 * only there became one and a file was lost without a word; the image keeps names as UTF-8, so such
 * an entry is refused instead. The bytes are taken from the entry's raw header blocks, in the order a
 * reader gives them precedence: a PAX record ({@code path}, {@code linkpath}), a GNU long name or
 * long link entry ('L', 'K'), else the ustar header's own fields (name with its prefix, linkname).
 */
final class TarNameBytes {
    private static final int BLOCK = 512;
    // ustar header fields (POSIX.1-1988, pax(1) "ustar Interchange Format").
    private static final int NAME_OFF = 0;
    private static final int NAME_LEN = 100;
    private static final int SIZE_OFF = 124;
    private static final int SIZE_LEN = 12;
    private static final int TYPEFLAG_OFF = 156;
    private static final int LINKNAME_OFF = 157;
    private static final int LINKNAME_LEN = 100;
    private static final int MAGIC_OFF = 257;
    private static final int PREFIX_OFF = 345;
    private static final int PREFIX_LEN = 155;
    private static final byte GNU_LONG_NAME = 'L';
    private static final byte GNU_LONG_LINK = 'K';

    private TarNameBytes() {
    }

    /** Throws unless the entry's name and link target (if any) are valid UTF-8 in {@code headers}. */
    static void requireUtf8(String entryName, byte[] headers, boolean hasLinkTarget) throws EntryException {
        if (headers.length < BLOCK) {
            return; // not a header the reader recorded: nothing to check against
        }
        int own = headers.length - BLOCK; // the entry's own header is the last block
        byte[] name = PaxRecords.rawValue(headers, "path");
        if (name == null) {
            name = gnuLong(headers, GNU_LONG_NAME);
        }
        if (name == null) {
            name = ustarName(headers, own);
        }
        check(entryName, "name", name);
        if (hasLinkTarget) {
            byte[] link = PaxRecords.rawValue(headers, "linkpath");
            if (link == null) {
                link = gnuLong(headers, GNU_LONG_LINK);
            }
            if (link == null) {
                link = field(headers, own + LINKNAME_OFF, LINKNAME_LEN);
            }
            check(entryName, "link target", link);
        }
    }

    private static void check(String entryName, String what, byte[] bytes) throws EntryException {
        try {
            strictUtf8(bytes, bytes.length);
        } catch (CharacterCodingException e) {
            throw new EntryException(entryName, "has a " + what + " that is not valid UTF-8, which this builder does not keep unchanged");
        }
    }

    /** The first {@code length} bytes as UTF-8, refused (not replaced with U+FFFD) when they are not. */
    static String strictUtf8(byte[] bytes, int length) throws CharacterCodingException {
        return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes, 0, length)).toString();
    }

    /** The name and prefix fields joined as a reader joins them (prefix/name), when the header is ustar. */
    private static byte[] ustarName(byte[] h, int at) {
        byte[] name = field(h, at + NAME_OFF, NAME_LEN);
        boolean ustar = h[at + MAGIC_OFF] == 'u' && h[at + MAGIC_OFF + 1] == 's' && h[at + MAGIC_OFF + 2] == 't'
                && h[at + MAGIC_OFF + 3] == 'a' && h[at + MAGIC_OFF + 4] == 'r';
        byte[] prefix = ustar ? field(h, at + PREFIX_OFF, PREFIX_LEN) : new byte[0];
        if (prefix.length == 0) {
            return name;
        }
        byte[] joined = new byte[prefix.length + 1 + name.length];
        System.arraycopy(prefix, 0, joined, 0, prefix.length);
        joined[prefix.length] = '/';
        System.arraycopy(name, 0, joined, prefix.length + 1, name.length);
        return joined;
    }

    /** The data of a GNU long name or long link entry among the header blocks, or null. */
    private static byte[] gnuLong(byte[] h, byte type) {
        byte[] found = null;
        int at = 0;
        while (at + BLOCK <= h.length) {
            long size = octal(h, at + SIZE_OFF, SIZE_LEN);
            boolean pax = h[at + TYPEFLAG_OFF] == 'x' || h[at + TYPEFLAG_OFF] == 'g';
            boolean long_ = h[at + TYPEFLAG_OFF] == GNU_LONG_NAME || h[at + TYPEFLAG_OFF] == GNU_LONG_LINK;
            if (!pax && !long_) {
                break; // the entry's own header
            }
            int dataStart = at + BLOCK;
            if (size < 0 || dataStart + size > h.length) {
                return null;
            }
            if (h[at + TYPEFLAG_OFF] == type) {
                found = field(h, dataStart, (int) size);
            }
            at = dataStart + (int) ((size + BLOCK - 1) / BLOCK * BLOCK);
        }
        return found;
    }

    /** Bytes of a NUL-terminated (or full) field. */
    private static byte[] field(byte[] h, int at, int len) {
        int end = at;
        while (end < at + len && end < h.length && h[end] != 0) {
            end++;
        }
        return java.util.Arrays.copyOfRange(h, at, end);
    }

    private static long octal(byte[] h, int at, int len) {
        long v = 0;
        boolean any = false;
        for (int i = at; i < at + len; i++) {
            byte c = h[i];
            if (c >= '0' && c <= '7') {
                v = v * 8 + (c - '0');
                any = true;
            } else if (any || c != ' ' && c != 0) {
                break;
            }
        }
        return any ? v : -1;
    }
}
