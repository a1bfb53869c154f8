package io.strata.core.image;

/** Chunk digest algorithm, as stored in a blob table entry (Nydus {@code digest::Algorithm}). */
public enum DigestAlgorithm {
    BLAKE3(0, 0x4),
    SHA256(1, 0x8);

    public final int code;
    public final long superFlag;

    DigestAlgorithm(int code, long superFlag) {
        this.code = code;
        this.superFlag = superFlag;
    }

    public static DigestAlgorithm ofCode(int code) {
        for (DigestAlgorithm d : values()) {
            if (d.code == code) {
                return d;
            }
        }
        return null;
    }

    public String cliName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
