package io.strata.builder.source;

import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * Keeps a copy of the bytes read while recording is on. The tar reader records while it reads an
 * entry's headers, so that PAX values can be taken from the raw bytes: commons-compress decodes
 * every PAX value as UTF-8, which mangles binary xattr values such as {@code security.capability}.
 * It also bounds them: commons-compress reads a GNU long name or a PAX record whole into memory,
 * whatever size its header claims, so a 4.5 MB tar.gz declaring a 1 GiB long name took 5.6 GB.
 * The reader drains an entry's data before it records the next headers, so everything recorded
 * is headers, and more than {@link #LIMIT} of them fails the read.
 */
final class RecordingInputStream extends FilterInputStream {
    /** Headers of one entry are small (PAX xattrs of 64 KiB at most each); past this the read fails. */
    private static final int LIMIT = 16 << 20;
    private ByteArrayOutputStream recording;

    RecordingInputStream(InputStream in) {
        super(in);
    }

    void start() {
        recording = new ByteArrayOutputStream();
    }

    /** The bytes read since {@link #start}. */
    byte[] stop() {
        byte[] out = recording == null ? new byte[0] : recording.toByteArray();
        recording = null;
        return out;
    }

    @Override
    public int read() throws IOException {
        int b = super.read();
        if (b >= 0 && recording != null) {
            recording.write(b);
            trim();
        }
        return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        int n = super.read(b, off, len);
        if (n > 0 && recording != null) {
            recording.write(b, off, n);
            trim();
        }
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        // Skipped bytes are read, so that a recording stays contiguous.
        byte[] buf = new byte[8192];
        long done = 0;
        while (done < n) {
            int r = read(buf, 0, (int) Math.min(buf.length, n - done));
            if (r < 0) {
                break;
            }
            done += r;
        }
        return done;
    }

    private void trim() throws IOException {
        if (recording.size() > LIMIT) {
            recording = null;
            throw new IOException("the headers of one entry (a GNU long name, PAX records) pass " + (LIMIT >> 20)
                    + " MiB: refused");
        }
    }
}
