package io.strata.registry;

import java.io.IOException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Bearer tokens of one registry, one per scope ({@code repository:REPO:pull}, ...).
 *
 * <p>A token is used until shortly before it expires, then fetched again: at lifetime minus
 * min(20 s, lifetime / 4) (Nydus refreshes at expiry - 20 s; the quarter keeps very short-lived
 * tokens usable). One fetch at a time per scope: readers that find no valid token wait for the one
 * fetch in progress instead of sending a burst of identical token requests. A failed refresh keeps
 * using the old token until it really expires.
 */
final class TokenCache {
    private static final Logger LOG = LoggerFactory.getLogger(TokenCache.class);
    private static final long MAX_REFRESH_MARGIN_NANOS = TimeUnit.SECONDS.toNanos(20);

    /** A token and when to refresh it / when it stops working, on the System.nanoTime() clock. */
    record Token(String value, long refreshAtNanos, long expiresAtNanos) {
        static Token issued(String value, long lifetimeSeconds, long nowNanos) {
            long life = TimeUnit.SECONDS.toNanos(lifetimeSeconds);
            long margin = Math.min(MAX_REFRESH_MARGIN_NANOS, life / 4);
            return new Token(value, nowNanos + life - margin, nowNanos + life);
        }

        @Override
        public String toString() {
            return "Token[redacted]";
        }
    }

    interface Fetcher {
        Token fetch() throws IOException;
    }

    private static final class Slot {
        final ReentrantLock lock = new ReentrantLock();
        volatile Token token;
    }

    private final ConcurrentHashMap<String, Slot> slots = new ConcurrentHashMap<>();

    /** A valid token for {@code scope}, fetching one (once, for all waiting threads) when needed. */
    String get(String scope, Fetcher fetcher, long deadlineNanos) throws IOException {
        Slot slot = slots.computeIfAbsent(scope, k -> new Slot());
        Token t = slot.token;
        if (t != null && System.nanoTime() - t.refreshAtNanos < 0) {
            return t.value;
        }
        try {
            long wait = Math.max(0, deadlineNanos - System.nanoTime());
            if (!slot.lock.tryLock(wait, TimeUnit.NANOSECONDS)) {
                throw new RegistryException("timed out waiting for a token for " + scope);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RegistryException("interrupted waiting for a token for " + scope);
        }
        try {
            t = slot.token;
            long now = System.nanoTime();
            if (t != null && now - t.refreshAtNanos < 0) {
                return t.value;
            }
            try {
                Token fresh = fetcher.fetch();
                slot.token = fresh;
                return fresh.value;
            } catch (IOException e) {
                if (t != null && System.nanoTime() - t.expiresAtNanos < 0) {
                    LOG.warn("token refresh for {} failed ({}); using the current token until it expires", scope, e.getMessage());
                    return t.value;
                }
                throw e;
            }
        } finally {
            slot.lock.unlock();
        }
    }

    /** Drops the token for {@code scope} if it is still {@code value} (a 401 said it no longer works). */
    void invalidate(String scope, String value) {
        Slot slot = slots.get(scope);
        if (slot != null) {
            Token t = slot.token;
            if (t != null && t.value.equals(value)) {
                slot.token = null;
            }
        }
    }
}
