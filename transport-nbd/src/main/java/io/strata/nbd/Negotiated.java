package io.strata.nbd;

/** What the handshake settled: the export, and whether structured replies and base:allocation are on. */
record Negotiated(Export export, boolean structuredReplies, boolean allocationContext) {
    /** The id Strata gives the base:allocation context (any non-zero u32 the server picks). */
    static final int ALLOCATION_CONTEXT_ID = 1;
}
