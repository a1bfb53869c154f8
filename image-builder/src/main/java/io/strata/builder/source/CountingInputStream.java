package io.strata.builder.source;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.function.LongConsumer;

/** Reports the bytes read from a stream (progress over a source's compressed bytes). */
final class CountingInputStream extends FilterInputStream {
    private final LongConsumer onRead;

    CountingInputStream(InputStream in, LongConsumer onRead) {
        super(in);
        this.onRead = onRead;
    }

    @Override
    public int read() throws IOException {
        int b = super.read();
        if (b >= 0) {
            onRead.accept(1);
        }
        return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        int n = super.read(b, off, len);
        if (n > 0) {
            onRead.accept(n);
        }
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        long s = super.skip(n);
        if (s > 0) {
            onRead.accept(s);
        }
        return s;
    }
}
