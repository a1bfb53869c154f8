package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.testing.Fixtures;
import org.junit.jupiter.api.Test;

/** Export's written-out equals and hashCode keep a record's meaning: every component, nothing else. */
class ExportTest {
    @Test
    void equalWhenEveryComponentIsEqual() throws Exception {
        try (FlatDevice dev = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()),
                FlatDeviceOptions.defaults());
             FlatDevice other = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()),
                FlatDeviceOptions.defaults())) {
            ExportCounters counters = new ExportCounters();
            Export a = new Export("a", dev, "d", counters);
            Export same = new Export("a", dev, "d", counters);
            assertEquals(a, same);
            assertEquals(a.hashCode(), same.hashCode());
            assertEquals(a, a);
            assertEquals(new Export("a", dev, null, counters), new Export("a", dev, null, counters));
            assertNotEquals(a, new Export("b", dev, "d", counters));
            assertNotEquals(a, new Export("a", other, "d", counters));
            assertNotEquals(a, new Export("a", dev, "e", counters));
            assertNotEquals(a, new Export("a", dev, null, counters));
            assertNotEquals(a, new Export("a", dev, "d")); // counters of its own
            assertNotEquals(a, null);
            assertNotEquals(a, "a");
            assertTrue(a.toString().startsWith("Export[name=a, "));
        }
    }
}
