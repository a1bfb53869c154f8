package io.strata.nbd;

import io.strata.core.device.BlockDevice;

/** One named export: a device and a line describing it (NBD_INFO_DESCRIPTION). */
public record Export(String name, BlockDevice device, String description) {
}
