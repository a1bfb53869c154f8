package io.strata.nbd;

import io.strata.core.device.BlockDevice;
import io.strata.core.metrics.ExportCounters;

/**
 * One named export: a device, a line describing it (NBD_INFO_DESCRIPTION), and what clients did with
 * it ({@link ExportCounters}: requests, bytes, errors, latency, connections), which the Prometheus
 * exporter reads under the export's name.
 */
public record Export(String name, BlockDevice device, String description, ExportCounters counters) {
    /** An export with counters of its own, starting at zero. */
    public Export(String name, BlockDevice device, String description) {
        this(name, device, description, new ExportCounters());
    }
}
