package io.strata.core.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** A failing blob is reported, once per interval, with the count of the failures left out. */
class ReadFailureLogTest {
    @Test
    void oneLinePerIntervalCountingTheRest() throws Exception {
        PrintStream original = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            ReadFailureLog log = new ReadFailureLog(LoggerFactory.getLogger("io.strata.test.ReadFailureLogTest"),
                    TimeUnit.MILLISECONDS.toNanos(200));
            long start = System.nanoTime();
            for (int i = 0; i < 3; i++) {
                log.failed("blob registry.example/app@sha256:ab chunk " + i, new IOException("GET https://registry.example/v2/app/blobs/x:\nHTTP 503"));
            }
            // The interval is the condition awaited: the next failure after it is reported.
            while (System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(250)) {
                Thread.onSpinWait();
            }
            log.failed("blob registry.example/app@sha256:ab chunk 7", new IOException("connection refused"));
        } finally {
            System.setErr(original);
        }
        String[] lines = captured.toString(StandardCharsets.UTF_8).strip().split("\n");
        assertEquals(2, lines.length, String.join("\n", lines));
        assertTrue(lines[0].contains("read of blob registry.example/app@sha256:ab chunk 0 failed: GET https://registry.example/v2/app/blobs/x: HTTP 503"), lines[0]);
        assertTrue(lines[1].contains("chunk 7 failed: connection refused (and 2 more failed reads"), lines[1]);
    }
}
