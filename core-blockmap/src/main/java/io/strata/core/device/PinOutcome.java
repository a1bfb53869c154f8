package io.strata.core.device;

/** What {@link BlockDevice#pin} did. */
public enum PinOutcome {
    /** The range is resolved and every chunk it needs is pinned: emit it, then release it. */
    PINNED,
    /** Asked not to load, and a chunk the range needs is not cached: nothing is pinned. */
    NOT_CACHED,
    /**
     * The cache's budget for pinned chunks is spent (other requests hold them while they wait, or the
     * range is larger than half the cache): nothing is pinned; resolve the range as it is sent instead.
     */
    NO_ROOM
}
