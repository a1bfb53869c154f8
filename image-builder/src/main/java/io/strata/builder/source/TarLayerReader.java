package io.strata.builder.source;

import io.strata.builder.BuildException;
import io.strata.builder.tree.EntryException;
import io.strata.builder.tree.EntryPath;
import io.strata.builder.tree.FileContent;
import io.strata.builder.tree.FileKind;
import io.strata.builder.tree.Name;
import io.strata.builder.tree.Node;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.TreeMap;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Reads one tar layer (commons-compress: ustar, GNU and PAX headers, sparse entries) into the tree,
 * sending regular files' data through the chunk pipeline as the entries stream past. Whiteouts are
 * handled per {@link WhiteoutMode}. Xattrs come from PAX {@code SCHILY.xattr.NAME} (raw bytes) and
 * {@code LIBARCHIVE.xattr.NAME} (URL-encoded name, base64 value) records.
 */
final class TarLayerReader {
    static final String WHITEOUT_PREFIX = ".wh.";
    static final String OPAQUE_MARKER = ".wh..wh..opq";
    static final String OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";
    private static final String SCHILY_XATTR = "SCHILY.xattr.";
    private static final String LIBARCHIVE_XATTR = "LIBARCHIVE.xattr.";

    private final BuildContext ctx;
    private final int layer;
    private final WhiteoutMode whiteouts;
    private final String source;

    TarLayerReader(BuildContext ctx, int layer, WhiteoutMode whiteouts, String source) {
        this.ctx = ctx;
        this.layer = layer;
        this.whiteouts = whiteouts;
        this.source = source;
    }

    /** Directories an opaque marker named (overlay form): marked when the layer ends. */
    private final java.util.List<EntryPath> opaqueDirectories = new java.util.ArrayList<>();

    private void markOpaqueDirectories() {
        for (EntryPath dir : opaqueDirectories) {
            Node d = ctx.tree().lookup(dir);
            if (d != null && d.isDirectory()) { // a later entry may have made it a file
                d.setXattr(OVERLAY_OPAQUE_XATTR, new byte[] {'y'});
            }
        }
    }

    /** Reads the whole (already decompressed) tar stream. */
    void read(InputStream tar) throws IOException {
        RecordingInputStream rec = new RecordingInputStream(tar);
        TarArchiveInputStream in = new TarArchiveInputStream(rec, StandardCharsets.UTF_8.name());
        String last = null;
        while (true) {
            TarArchiveEntry e;
            byte[] headers;
            try {
                drainEntry(in); // whatever of the last entry's data is left is read outside the recording
                rec.start();
                e = in.getNextEntry();
                headers = rec.stop();
            } catch (IOException | RuntimeException ex) {
                throw new BuildException(source + ": " + (last == null ? "at the first entry" : "after entry '" + last + "'")
                        + ": " + message(ex) + sparseHint(message(ex), rec.stop()), ex);
            }
            if (e == null) {
                markOpaqueDirectories();
                break;
            }
            if (!e.isCheckSumOK()) {
                // commons-compress reads a header whatever its checksum; GNU tar refuses it ("Skipping
                // to next header"). A flipped bit in a mode field would otherwise become, say, set-uid.
                throw new BuildException(source + ": entry '" + e.getName() + "': its tar header's checksum does not match"
                        + " (a damaged archive)");
            }
            last = e.getName();
            try {
                add(e, headers, in);
            } catch (EntryException ex) {
                throw new BuildException(source + ": entry " + ex.getMessage(), ex);
            } catch (BuildException ex) {
                throw ex;
            } catch (IOException | RuntimeException ex) {
                throw new BuildException(source + ": entry '" + e.getName() + "': " + message(ex), ex);
            }
        }
    }

    /** Reads what is left of the current entry's data (nothing when the entry was read whole, or before the first). */
    private static void drainEntry(TarArchiveInputStream in) throws IOException {
        if (in.getCurrentEntry() == null) {
            return;
        }
        byte[] sink = new byte[8192];
        while (in.read(sink, 0, sink.length) >= 0) {
            // discarded
        }
    }

    /**
     * What to add to a header the tar library could not read when it is a sparse file's: commons-compress
     * cannot read GNU sparse headers of files over 8 GiB ("Corrupted TAR archive") nor PAX sparse
     * records over 2 GiB ("Unable to parse int"), messages that say nothing of the cause.
     */
    static String sparseHint(String failure, byte[] headers) {
        if (!failure.contains("Corrupted TAR archive") && !failure.contains("Unable to parse int")) {
            return ""; // another failure (a cut archive, say), whatever the headers hold
        }
        boolean sparse = false;
        for (int at = 0; at + TarConstants.DEFAULT_RCDSIZE <= headers.length && !sparse; at += TarConstants.DEFAULT_RCDSIZE) {
            sparse = headers[at + TYPEFLAG_OFFSET] == TarConstants.LF_GNUTYPE_SPARSE && isHeader(headers, at);
        }
        if (!sparse) {
            byte[] pax = "GNU.sparse.".getBytes(StandardCharsets.US_ASCII);
            for (int i = 0; i + pax.length <= headers.length && !sparse; i++) {
                sparse = java.util.Arrays.equals(headers, i, i + pax.length, pax, 0, pax.length);
            }
        }
        return sparse ? " (a sparse file's entry: the tar library cannot read sparse entries of files over 2 GiB (PAX)"
                + " or 8 GiB (GNU); make the tar without --sparse)" : "";
    }

