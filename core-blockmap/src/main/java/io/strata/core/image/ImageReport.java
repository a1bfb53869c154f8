package io.strata.core.image;

import io.strata.core.chunk.ChunkTable;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code strata inspect} shows: the superblock, the blobs with their place on the flat device,
 * and chunk statistics, as an ordered tree of plain values (rendered as text or JSON by the CLI).
 */
public final class ImageReport {
    private ImageReport() {
    }

    public static Map<String, Object> of(RafsImage image) throws IOException {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("bootstrap", image.path().toString());
        root.put("bootstrap_bytes", image.fileSize());
        ErofsSuperblock sb = image.superblock();
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("magic", "0xe0f5e1e2");
        s.put("block_size", sb.blockSize());
        s.put("feature_compat", hex(sb.featureCompat()));
        s.put("feature_incompat", hex(sb.featureIncompat()));
        s.put("root_nid", sb.rootNid());
        s.put("inodes", sb.inos());
        s.put("blocks", sb.blocks());
        s.put("meta_blkaddr", sb.metaBlkaddr());
        s.put("extra_devices", sb.extraDevices());
        s.put("device_table_offset", sb.deviceTableOffset());
        s.put("build_time", sb.buildTime());
        root.put("superblock", s);

        RafsSuperblockExt ext = image.ext();
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("flags", hex(ext.flags()));
        e.put("flag_names", flagNames(ext.flags()));
        e.put("chunk_size", ext.chunkSize());
        e.put("blob_table_offset", ext.blobTableOffset());
        e.put("chunk_table_offset", ext.chunkTableOffset());
        e.put("chunk_table_entries", ext.chunkTableSize() / ChunkInfo.SIZE);
        root.put("rafs", e);

        root.put("flat_device_blocks", image.flatDeviceBlocks());
        root.put("flat_device_bytes", image.flatDeviceBlocks() * RafsImage.BLOCK_SIZE);

        List<Map<String, Object>> blobs = new ArrayList<>();
        long references = 0;
        long unique = 0;
        long compressed = 0;
        long uncompressed = 0;
        ChunkTable[] tables = ChunkTable.buildAll(image);
        for (int i = 0; i < image.blobs().size(); i++) {
            BlobTableEntry b = image.blobs().get(i);
            ChunkTable t = tables[i];
            long refs = t.references();
            long cBytes = 0;
            long uBytes = 0;
            for (int c = 0; c < t.size(); c++) {
                cBytes += t.compressedSize(c);
                uBytes += t.uncompressedSize(c);
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("index", i);
            m.put("id", b.blobId());
            if (!image.devices().isEmpty()) {
                DeviceSlot d = image.devices().get(i);
                m.put("mapped_blkaddr", d.mappedBlkaddr());
                m.put("mapped_offset", d.mappedBlkaddr() * RafsImage.BLOCK_SIZE);
                m.put("blocks", d.blocks());
            }
            m.put("compression", b.compression().cliName());
            m.put("digest", b.digest().cliName());
            m.put("chunk_size", b.chunkSize());
            m.put("chunk_count", b.chunkCount());
            m.put("chunk_references", refs);
            m.put("unique_chunks", t.size());
            m.put("compressed_size", b.compressedSize());
            m.put("uncompressed_size", b.uncompressedSize());
            m.put("chunk_bytes_compressed", cBytes);
            m.put("chunk_bytes_uncompressed", uBytes);
            blobs.add(m);
            references += refs;
            unique += t.size();
            compressed += cBytes;
            uncompressed += uBytes;
        }
        root.put("blobs", blobs);
        Map<String, Object> chunks = new LinkedHashMap<>();
        chunks.put("references", references);
        chunks.put("unique", unique);
        chunks.put("deduplicated", references - unique);
        chunks.put("bytes_compressed", compressed);
        chunks.put("bytes_uncompressed", uncompressed);
        chunks.put("compression_ratio", uncompressed == 0 ? 0.0 : Math.round(1000.0 * compressed / uncompressed) / 1000.0);
        root.put("chunks", chunks);
        root.put("prefetch", prefetch(image));
        return root;
    }

    /** The prefetch table: its entries (nid, a path reaching it) and the chunks they plan. */
    private static Map<String, Object> prefetch(RafsImage image) throws IOException {
        PrefetchPlan plan = PrefetchPlan.of(image);
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("table_offset", image.ext().prefetchTableOffset());
        p.put("table_size", image.ext().prefetchTableSize());
        p.put("entries", plan.entries().size());
        List<Map<String, Object>> inodes = new ArrayList<>();
        for (PrefetchPlan.Entry e : plan.entries()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("nid", e.nid());
            m.put("path", e.path() == null ? "(not reachable from the root)" : e.path());
            m.put("type", e.directory() ? "directory" : "file");
            inodes.add(m);
        }
        p.put("inodes", inodes);
        p.put("chunks", plan.chunks().size());
        p.put("bytes_compressed", plan.compressedBytes());
        return p;
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    private static List<String> flagNames(long flags) {
        List<String> names = new ArrayList<>();
        for (Compression c : Compression.values()) {
            if ((flags & c.superFlag) != 0) {
                names.add("compress:" + c.cliName());
            }
        }
        for (DigestAlgorithm d : DigestAlgorithm.values()) {
            if ((flags & d.superFlag) != 0) {
                names.add("digest:" + d.cliName());
            }
        }
        if ((flags & RafsSuperblockExt.FLAG_EXPLICIT_UID_GID) != 0) {
            names.add("explicit_uid_gid");
        }
        if ((flags & RafsSuperblockExt.FLAG_HAS_XATTR) != 0) {
            names.add("has_xattr");
        }
        if ((flags & RafsSuperblockExt.FLAG_INLINED_CHUNK_DIGEST) != 0) {
            names.add("inlined_chunk_digest");
        }
        if ((flags & RafsSuperblockExt.FLAG_TARFS) != 0) {
            names.add("tarfs");
        }
        return names;
    }
}
