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
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IOException("config " + file + ": cannot read it (" + e + ")");
        }
        DaemonConfig c;
        try {
            c = JSON.readValue(bytes, DaemonConfig.class);
        } catch (JsonProcessingException e) {
            throw new IOException("config " + file + ": not a config (" + e.getOriginalMessage() + ")");
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
}
