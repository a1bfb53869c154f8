package io.strata.core.image;

/** Chunk compression algorithm, as stored in a blob table entry (Nydus {@code compress::Algorithm}). */
public enum Compression {
    NONE(0, 0x1),
    LZ4_BLOCK(1, 0x2),
    GZIP(2, 0x40),
    ZSTD(3, 0x80);

    /** Value in the blob table's {@code compression} field. */
    public final int code;
    /** Bit in the RAFS superblock extension's flags. */
    public final long superFlag;

    Compression(int code, long superFlag) {
        this.code = code;
        this.superFlag = superFlag;
    }

    /** Returns null for an unknown code; the caller reports it with the file and field. */
    public static Compression ofCode(int code) {
        for (Compression c : values()) {
            if (c.code == code) {
                return c;
            }
        }
        return null;
    }

    public String cliName() {
        switch (this) {
            case LZ4_BLOCK:
                return "lz4";
            case ZSTD:
                return "zstd";
            case GZIP:
                return "gzip";
            default:
                return "none";
        }
    }
}
