package io.strata.registry;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * When and how long to wait before trying a request again.
 *
 * <p>Retried: I/O errors (reset, refused, cut-short bodies, timeouts), 408, 429 and every 5xx but
 * 501 (Not Implemented will not change). Waits grow exponentially from {@code initialBackoff} up to
 * {@code maxBackoff} with "full jitter" (a uniformly random wait between half and all of the step),
 * so many clients that failed together do not come back together; a {@code Retry-After} from the
 * server replaces the computed wait (capped by {@code maxRetryAfter}). At most {@code maxAttempts}
 * tries, and never past the operation's deadline.
 *
 * <p>Defaults: 5 tries, 100 ms doubling to 5 s, Retry-After honoured up to 30 s. Peers: Nydus retries
 * an on-demand read 3 times, stargz 5 times honouring Retry-After; retry storms that stretch a job
 * tenfold are a common complaint, hence the small bound and the deadline above it.
 */
public record RetryPolicy(int maxAttempts, Duration initialBackoff, Duration maxBackoff, Duration maxRetryAfter) {
    public static final RetryPolicy DEFAULT =
            new RetryPolicy(5, Duration.ofMillis(100), Duration.ofSeconds(5), Duration.ofSeconds(30));

    public RetryPolicy {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("retry attempts must be at least 1, not " + maxAttempts);
        }
        if (initialBackoff.isNegative() || maxBackoff.compareTo(initialBackoff) < 0 || maxRetryAfter.isNegative()) {
            throw new IllegalArgumentException("retry backoff must satisfy 0 <= initial <= max");
        }
    }

    public RetryPolicy withMaxAttempts(int attempts) {
        return new RetryPolicy(attempts, initialBackoff, maxBackoff, maxRetryAfter);
    }

    /** Whether an HTTP status is worth another try. */
    public static boolean retryable(int status) {
        return status == 408 || status == 429 || (status >= 500 && status <= 599 && status != 501);
    }

    /**
     * The wait before try number {@code attempt + 1} (attempt counts from 1), in milliseconds.
     *
     * @param retryAfterMillis the server's Retry-After, or -1 for none
     */
    public long delayMillis(int attempt, long retryAfterMillis) {
        if (retryAfterMillis >= 0) {
            return Math.min(retryAfterMillis, maxRetryAfter.toMillis());
        }
        long base = initialBackoff.toMillis();
        long step = base << Math.min(attempt - 1, 20);
        step = Math.min(step, maxBackoff.toMillis());
        if (step <= 1) {
            return step;
        }
        return step / 2 + ThreadLocalRandom.current().nextLong(step - step / 2 + 1);
    }
}
