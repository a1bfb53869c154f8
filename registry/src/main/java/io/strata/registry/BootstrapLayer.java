package io.strata.registry;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import java.util.zip.ZipException;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * The bootstrap layer of a Nydus image: a gzip-compressed tar holding {@code image/image.boot}
 * (nydus-snapshotter's converter; newer tools add {@code image/<blob id>.blob.meta}, which is ignored).
 *
 * <p>{@link #write} is reproducible: the same bootstrap always gives the same bytes, so pushing an
 * image twice gives the same layer digest (and the registry dedupes it). The tar entry has mtime 0,
 * uid/gid 0, no user/group names, mode 0644; the gzip header has mtime 0 and no file name
 * (the JDK's GZIPOutputStream writes both so).
 */
public final class BootstrapLayer {
    /** The largest bootstrap the core opens (RafsImage reads it into one buffer). */
    static final long MAX_BOOTSTRAP_BYTES = Integer.MAX_VALUE;
    /** The largest layer that can hold one: the bootstrap and gzip's and tar's framing (1/64 more, generously). */
    static final long MAX_LAYER_BYTES = MAX_BOOTSTRAP_BYTES + (MAX_BOOTSTRAP_BYTES >> 6);

    private BootstrapLayer() {
    }

    /** Writes {@code bootstrap} as the layer's gzip tar to {@code out}; returns the sha256 of the uncompressed tar (its diff_id). */
    public static String write(Path bootstrap, OutputStream out) throws IOException {
        java.security.MessageDigest tarDigest = Digests.sha256();
        GZIPOutputStream gz = new GZIPOutputStream(out, 1 << 16);
        OutputStream digesting = new java.security.DigestOutputStream(gz, tarDigest);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(digesting);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        TarArchiveEntry dir = new TarArchiveEntry("image/");
        fixed(dir, 040755);
        tar.putArchiveEntry(dir);
        tar.closeArchiveEntry();
        TarArchiveEntry e = new TarArchiveEntry(MediaTypes.BOOTSTRAP_ENTRY);
        fixed(e, 0100644);
        e.setSize(Files.size(bootstrap));
        tar.putArchiveEntry(e);
        Files.copy(bootstrap, tar);
        tar.closeArchiveEntry();
        tar.finish();
        digesting.flush();
        gz.finish();
        gz.flush();
        return "sha256:" + java.util.HexFormat.of().formatHex(tarDigest.digest());
    }

    private static void fixed(TarArchiveEntry e, int mode) {
        e.setMode(mode);
        e.setModTime(0);
        e.setUserId(0);
        e.setGroupId(0);
        e.setUserName("");
        e.setGroupName("");
    }

    /**
     * Unpacks {@code image/image.boot} from the layer file to {@code out}; a layer that is not a gzip
     * tar, or has no bootstrap in it, is a one-line {@link RegistryException} naming {@code what}.
     */
    public static void extract(Path layer, Path out, String what) throws IOException {
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(layer));
             GZIPInputStream gz = openGzip(raw, what);
             TarArchiveInputStream tar = new TarArchiveInputStream(gz)) {
            TarArchiveEntry e;
            while ((e = nextEntry(tar, what)) != null) {
                String name = e.getName();
                while (name.startsWith("./")) {
                    name = name.substring(2);
                }
                if (name.equals(MediaTypes.BOOTSTRAP_ENTRY) && e.isFile()) {
                    // The tar header gives the size: refuse a bootstrap the core could not open before
                    // unpacking it (a small layer of zeros can unpack to terabytes).
                    if (e.getSize() > MAX_BOOTSTRAP_BYTES) {
                        throw new RegistryException(what + ": its " + MediaTypes.BOOTSTRAP_ENTRY + " is " + e.getSize()
                                + " bytes; bootstraps over 2 GiB are not supported");
                    }
                    Files.copy(tar, out, StandardCopyOption.REPLACE_EXISTING);
                    return;
                }
            }
        } catch (ZipException | java.io.EOFException e) {
            throw new RegistryException(what + " is not a gzip tar (" + e.getMessage() + ")");
        }
        throw new RegistryException(what + " holds no " + MediaTypes.BOOTSTRAP_ENTRY);
    }

    private static GZIPInputStream openGzip(InputStream in, String what) throws IOException {
        try {
            return new GZIPInputStream(in, 1 << 16);
        } catch (ZipException | java.io.EOFException e) {
            throw new RegistryException(what + " is not a gzip tar (not gzip)");
        }
    }

    private static TarArchiveEntry nextEntry(TarArchiveInputStream tar, String what) throws IOException {
        try {
            return tar.getNextEntry();
        } catch (IllegalArgumentException e) {
            throw new RegistryException(what + " is not a gzip tar (bad tar header)");
        } catch (IOException e) {
            if (e instanceof ZipException || e instanceof java.io.EOFException) {
                throw e;
            }
            throw new RegistryException(what + " is not a gzip tar (" + e.getMessage() + ")");
        }
    }
}
