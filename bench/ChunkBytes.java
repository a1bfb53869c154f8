import io.strata.core.chunk.ChunkTable;
import io.strata.core.image.DeviceSlot;
import io.strata.core.image.RafsImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.List;

/**
 * For bench/remote-vs-peers.sh: which parts of a RAFS image a list of flat-device ranges touches, with
 * Strata's own layout classes (the same FlatDevice extents and ChunkTable lookups the server uses).
 *
 * <pre>java -cp 'cli/target/lib/*' bench/ChunkBytes.java BOOTSTRAP RANGES</pre>
 *
 * RANGES has one "OFFSET LENGTH" (bytes) per line. Prints one line:
 * {@code chunks=N compressed_bytes=C uncompressed_bytes=U bootstrap_bytes=B total_compressed_bytes=T total_chunks=M}:
 * the distinct chunks the ranges touch and the sum of their compressed sizes, the bootstrap bytes
 * they touch (metadata), and the whole image's compressed chunk bytes and chunk count.
 */
public final class ChunkBytes {
    public static void main(String[] args) throws Exception {
        RafsImage image = RafsImage.open(Path.of(args[0]));
        ChunkTable[] tables = ChunkTable.buildAll(image);
        List<DeviceSlot> devices = image.devices();
        BitSet[] touched = new BitSet[tables.length];
        for (int b = 0; b < tables.length; b++) {
            touched[b] = new BitSet(tables[b].size());
        }
        BitSet bootstrapBlocks = new BitSet();
        long block = RafsImage.BLOCK_SIZE;
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.trim().split("\\s+");
            long start = Long.parseLong(f[0]);
            long end = start + Long.parseLong(f[1]);
            if (start < image.fileSize()) {
                bootstrapBlocks.set((int) (start / block), (int) ((Math.min(end, image.fileSize()) + block - 1) / block));
            }
            for (int b = 0; b < devices.size(); b++) {
                long extentStart = devices.get(b).mappedBlkaddr() * block;
                long extentEnd = extentStart + devices.get(b).blocks() * block;
                long pos = Math.max(start, extentStart);
                long stop = Math.min(end, extentEnd);
                while (pos < stop) {
                    long local = pos - extentStart;
                    int c = tables[b].find(local);
                    if (c < 0) {
                        long next = tables[b].nextChunkStart(local);
                        pos = next == Long.MAX_VALUE ? stop : extentStart + next;
                        continue;
                    }
                    touched[b].set(c);
                    pos = extentStart + tables[b].paddedEnd(c);
                }
            }
        }
        long chunks = 0, compressed = 0, uncompressed = 0, totalCompressed = 0, totalChunks = 0;
        for (int b = 0; b < tables.length; b++) {
            for (int c = touched[b].nextSetBit(0); c >= 0; c = touched[b].nextSetBit(c + 1)) {
                chunks++;
                compressed += tables[b].compressedSize(c);
                uncompressed += tables[b].uncompressedSize(c);
            }
            for (int c = 0; c < tables[b].size(); c++) {
                totalCompressed += tables[b].compressedSize(c);
            }
            totalChunks += tables[b].size();
        }
        long bootstrapBytes = Math.min(bootstrapBlocks.cardinality() * block, image.fileSize());
        System.out.println("chunks=" + chunks + " compressed_bytes=" + compressed + " uncompressed_bytes=" + uncompressed
                + " bootstrap_bytes=" + bootstrapBytes + " total_compressed_bytes=" + totalCompressed + " total_chunks=" + totalChunks);
    }
}
