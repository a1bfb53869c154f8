package io.strata.core.blob;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import io.strata.core.os.OpenFile;
import java.util.Optional;

/** One opened data blob: the compressed chunks of one layer, addressed by byte offset. */
public interface Blob extends Closeable {
    String id();

    /**
     * The blob as error messages name it: its id, and where its bytes come from when that is not
     * obvious (a registry and repository).
     */
    default String describe() {
        return id();
    }

    /** Size of the blob in bytes. */
    long size() throws IOException;

    /** Fills {@code dst} from its position to its limit with the blob's bytes at {@code position}. */
    void readFully(ByteBuffer dst, long position) throws IOException;

    /**
     * The local file holding the blob, when there is one: transports then move stored (uncompressed)
     * chunks with {@code transferTo} (sendfile) or positional reads instead of copying. A blob may
     * gain its file later (a remote blob whose last chunk has arrived in the cache); once present it
     * stays, and asking again allocates nothing.
     */
    Optional<OpenFile> localFile();

    /**
     * The bytes {@code failed} (its remaining bytes, read from {@code position}) failed to decompress
     * or did not match their chunk's digest (the chunk store calls this before it fails the read). A
     * blob that keeps fetched bytes (a persistent cache of a remote blob) drops its copy if it holds
     * those very bytes, so that the next read fetches them again instead of failing forever on a
     * poisoned copy; a copy holding other bytes (the failed ones were fetched and not kept) stays. A
     * local file has nothing to drop.
     *
     * @return whether reading the range again may give other bytes (the chunk store then tries once
     *     more before it fails the read)
     */
    default boolean discard(long position, java.nio.ByteBuffer failed) throws IOException {
        return false;
    }
}
