package io.strata.builder;

import java.nio.file.Path;
import java.util.List;

/**
 * What a build produced.
 *
 * @param bootstrap the bootstrap file
 * @param blobIds the data blobs' ids, in blob-table order
 * @param inodes inodes in the image
 * @param chunks file chunks read; {@code holes} of them were all zeros, {@code deduplicated} were
 *     stored before, {@code stored} were written to blobs
 * @param bytesIn file data read; {@code bytesStored} chunk bytes written to blobs
 * @param bootstrapBytes size of the bootstrap; {@code flatDeviceBytes} size of the composed device
 */
public record BuildResult(Path bootstrap, List<String> blobIds, int inodes, long chunks, long holes, long deduplicated,
                          long stored, long bytesIn, long bytesStored, long bootstrapBytes, long flatDeviceBytes) {
}
