package io.strata.nbd;

/**
 * How the server treats TLS (NBD spec, "TLS support"): {@link #OFF} is the spec's NOTLS mode
 * (STARTTLS is answered NBD_REP_ERR_UNSUP); {@link #ON} its SELECTIVETLS mode with no TLS-only export
 * (a client may upgrade, or not); {@link #REQUIRE} its FORCEDTLS mode (every option but STARTTLS and
 * ABORT is refused with NBD_REP_ERR_TLS_REQD until TLS runs).
 */
public enum TlsMode {
    OFF, ON, REQUIRE
}
