package io.strata.core.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The word-backed chunk-info table reads every field as {@link ChunkInfo#decode} does. */
@Timeout(30)
class ChunkInfoTableTest {
    @Test
    void everyFieldMatchesTheRecordDecoder() {
        Random random = new Random(7);
        int count = 200;
        int at = 24; // the table need not start at the buffer's start
        ByteBuffer data = ByteBuffer.allocate(at + count * ChunkInfo.SIZE + 16);
        random.nextBytes(data.array());
        data.position(5); // ignored: offsets are absolute
        ChunkInfoTable table = ChunkInfoTable.read(data, at, count);
        assertEquals(5, data.position());
        assertEquals(count, table.size());
        assertEquals(count, table.asList().size());
        for (int i = 0; i < count; i++) {
            ChunkInfo want = ChunkInfo.decode(data, at + i * ChunkInfo.SIZE);
            ChunkInfo got = table.get(i);
            assertArrayEquals(want.digest(), got.digest());
            assertEquals(want.blobIndex(), table.blobIndex(i));
            assertEquals(want.flags(), table.flags(i));
            assertEquals(want.compressedSize(), table.compressedSize(i));
            assertEquals(want.uncompressedSize(), table.uncompressedSize(i));
            assertEquals(want.compressedOffset(), table.compressedOffset(i));
            assertEquals(want.uncompressedOffset(), table.uncompressedOffset(i));
            assertEquals(want.isHole(), table.isHole(i));
            assertEquals(want.isCompressed(), table.isCompressed(i));
            assertEquals(Arrays.asList(want.fileOffset(), want.index(), want.crc32()),
                    Arrays.asList(got.fileOffset(), got.index(), got.crc32()));
            byte[] digest = new byte[ChunkInfo.DIGEST_SIZE + 3];
            table.digestInto(i, digest, 3);
            assertArrayEquals(want.digest(), Arrays.copyOfRange(digest, 3, digest.length));
            assertArrayEquals(want.digest(), table.asList().get(i).digest());
        }
        assertThrows(IndexOutOfBoundsException.class, () -> table.asList().get(count));
    }

    @Test
    void sameDigestComparesAllThirtyTwoBytes() {
        ByteBuffer data = ByteBuffer.allocate(3 * ChunkInfo.SIZE);
        for (int e = 0; e < 3; e++) {
            for (int k = 0; k < ChunkInfo.DIGEST_SIZE; k++) {
                data.put(e * ChunkInfo.SIZE + k, (byte) k);
            }
        }
        data.put(2 * ChunkInfo.SIZE + ChunkInfo.DIGEST_SIZE - 1, (byte) 99); // entry 2 differs in its last byte
        ChunkInfoTable table = ChunkInfoTable.read(data, 0, 3);
        assertTrue(table.sameDigest(0, 1));
        assertFalse(table.sameDigest(0, 2));
    }
}
