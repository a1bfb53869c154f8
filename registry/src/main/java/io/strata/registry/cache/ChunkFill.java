package io.strata.registry.cache;

import java.io.IOException;
import java.io.InterruptedIOException;

/**
 * One fetch in progress in this process: the chunks it claimed, and how it ended. Reads that miss a
 * claimed chunk wait for it instead of fetching the chunk again (single flight), and share its
 * failure: when the fetcher gave up, every read waiting on it fails the same way.
 */
final class ChunkFill {
    final int[] chunks;
    int count;
    /** Where the request ends in the blob (the furthest end of its chunks). */
    long stop;
    private boolean done;
    private IOException failure;

    ChunkFill(int capacity) {
        chunks = new int[capacity];
    }

    void add(int chunk) {
        chunks[count++] = chunk;
    }

    synchronized void finish(IOException failure) {
        this.failure = failure;
        this.done = true;
        notifyAll();
    }

    /** Waits for the fetch (the fetcher bounds its own time); throws its failure. */
    synchronized void await(String what) throws IOException {
        while (!done) {
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted waiting for the " + what);
            }
        }
        if (failure != null) {
            throw new IOException("the " + what + " failed: " + failure.getMessage(), failure);
        }
    }
}
