package io.strata.cli;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The daemon's {@code --config FILE}: the exports it serves from the start and after each SIGHUP,
 * one JSON object whose {@code exports} array holds what {@code POST /api/v1/exports} takes
 * ({@link ExportSpec}):
 * <pre>
 * {"exports": [
 *   {"kind": "nbd", "name": "web", "source": "/images/web/bootstrap"},
 *   {"kind": "vhost-user", "socket": "/run/strata/vm1.sock", "raw": "/images/vm1.img", "queues": 2}
 * ]}
 * </pre>
 */
record DaemonConfig(@JsonProperty("exports") List<ExportSpec> exports) {
    private static final ObjectMapper JSON = ExportSpec.strictJson();

    /** Reads the file; an IOException names it and what is wrong. */
    static DaemonConfig read(Path file) throws IOException {
        byte[] bytes;
        String problem = io.strata.core.os.InputFiles.problem(file);
        if (problem != null) {
            throw new IOException("config " + file + " " + problem);
        }
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IOException("config " + file + ": cannot read it (" + Main.describe(e) + ")");
        }
        DaemonConfig c;
        try {
            c = JSON.readValue(bytes, DaemonConfig.class);
        } catch (JsonProcessingException e) {
            throw new IOException("config " + file + ": not a config (" + problem(e) + ")");
        }
        if (c == null || c.exports() == null) {
            throw new IOException("config " + file + ": no \"exports\" array");
        }
        for (ExportSpec s : c.exports()) {
            if (s == null) {
                throw new IOException("config " + file + ": an entry of \"exports\" is null");
            }
        }
        return c;
    }

    /** What Jackson found wrong, in the config's own terms: "unknown field 'extra' at exports[0]". */
    private static String problem(JsonProcessingException e) {
        if (e instanceof com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException u) {
            return "unknown field '" + u.getPropertyName() + "' at " + where(u.getPath());
        }
        return e.getOriginalMessage();
    }

    private static String where(List<com.fasterxml.jackson.databind.JsonMappingException.Reference> path) {
        StringBuilder b = new StringBuilder();
        for (com.fasterxml.jackson.databind.JsonMappingException.Reference r : path.subList(0, Math.max(0, path.size() - 1))) {
            if (r.getFieldName() != null) {
                b.append(b.length() == 0 ? "" : ".").append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                b.append('[').append(r.getIndex()).append(']');
            }
        }
        return b.length() == 0 ? "the top level" : b.toString();
    }
}
