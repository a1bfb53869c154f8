package io.strata.cli;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * What one export of the daemon serves, as the control API's {@code POST /api/v1/exports} body and
 * each entry of the {@code --config} file give it (JSON, unknown fields refused):
 * <pre>
 * {"kind": "nbd", "name": "web", "source": "/images/web/bootstrap", "blob_dir": "/images/web/blobs"}
 * {"kind": "nbd", "name": "disk", "raw": "/images/disk.img"}
 * {"kind": "nbd", "name": "app", "source": "registry.example:5000/app:1"}
 * {"kind": "vhost-user", "socket": "/run/strata/vm1.sock", "source": "/images/vm/bootstrap", "queues": 4}
 * </pre>
 * {@code source} is what the serve commands take as BOOTSTRAP (a bootstrap path or an image
 * reference), {@code raw} what they take as {@code --raw IMAGE}; exactly one is given. Paths must be
 * absolute: the daemon's working directory is not the caller's. A vhost-user export is named by its
 * socket path.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
record ExportSpec(
        @JsonProperty("kind") String kind,
        @JsonProperty("name") String name,
        @JsonProperty("source") String source,
        @JsonProperty("raw") String raw,
        @JsonProperty("blob_dir") String blobDir,
        @JsonProperty("socket") String socket,
        @JsonProperty("queues") Integer queues) {

    static final String NBD = "nbd";
    static final String VHOST_USER = "vhost-user";

    /**
     * The JSON reader of exports, for the control API's bodies and the --config file alike: unknown
     * fields and trailing tokens refused, and so are "queues": 2.5 (not 2) and a key given twice
     * ({"name":"a","name":"b"} is not b).
     */
    static com.fasterxml.jackson.databind.ObjectMapper strictJson() {
        return new com.fasterxml.jackson.databind.ObjectMapper()
                .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .disable(com.fasterxml.jackson.databind.DeserializationFeature.ACCEPT_FLOAT_AS_INT)
                .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    }

    /** The export's name: the NBD export name, or the vhost-user socket path. */
    String exportName() {
        return VHOST_USER.equals(kind) ? socket : name;
    }

    /** Checks the fields and returns the spec with its defaults filled in (queues 16 for vhost-user). */
    ExportSpec validated() throws ControlException {
        if (kind == null) {
            throw ControlException.badRequest("missing field 'kind': nbd or vhost-user");
        }
        if ((source == null) == (raw == null)) {
            throw ControlException.badRequest("give 'source' (a bootstrap or an image reference) or 'raw' (a plain image file), one of them");
        }
        if (source != null && source.isBlank()) {
            throw ControlException.badRequest("'source' is empty");
        }
        if (raw != null) {
            absolute("raw", raw);
            if (blobDir != null) {
                throw ControlException.badRequest("'blob_dir' is for a bootstrap, not a raw image");
            }
        }
        if (source != null && !ImageSource.isReference(source)) {
            absolute("source", source);
        }
        if (blobDir != null) {
            absolute("blob_dir", blobDir);
        }
        switch (kind) {
            case NBD -> {
                if (name == null || name.isEmpty()) {
                    throw ControlException.badRequest("an nbd export needs a non-empty 'name'");
                }
                String why = io.strata.nbd.Export.nameProblem(name);
                if (why != null) {
                    throw ControlException.badRequest("'name' " + why);
                }
                if (socket != null || queues != null) {
                    throw ControlException.badRequest("'socket' and 'queues' are for vhost-user exports");
                }
                return this;
            }
            case VHOST_USER -> {
                if (socket == null) {
                    throw ControlException.badRequest("a vhost-user export needs 'socket' (the path QEMU connects to)");
                }
                absolute("socket", socket);
                // One spelling per path ("/run//a.sock" and "/run/./a.sock" are /run/a.sock): the export's
                // name, so a second add of the same socket is refused, not bound over the first. ".." stays:
                // through a symlinked directory it is not the parent the text names.
                String path = sameSocketPath(socket);
                if (name != null && !name.equals(socket) && !name.equals(path)) {
                    throw ControlException.badRequest("a vhost-user export is named by its socket; leave 'name' out");
                }
                int q = queues == null ? 16 : queues;
                if (q < 1 || q > 255) {
                    throw ControlException.badRequest("'queues' must be 1..255, got " + q);
                }
                return new ExportSpec(kind, null, source, raw, blobDir, path, q);
            }
            default -> throw ControlException.badRequest("unknown kind '" + kind + "': nbd or vhost-user");
        }
    }

    /** {@code socket} without empty and "." components (an absolute path). */
    static String sameSocketPath(String socket) {
        StringBuilder b = new StringBuilder();
        for (String part : socket.split("/")) {
            if (!part.isEmpty() && !part.equals(".")) {
                b.append('/').append(part);
            }
        }
        return b.length() == 0 ? "/" : b.toString();
    }

    private static Path absolute(String field, String value) throws ControlException {
        Path p;
        try {
            p = Paths.get(value);
        } catch (InvalidPathException e) {
            throw ControlException.badRequest("'" + field + "' is not a path: " + e.getMessage());
        }
        if (!p.isAbsolute()) {
            throw ControlException.badRequest("'" + field + "' must be an absolute path (the daemon's directory is not yours): " + value);
        }
        return p;
    }
}
