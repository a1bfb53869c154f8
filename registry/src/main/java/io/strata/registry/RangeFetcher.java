package io.strata.registry;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Random access to one blob in a registry (or anywhere else that serves byte ranges). The registry
 * implementation sends one {@code Range: bytes=FIRST-LAST} request per call, checks the 206 answer
 * and its {@code Content-Range}, retries transient failures within a per-read deadline, follows
 * redirects to object storage (never sending {@code Authorization} there) and remembers the
 * redirected URL for the next read. Safe for concurrent use.
 */
public interface RangeFetcher {
    /** The blob's size in bytes. */
    long size() throws IOException;

    /**
     * Fills {@code dst} from its position to its limit with the blob's bytes at {@code position}
     * (one request for {@code dst.remaining()} bytes), leaving its position at the limit. On failure
     * the buffer's position is unchanged and its content between position and limit undefined.
     */
    void fetch(long position, ByteBuffer dst) throws IOException;

    /** For logs: where the bytes come from (registry, repository, digest). */
    String describe();
}
