package io.strata.core.blob;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Optional;

/** One opened data blob: the compressed chunks of one layer, addressed by byte offset. */
public interface Blob extends Closeable {
    String id();

    /** Size of the blob in bytes. */
    long size() throws IOException;

    /** Fills {@code dst} from its position to its limit with the blob's bytes at {@code position}. */
    void readFully(ByteBuffer dst, long position) throws IOException;

    /**
     * The local file holding the blob, when there is one: transports then move stored (uncompressed)
     * chunks with {@code transferTo} (sendfile) or positional reads instead of copying.
     */
    Optional<FileChannel> fileChannel();
}
