package io.strata.nbd;

import io.strata.core.device.BlockDevice;
import io.strata.core.metrics.ExportCounters;
import java.util.Objects;

/**
 * One named export: a device, a line describing it (NBD_INFO_DESCRIPTION), and what clients did with
 * it ({@link ExportCounters}: requests, bytes, errors, latency, connections), which the Prometheus
 * exporter reads under the export's name.
 */
public record Export(String name, BlockDevice device, String description, ExportCounters counters) {
    /** The longest export name, in UTF-8 bytes: NBD's limit on strings (proto.md, "Export names"). */
    public static final int MAX_NAME_BYTES = 4096;

    public Export {
        String why = nameProblem(name);
        if (why != null) {
            throw new IllegalArgumentException("export name: " + why);
        }
    }

    /**
     * Why {@code name} cannot be an export's name, or null: longer than NBD allows (a listing with
     * it fails in libnbd for every export), a control character (NUL ends a C client's string), or a
     * lone UTF-16 surrogate (it becomes '?' in UTF-8, so two such names would be one to clients).
     */
    public static String nameProblem(String name) {
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            return "longer than NBD allows (" + MAX_NAME_BYTES + " bytes)";
        }
        if (name.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            return "holds a control character";
        }
        if (!java.nio.charset.StandardCharsets.UTF_8.newEncoder().canEncode(name)) {
            return "holds a lone UTF-16 surrogate (not a character)";
        }
        return null;
    }

    /** An export with counters of its own, starting at zero. */
    public Export(String name, BlockDevice device, String description) {
        this(name, device, description, new ExportCounters());
    }

    // equals and hashCode are the record's own (every component), written out: the generated ones
    // bootstrap through java.lang.runtime.ObjectMethods on first use, which spins ~16 method-handle
    // classes in the interpreter, and the first use is the server's map of connections per export,
    // on the first client's path (~10 ms of its handshake; docs/benchmarks.md, "Start-up").
    @Override
    public boolean equals(Object o) {
        return o == this || o instanceof Export e && Objects.equals(name, e.name) && Objects.equals(device, e.device)
                && Objects.equals(description, e.description) && Objects.equals(counters, e.counters);
    }

    @Override
    public int hashCode() {
        int h = Objects.hashCode(name);
        h = 31 * h + Objects.hashCode(device);
        h = 31 * h + Objects.hashCode(description);
        return 31 * h + Objects.hashCode(counters);
    }
}
