package io.strata.builder.source;

import io.strata.builder.BuildListener;
import io.strata.builder.BuildOptions;
import io.strata.builder.data.ChunkPipeline;
import io.strata.builder.tree.FsTree;

/** What a source feeds: the tree, the chunk pipeline, and the build's progress and warnings. */
public final class BuildContext {
    private final FsTree tree;
    private final ChunkPipeline pipeline;
    private final BuildOptions options;
    private final BuildListener listener;
    private long done;
    private long total;

    public BuildContext(FsTree tree, ChunkPipeline pipeline, BuildOptions options, BuildListener listener) {
        this.tree = tree;
        this.pipeline = pipeline;
        this.options = options;
        this.listener = listener;
    }

    public FsTree tree() {
        return tree;
    }

    public ChunkPipeline pipeline() {
        return pipeline;
    }

    public BuildOptions options() {
        return options;
    }

    public void warning(String message) {
        listener.warning(message);
    }

    /** Called from any thread (a directory's total is summed on one of its own). */
    public synchronized void addTotal(long bytes) {
        total += bytes;
        listener.progress(done, total);
    }

    public synchronized void addDone(long bytes) {
        done += bytes;
        listener.progress(done, total);
    }
}
