package io.strata.builder;

/** What a build reports while it runs. */
public interface BuildListener {
    /** Input consumed so far, of the total (both in bytes; the total may grow as sources are opened). */
    void progress(long done, long total);

    /** Something the image cannot represent and the build left out. */
    void warning(String message);

    BuildListener SILENT = new BuildListener() {
        @Override
        public void progress(long done, long total) {
        }

        @Override
        public void warning(String message) {
        }
    };
}
