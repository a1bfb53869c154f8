package io.strata.core.device;

/** Receives a range's allocation map in order: runs of data, and runs that read as zeros (holes). */
@FunctionalInterface
public interface AllocationSink {
    /** One run; return false to stop early (a caller that wants only the first run, say). */
    boolean run(long length, boolean hole);
}
