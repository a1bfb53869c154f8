package io.strata.core.metrics;

import java.util.Locale;

/**
 * What a client asked a transport for, as the metrics name it: NBD commands and virtio-blk request
 * types map onto these ({@code GET_ID} is virtio-blk's, {@code CACHE} and {@code BLOCK_STATUS} NBD's).
 */
public enum RequestType {
    READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, CACHE, BLOCK_STATUS, GET_ID, OTHER;

    private final String label = name().toLowerCase(Locale.ROOT);

    /** The value of the {@code type} label. */
    public String label() {
        return label;
    }
}
