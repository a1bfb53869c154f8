package io.strata.vhost;

import java.io.IOException;
import java.nio.file.Path;

/**
 * For tests outside this package: a vhost-user front-end ({@link TestFrontEnd}: memfd guest memory,
 * one split queue) that connects to {@code socket} and submits one 4 KiB read.
 */
public final class OneVhostRead implements AutoCloseable {
    private final TestFrontEnd frontEnd;

    /** Connects, sets the queue up and submits a read of the 4 KiB at {@code offset} (a multiple of 512). */
    public OneVhostRead(Path socket, long offset) throws IOException {
        frontEnd = new TestFrontEnd(socket);
        frontEnd.setUp(true);
        frontEnd.submit(frontEnd.request(VirtioBlk.T_IN, offset / 512, 4096));
    }

    @Override
    public void close() throws IOException {
        frontEnd.close();
    }
}
