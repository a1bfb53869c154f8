package io.strata.registry;

import java.net.http.HttpRequest.BodyPublisher;
import java.net.http.HttpResponse.BodySubscriber;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;

/**
 * When one try of a whole-blob transfer (a push's uploads, a whole-blob download) last moved bytes.
 * Such a try has no time limit of its own: a 2 GiB layer over a slow uplink takes as long as it
 * takes, as with docker push or skopeo. It is given up when it stalls: nothing moved for the
 * allowance, the try timeout plus the read deadline (80 s by default). Generous on purpose: an
 * upload's bytes are "moved" when the HTTP client takes them, and the kernel wakes a writer only
 * once half its send buffer has drained (up to 2 MiB of tcp_wmem's 4 MiB, 8 s at 256 KiB/s); after
 * the last byte, the rest of the buffers still has to arrive, and a registry checks the digest and
 * moves the blob into its storage before it answers (seconds for a large blob on an object store).
 */
final class TransferWatch {
    private final long allowanceNanos;
    private volatile long lastMovedNanos = System.nanoTime();
    private volatile boolean uploaded;

    TransferWatch(Duration allowance) {
        this.allowanceNanos = allowance.toNanos();
    }

    private void moved() {
        lastMovedNanos = System.nanoTime();
    }

    /** Nanoseconds left before the try counts as stalled (zero or less: it has). */
    long nanosLeft() {
        return lastMovedNanos + allowanceNanos - System.nanoTime();
    }

    /** Why the try was given up, for the error message (naming the options that set the limit). */
    String stalled() {
        long ms = TimeUnit.NANOSECONDS.toMillis(allowanceNanos);
        return (uploaded ? "no answer within " + ms + " ms of the upload's last byte" : "no byte moved for " + ms + " ms")
                + " (--registry-try-timeout + --registry-deadline)";
    }

    /** {@code body}, noting each buffer it hands the client and its end. */
    BodyPublisher watch(BodyPublisher body) {
        return Bodies.observing(body, item -> moved(), () -> {
            moved();
            uploaded = true;
        });
    }

    /** {@code body}, noting each part of the answer's body as it arrives. */
    <T> BodySubscriber<T> watch(BodySubscriber<T> body) {
        moved(); // the answer's headers arrived
        return new BodySubscriber<T>() {
            @Override
            public CompletionStage<T> getBody() {
                return body.getBody();
            }

            @Override
            public void onSubscribe(Flow.Subscription s) {
                body.onSubscribe(s);
            }

            @Override
            public void onNext(List<ByteBuffer> item) {
                moved();
                body.onNext(item);
            }

            @Override
            public void onError(Throwable t) {
                body.onError(t);
            }

            @Override
            public void onComplete() {
                body.onComplete();
            }
        };
    }
}
