package io.strata.core.device;

import java.io.IOException;

/** A request for bytes outside the device (transports answer EINVAL, not EIO). */
public final class OutOfRangeException extends IOException {
    public OutOfRangeException(long offset, long length, long size) {
        super("range offset=" + offset + " length=" + length + " is outside the device of " + size + " bytes");
    }
}
