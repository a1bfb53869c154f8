package io.strata.builder.tree;

/** An entry of a source that cannot go into the image: the message starts with the entry's path. */
public final class EntryException extends Exception {
    private final String path;

    public EntryException(String path, String problem) {
        super("'" + path + "' " + problem);
        this.path = path;
    }

    public String path() {
        return path;
    }
}
