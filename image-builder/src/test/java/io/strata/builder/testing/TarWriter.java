package io.strata.builder.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/** Writes small tars in memory for tests (PAX headers for long names and xattrs). */
public final class TarWriter {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final TarArchiveOutputStream out;

    public TarWriter() {
        out = new TarArchiveOutputStream(bytes, StandardCharsets.UTF_8.name());
        out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        out.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    }

    public TarWriter file(String name, byte[] data) throws IOException {
        return file(name, data, Map.of());
    }

    public TarWriter file(String name, byte[] data, Map<String, String> paxHeaders) throws IOException {
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setSize(data.length);
        e.setMode(0100644);
        e.setModTime(1_600_000_000_000L);
        paxHeaders.forEach(e::addPaxHeader);
        out.putArchiveEntry(e);
        out.write(data);
        out.closeArchiveEntry();
        return this;
    }

    public TarWriter file(String name, String text) throws IOException {
        return file(name, text.getBytes(StandardCharsets.UTF_8));
    }

    public TarWriter dir(String name) throws IOException {
        return dir(name, Map.of());
    }

    public TarWriter dir(String name, Map<String, String> paxHeaders) throws IOException {
        TarArchiveEntry e = new TarArchiveEntry(name.endsWith("/") ? name : name + "/");
        paxHeaders.forEach(e::addPaxHeader);
        e.setMode(040755);
        e.setModTime(1_600_000_000_000L);
        out.putArchiveEntry(e);
        out.closeArchiveEntry();
        return this;
    }

    public TarWriter hardLink(String name, String target) throws IOException {
        TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_LINK);
        e.setLinkName(target);
        e.setModTime(1_600_000_000_000L);
        out.putArchiveEntry(e);
        out.closeArchiveEntry();
        return this;
    }

    public byte[] bytes() throws IOException {
        out.finish();
        out.close();
        return bytes.toByteArray();
    }
}
