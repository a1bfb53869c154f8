package io.strata.builder.source;

/** What OCI whiteout entries ({@code .wh.NAME}, {@code .wh..wh..opq}) in a tar layer become. */
enum WhiteoutMode {
    /**
     * Applied while merging layers: the named entry, or all of a directory's entries from lower layers,
     * disappear, as a container runtime shows the image.
     */
    APPLY,
    /**
     * Kept in overlayfs's format, for a single layer meant to be stacked: a whiteout becomes a
     * character device 0:0 and an opaque directory gets {@code trusted.overlay.opaque=y}.
     */
    OVERLAY
}