    /** The type flag's offset in a tar header block (POSIX ustar; GNU and PAX keep it). */
    private static final int TYPEFLAG_OFFSET = 156;

    /** Whether the 512-byte block at {@code at} looks like a tar header: "ustar" at its magic (offset 257). */
    private static boolean isHeader(byte[] b, int at) {
        byte[] magic = "ustar".getBytes(StandardCharsets.US_ASCII);
        return java.util.Arrays.equals(b, at + 257, at + 257 + magic.length, magic, 0, magic.length);
    }

    private static String message(Throwable t) {
        if (t instanceof java.io.EOFException && t.getMessage() == null) {
            // gzip's reader says only "EOFException" when the file ends inside its stream.
            return "the compressed stream ends early (a truncated file?)";
        }
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }

    private void add(TarArchiveEntry e, byte[] headers, TarArchiveInputStream in) throws IOException, EntryException {
        TarNameBytes.requireUtf8(e.getName(), headers, e.isLink() || e.isSymbolicLink());
        EntryPath path = EntryPath.parse(e.getName());
        if (!path.isRoot() && path.last().startsWith(WHITEOUT_PREFIX)) {
            whiteout(e, path);
            return;
        }
        if (e.isLink()) {
            ctx.tree().link(path, EntryPath.parse(e.getLinkName()), layer);
            return;
        }
        Node n = new Node(kindOf(e));
        Instant mtime = e.getLastModifiedTime().toInstant();
        n.setPermissions(e.getMode()).setOwner(uid(e), gid(e))
                .setMtime(mtime.getEpochSecond(), mtime.getNano()).setXattrs(xattrs(e, headers)).setLayer(layer);
        switch (n.kind()) {
            case SYMLINK:
                n.setSymlinkTarget(EntryPath.linkTarget(e.getName(), e.getLinkName()));
                break;
            case CHAR_DEVICE:
            case BLOCK_DEVICE:
                n.setDevice(e.getDevMajor(), e.getDevMinor());
                break;
            case REGULAR:
                long size = e.isSparse() ? e.getRealSize() : e.getSize();
                if (FileContent.chunksFor(size, ctx.options().chunkSize()) > FileContent.MAX_CHUNKS) {
                    throw new EntryException(e.getName(), "declares " + size + " bytes, more than an image file of "
                            + ctx.options().chunkSize() + "-byte chunks can hold");
                }
                FileContent c = new FileContent(size, ctx.options().chunkSize());
                n.setContent(c);
                ctx.pipeline().addFile(c, in, "'" + e.getName() + "'");
                break;
            default:
                break;
        }
        ctx.tree().put(path, n);
    }

    /** The largest uid or gid: EROFS, like Linux, stores 32 bits. */
    private static final long MAX_ID = 0xFFFF_FFFFL;

    /**
     * The entry's owner, refused when it does not fit 32 bits (a PAX uid can be any number): cut to
     * 32 bits, uid 4294967296 became 0, root. GNU tar refuses it too ("out of range").
     */
    private static long uid(TarArchiveEntry e) throws EntryException {
        return id(e, "uid", e.getLongUserId());
    }

    private static long gid(TarArchiveEntry e) throws EntryException {
        return id(e, "gid", e.getLongGroupId());
    }

    private static long id(TarArchiveEntry e, String what, long id) throws EntryException {
        if (id < 0 || id > MAX_ID) {
            throw new EntryException(e.getName(), "has " + what + " " + id + ", outside 0.." + MAX_ID);
        }
        return id;
    }

    private FileKind kindOf(TarArchiveEntry e) throws EntryException {
        if (e.isDirectory()) {
            return FileKind.DIRECTORY;
        }
        if (e.isSymbolicLink()) {
            return FileKind.SYMLINK;
        }
        if (e.isCharacterDevice()) {
            return FileKind.CHAR_DEVICE;
        }
        if (e.isBlockDevice()) {
            return FileKind.BLOCK_DEVICE;
        }
        if (e.isFIFO()) {
            return FileKind.FIFO;
        }
        if (e.isFile()) {
            return FileKind.REGULAR;
        }
        throw new EntryException(e.getName(), "has tar entry type '" + (char) e.getLinkFlag() + "', which an image cannot hold");
    }

