package io.strata.builder.source;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A tar file (plain, gzip or zstd) as one layer. Its whiteout entries stay in overlayfs's format
 * ({@link WhiteoutMode#OVERLAY}): a single layer has nothing below it to hide, and in that form the
 * image can still be stacked as a lower layer.
 */
public final class TarSource implements ImageSource {
    private final Path file;

    public TarSource(Path file) {
        this.file = file;
    }

    @Override
    public String describe() {
        return file.toString();
    }

    @Override
    public void addTo(BuildContext ctx) throws IOException {
        ctx.addTotal(Files.size(file));
        try (InputStream raw = new CountingInputStream(Files.newInputStream(file), ctx::addDone);
             InputStream tar = Decompression.open(raw, file.toString())) {
            new TarLayerReader(ctx, 0, WhiteoutMode.OVERLAY, file.toString()).read(tar);
        }
        ctx.pipeline().endLayer();
    }
}
