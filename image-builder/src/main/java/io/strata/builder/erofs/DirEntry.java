package io.strata.builder.erofs;

import io.strata.builder.tree.Name;

/** One directory entry to write: name, the nid it points to, and its EROFS file type. */
record DirEntry(Name name, long nid, int fileType) {
}
