package io.strata.registry.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.testing.TestDevices;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The readiness map on disk: a map that is torn or describes something else is detected and reset,
 * and the chunks are fetched again; the bytes served are right either way.
 */
class CachedBlobFileTest {
    private static final int CHUNK = 64 << 10;

    @TempDir
    Path tmp;

    /** Fills a cache, damages its map with {@code damage}, then reads through a new source. */
    private void damagedMapIsResetAndRefetched(String name, Consumer<Path> damage) throws IOException {
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve(name), List.of(
                SyntheticImage.uniformBlob(new Random(1), 10, CHUNK, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        Path cache = tmp.resolve(name + "-cache");
        FileBlobStore store = new FileBlobStore(w.blobDir());
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), new RemoteBlobSource(new BlobCacheDirectory(cache,
                BlobCacheDirectory.UNBOUNDED), store, "store"), FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev));
        }
        Path map = onlyMap(cache);
        damage.accept(map);

        store.clearRequests();
        RemoteBlobSource again = new RemoteBlobSource(new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED), store, "store");
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), again, FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev), name);
        }
        assertEquals(w.chunks().get(0).size(), again.counters().misses(), name + ": nothing was trusted from the damaged map");
        long chunkBytes = w.chunks().get(0).stream().mapToLong(ChunkInfo::compressedSize).sum();
        assertEquals(chunkBytes, store.bytesServed(), name + ": every chunk fetched again");
        // The reset map is whole again: a third source with the store down reads everything.
        store.failing(true);
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), new RemoteBlobSource(new BlobCacheDirectory(cache,
                BlobCacheDirectory.UNBOUNDED), store, "store"), FlatDeviceOptions.defaults())) {
            assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev), name);
        }
    }

    private static Path onlyMap(Path cache) throws IOException {
        try (Stream<Path> s = Files.list(cache)) {
            List<Path> maps = s.filter(p -> p.toString().endsWith(".map")).toList();
            assertEquals(1, maps.size(), maps.toString());
            return maps.get(0);
        }
    }

    private static void edit(Path map, Consumer<ByteBuffer> change, boolean fixCrc) {
        try (FileChannel ch = FileChannel.open(map, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(CachedBlobFile.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(h, 0);
            change.accept(h);
            if (fixCrc) {
                CRC32C crc = new CRC32C();
                crc.update(h.array(), CachedBlobFile.CRC_FROM, CachedBlobFile.CRC_TO - CachedBlobFile.CRC_FROM);
                h.putInt(CachedBlobFile.CRC_OFF, (int) crc.getValue());
            }
            h.clear();
            ch.write(h, 0);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aTruncatedMapIsReset() throws IOException {
        damagedMapIsResetAndRefetched("truncated", map -> {
            try (FileChannel ch = FileChannel.open(map, StandardOpenOption.WRITE)) {
                ch.truncate(1000);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
    }

    @Test
    void aMapWithoutItsBitsIsReset() throws IOException {
        damagedMapIsResetAndRefetched("nobits", map -> {
            try (FileChannel ch = FileChannel.open(map, StandardOpenOption.WRITE)) {
                ch.truncate(CachedBlobFile.HEADER_SIZE);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
    }

    @Test
    void aMapWithTheWrongMagicIsReset() throws IOException {
        damagedMapIsResetAndRefetched("magic", map -> edit(map, h -> h.put(0, (byte) 'X'), true));
    }

    @Test
    void aTornHeaderIsReset() throws IOException {
        // A field changed without its CRC: what a write cut short leaves.
        damagedMapIsResetAndRefetched("torn", map -> edit(map, h -> h.put(CachedBlobFile.ID_OFF + 3, (byte) 0), false));
    }

    @Test
    void aMapOfAnotherBlobIsReset() throws IOException {
        damagedMapIsResetAndRefetched("other-id", map -> edit(map, h -> {
            byte c = h.get(CachedBlobFile.ID_OFF);
            h.put(CachedBlobFile.ID_OFF, (byte) (c == 'a' ? 'b' : 'a'));
        }, true));
    }

    @Test
    void aMapWhoseBlobSizeCannotHoldTheChunksIsReset() throws IOException {
        damagedMapIsResetAndRefetched("size", map -> edit(map, h -> h.putLong(CachedBlobFile.BLOB_SIZE_OFF, 4096), true));
    }

    @Test
    void aMapOfAnotherLayoutIsReset() throws IOException {
        damagedMapIsResetAndRefetched("layout", map -> edit(map, h -> h.put(CachedBlobFile.LAYOUT_OFF + 31,
                (byte) ~h.get(CachedBlobFile.LAYOUT_OFF + 31)), true));
    }

    @Test
    void aDeletedDataFileDropsTheBitsThatPointIntoIt() throws IOException {
        damagedMapIsResetAndRefetched("no-data", map -> {
            try (Stream<Path> s = Files.list(map.getParent())) {
                for (Path p : s.filter(p -> p.toString().endsWith(".data")).toList()) {
                    Files.delete(p);
                }
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
    }

    @Test
    void hostileBlobIdsCannotNameCacheFiles() throws IOException {
        BlobCacheDirectory dir = new BlobCacheDirectory(tmp.resolve("cache"), BlobCacheDirectory.UNBOUNDED);
        for (String bad : new String[] {"../x", "a/b", ".hidden", "a.b", "", "x".repeat(201)}) {
            IOException e = assertThrows(IOException.class, () -> dir.open(bad, io.strata.core.blob.ChunkRanges.empty(), () -> 1));
            assertTrue(e.getMessage().contains("cannot name a cache file"), e.getMessage());
        }
    }
}
