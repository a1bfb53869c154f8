package io.strata.builder.data;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every chunk stored in the image, by id, and by digest for deduplication across the whole image:
 * a chunk whose digest was stored before, in any layer's blob, is referenced instead of stored again.
 * Only the committing thread adds; workers may ask {@link #contains} concurrently.
 */
public final class ChunkRegistry {
    private final List<StoredChunk> chunks = new ArrayList<>();
    private final ConcurrentHashMap<DigestKey, Integer> byDigest = new ConcurrentHashMap<>();
    private long references;

    boolean contains(DigestKey key) {
        return byDigest.containsKey(key);
    }

    int find(DigestKey key) {
        Integer id = byDigest.get(key);
        return id == null ? -1 : id;
    }

    int add(DigestKey key, StoredChunk chunk) {
        int id = chunks.size();
        chunks.add(chunk);
        byDigest.put(key, id);
        return id;
    }

    void countReference() {
        references++;
    }

    public StoredChunk get(int id) {
        return chunks.get(id);
    }

    public int size() {
        return chunks.size();
    }

    /** Non-hole chunk references committed so far (each file chunk counts once). */
    public long references() {
        return references;
    }
}