    private void whiteout(TarArchiveEntry e, EntryPath path) throws EntryException {
        Name name = path.last();
        EntryPath dir = path.parent();
        if (name.toString().equals(OPAQUE_MARKER)) {
            if (whiteouts == WhiteoutMode.APPLY) {
                ctx.tree().opaque(dir, layer);
            } else {
                Node d = ctx.tree().lookup(dir);
                if (d == null || !d.isDirectory()) {
                    ctx.tree().opaque(dir, layer); // creates the directory
                }
                // Set once the layer is read: the directory's own entry may come after its marker,
                // and an entry's metadata replaces the directory's xattrs.
                opaqueDirectories.add(dir);
            }
            return;
        }
        if (name.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) {
            ctx.warning(source + ": left out '" + e.getName() + "', an AUFS-specific whiteout entry");
            return;
        }
        EntryPath target = dir.child(name.dropPrefix(WHITEOUT_PREFIX.length()));
        if (whiteouts == WhiteoutMode.APPLY) {
            ctx.tree().whiteout(target, layer);
        } else {
            Instant mtime = e.getLastModifiedTime().toInstant();
            ctx.tree().put(target, new Node(FileKind.CHAR_DEVICE).setDevice(0, 0).setPermissions(e.getMode())
                    .setOwner(uid(e), gid(e)).setMtime(mtime.getEpochSecond(), mtime.getNano())
                    .setLayer(layer));
        }
    }

    private static void acl(TarArchiveEntry e, Map<String, String> pax, String record, String xattr, boolean isDefault,
            Map<String, byte[]> out) throws EntryException {
        String text = pax.get(record);
        if (text == null || out.containsKey(xattr)) {
            return;
        }
        try {
            byte[] value = PosixAcls.toXattr(text, isDefault);
            if (value != null) {
                out.put(xattr, value);
            }
        } catch (IllegalArgumentException ex) {
            throw new EntryException(e.getName(), "has a " + record + " record that cannot be kept: " + ex.getMessage());
        }
    }

    /** An xattr name as kept: not empty, no NUL (listxattr separates names by NUL: one would read as two). */
    private static String xattrName(TarArchiveEntry e, String name) throws EntryException {
        if (name.isEmpty() || name.indexOf('\0') >= 0) {
            throw new EntryException(e.getName(), "has an xattr with an empty name or a NUL byte in its name");
        }
        return name;
    }

    /**
     * A LIBARCHIVE.xattr name as libarchive's url_encode wrote it: only bytes outside 33..126, '%'
     * and '=' are %XX escapes, so '+' is itself (URLDecoder made it a space), and the bytes must be
     * UTF-8 (URLDecoder replaced what is not).
     */
    static String libarchiveName(TarArchiveEntry e, String encoded) throws EntryException {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < encoded.length(); i++) {
            char c = encoded.charAt(i);
            if (c == '%' && i + 2 < encoded.length() && Character.digit(encoded.charAt(i + 1), 16) >= 0
                    && Character.digit(encoded.charAt(i + 2), 16) >= 0) {
                bytes.write(Character.digit(encoded.charAt(i + 1), 16) * 16 + Character.digit(encoded.charAt(i + 2), 16));
                i += 2;
            } else {
                byte[] b = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
                bytes.write(b, 0, b.length);
            }
        }
        byte[] raw = bytes.toByteArray();
        try {
            return TarNameBytes.strictUtf8(raw, raw.length);
        } catch (java.nio.charset.CharacterCodingException notUtf8) {
            throw new EntryException(e.getName(), "has an xattr whose name is not UTF-8 (LIBARCHIVE.xattr." + encoded + ")");
        }
    }

    private Map<String, byte[]> xattrs(TarArchiveEntry e, byte[] headers) throws EntryException {
        Map<String, String> pax = e.getExtraPaxHeaders();
        if (pax.isEmpty()) {
            return Map.of();
        }
        Map<String, byte[]> out = new TreeMap<>();
        for (Map.Entry<String, String> h : pax.entrySet()) {
            String key = h.getKey();
            if ((key.startsWith(SCHILY_XATTR) || key.startsWith(LIBARCHIVE_XATTR)) && key.indexOf('\uFFFD') >= 0) {
                // The tar library decodes PAX keywords as UTF-8, replacing what is not: the name would change.
                throw new EntryException(e.getName(), "has an xattr whose name is not UTF-8 (" + key + ")");
            }
            if (key.startsWith(SCHILY_XATTR)) {
                byte[] raw = PaxRecords.rawValue(headers, key);
                out.put(xattrName(e, key.substring(SCHILY_XATTR.length())), raw != null ? raw : h.getValue().getBytes(StandardCharsets.UTF_8));
            } else if (key.startsWith(LIBARCHIVE_XATTR)) {
                // Keys sort LIBARCHIVE before SCHILY: bsdtar writes both, and SCHILY's (raw) value wins.
                String name = xattrName(e, libarchiveName(e, key.substring(LIBARCHIVE_XATTR.length())));
                try {
                    out.put(name, Base64.getDecoder().decode(h.getValue().trim()));
                } catch (IllegalArgumentException ex) {
                    throw new EntryException(e.getName(), "has a LIBARCHIVE.xattr." + name + " value that is not base64");
                }
            }
        }
        // ACLs in text form (tar --acls); an ACL also stored as a raw xattr record is taken as that.
        acl(e, pax, PosixAcls.ACCESS_RECORD, PosixAcls.ACCESS_XATTR, false, out);
        acl(e, pax, PosixAcls.DEFAULT_RECORD, PosixAcls.DEFAULT_XATTR, true, out);
        return out;
    }
}
