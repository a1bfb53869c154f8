package io.strata.builder.source;

import java.io.IOException;

/** Where an image's files come from: a directory, a tar, or an OCI image layout. */
public interface ImageSource {
    /** Adds the source's layers to the context's tree and pipeline, ending each layer. */
    void addTo(BuildContext context) throws IOException;

    /** How the source names itself in messages. */
    String describe();
}
