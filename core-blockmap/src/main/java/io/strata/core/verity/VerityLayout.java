package io.strata.core.verity;

/**
 * The two dm-verity hash-tree layouts Strata writes after an exported device. Both put the tree
 * right after the data, top level first, in 4 KiB hash blocks of sha256 digests, and no salt.
 */
public enum VerityLayout {
    /**
     * Nydus's ({@code nydus-utils/src/verity.rs}): unused digest slots hold the sha256 of a zero
     * block; a one-block device has no tree and its root is that block's digest.
     */
    NYDUS,
    /**
     * cryptsetup's ({@code veritysetup format --no-superblock --salt=-}, format 1): unused slots
     * are zero bytes; what {@code veritysetup verify} checks.
     */
    VERITYSETUP
}
