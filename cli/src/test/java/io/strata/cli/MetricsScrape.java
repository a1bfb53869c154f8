package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Scraping a live `--metrics-listen` endpoint with curl, for the metrics tests of every transport. */
public final class MetricsScrape {
    /** The log line that names the endpoint; group 1 is its port. */
    public static final Pattern ENDPOINT = Pattern.compile("Prometheus endpoint on http://127\\.0\\.0\\.1:(\\d+)/metrics");
    /** One sample of the text format: series (name and labels), then value. */
    private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\\{[^}]*\\})?) (\\S+)$", Pattern.MULTILINE);

    private MetricsScrape() {
    }

    /**
     * Scrapes with curl into {@code file} until {@code ready} holds for the samples (a server counts a
     * connection closed just after its client sees the last reply), for up to 30 s while
     * {@code serverAlive}; returns the samples by series.
     */
    public static Map<String, Double> scrapeWhen(String url, Path file, Predicate<Map<String, Double>> ready,
            BooleanSupplier serverAlive) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        for (;;) {
            HostTools.run(List.of("curl", "-sSf", "--max-time", "10", "-o", file.toString(), url));
            Map<String, Double> samples = new HashMap<>();
            Matcher m = SAMPLE.matcher(Files.readString(file));
            while (m.find()) {
                samples.put(m.group(1), Double.parseDouble(m.group(2)));
            }
            if (ready.test(samples)) {
                return samples;
            }
            assertTrue(serverAlive.getAsBoolean() && System.nanoTime() < deadline, "the scrape never settled:\n" + Files.readString(file));
            Thread.sleep(100);
        }
    }
}
