package io.strata.registry;

import java.io.IOException;
import java.net.http.HttpResponse.BodySubscriber;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;

/** Response-body subscribers that bound memory and can be abandoned safely. */
final class Bodies {
    private Bodies() {
    }

    /**
     * {@code body} as it is, with {@code onItem} told of each buffer the HTTP client takes from it and
     * {@code onComplete} of its end (an upload's progress, a stalled upload's last movement).
     */
    static java.net.http.HttpRequest.BodyPublisher observing(java.net.http.HttpRequest.BodyPublisher body,
            java.util.function.Consumer<ByteBuffer> onItem, Runnable onComplete) {
        return new java.net.http.HttpRequest.BodyPublisher() {
            @Override
            public long contentLength() {
                return body.contentLength();
            }

            @Override
            public void subscribe(Flow.Subscriber<? super ByteBuffer> subscriber) {
                body.subscribe(new Flow.Subscriber<ByteBuffer>() {
                    @Override
                    public void onSubscribe(Flow.Subscription s) {
                        subscriber.onSubscribe(s);
                    }

                    @Override
                    public void onNext(ByteBuffer item) {
                        onItem.accept(item);
                        subscriber.onNext(item);
                    }

                    @Override
                    public void onError(Throwable t) {
                        subscriber.onError(t);
                    }

                    @Override
                    public void onComplete() {
                        onComplete.run();
                        subscriber.onComplete();
                    }
                });
            }
        };
    }

    /**
     * Writes the body to {@code target} and completes with its sha256 digest ({@code sha256:<hex>}),
     * hashed as the bytes arrive: on the HTTP client's thread while the rest is still on the wire,
     * instead of reading the file again afterwards (in a cold JVM the JDK's SHA-256 runs interpreted,
     * 0.1-0.18 s of CPU for a 4 MiB bootstrap layer on this project's 2-core test machine). A body past
     * {@code maxBytes} fails with a {@link RegistryException} naming {@code what} as soon as it is.
     */
    static BodySubscriber<String> toFileWithSha256(java.nio.file.Path target, long maxBytes, String what) {
        java.security.MessageDigest md = Digests.sha256();
        BodySubscriber<java.nio.file.Path> file = java.net.http.HttpResponse.BodySubscribers.ofFile(target);
        return new BodySubscriber<>() {
            private Flow.Subscription subscription;
            private long written;
            private boolean failed;

            @Override
            public CompletionStage<String> getBody() {
                return file.getBody().thenApply(p -> "sha256:" + java.util.HexFormat.of().formatHex(md.digest()));
            }

            @Override
            public void onSubscribe(Flow.Subscription s) {
                subscription = s;
                file.onSubscribe(s);
            }

            @Override
            public void onNext(List<ByteBuffer> items) {
                // Reactive Streams serialises onNext calls; complete happens after the last one.
                if (failed) {
                    return;
                }
                for (ByteBuffer b : items) {
                    written += b.remaining();
                }
                if (written > maxBytes) {
                    // A body longer than the manifest says: stop now, not when the disk is full.
                    failed = true;
                    subscription.cancel();
                    file.onError(new RegistryException(what + ": the registry sent more than the " + maxBytes
                            + " bytes the manifest gives it"));
                    return;
                }
                for (ByteBuffer b : items) {
                    md.update(b.duplicate());
                }
                file.onNext(items);
            }

            @Override
            public void onError(Throwable t) {
                if (!failed) {
                    file.onError(t);
                }
            }

            @Override
            public void onComplete() {
                if (!failed) {
                    file.onComplete();
                }
            }
        };
    }

    /**
     * Completes with null at once and cancels the body. For a 416: distribution 2.8 (Go's
     * http.ServeContent) sends the blob's size as Content-Length with a short error text as the body,
     * which the JDK would otherwise report as a body cut short; the connection is closed instead.
     */
    static <T> BodySubscriber<T> ignoring() {
        return cancelled(CompletableFuture.completedFuture(null));
    }

    /** A subscriber that cancels the body as soon as it is offered and answers {@code result}. */
    static <T> BodySubscriber<T> cancelled(CompletableFuture<T> result) {
        return new BodySubscriber<>() {
            @Override
            public CompletionStage<T> getBody() {
                return result;
            }

            @Override
            public void onSubscribe(Flow.Subscription s) {
                s.cancel();
            }

            @Override
            public void onNext(List<ByteBuffer> item) {
            }

            @Override
            public void onError(Throwable t) {
            }

            @Override
            public void onComplete() {
            }
        };
    }

    /**
     * Collects at most {@code limit} bytes; past that, fails naming {@code what} (when it is not null:
     * a manifest, a token) or keeps only the first {@code limit} (an error body, read for its message).
     */
    static final class Bounded implements BodySubscriber<byte[]> {
        private final int limit;
        private final String what;
        private final CompletableFuture<byte[]> result = new CompletableFuture<>();
        private byte[] buf = new byte[256];
        private int len;
        private Flow.Subscription subscription;

        Bounded(int limit, String what) {
            this.limit = limit;
            this.what = what;
        }

        @Override
        public CompletionStage<byte[]> getBody() {
            return result;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            s.request(1);
        }

        @Override
        public void onNext(List<ByteBuffer> items) {
            for (ByteBuffer b : items) {
                int n = b.remaining();
                if (len + (long) n > limit) {
                    if (what != null) {
                        subscription.cancel();
                        result.completeExceptionally(new RegistryException(what + " is larger than " + limit
                                + " bytes, the most Strata reads for one"));
                        return;
                    }
                    n = limit - len;
                }
                if (len + n > buf.length) {
                    byte[] bigger = new byte[Math.min(limit, Math.max(buf.length * 2, len + n))];
                    System.arraycopy(buf, 0, bigger, 0, len);
                    buf = bigger;
                }
                b.get(buf, len, n);
                len += n;
            }
            subscription.request(1);
        }

        @Override
        public void onError(Throwable t) {
            result.completeExceptionally(t);
        }

        @Override
        public void onComplete() {
            result.complete(java.util.Arrays.copyOf(buf, len));
        }
    }

    /**
     * Copies a response body into a region of a caller's buffer: first skips {@code skip} bytes (a
     * server that ignored the Range header and sent the whole blob), then fills exactly {@code length}
     * bytes at {@code offset}, then cancels the rest. Fewer bytes than that is an error (a body cut
     * short). {@link #abandon()} (a try that timed out) makes every later write a no-op, so a slow
     * try can never write into the buffer after the next try has started filling it.
     */
    static final class Filler implements BodySubscriber<Integer> {
        private final ByteBuffer target;
        private final int length;
        private long skip;
        private int filled;
        private boolean abandoned;
        private boolean done;
        private final CompletableFuture<Integer> result = new CompletableFuture<>();
        private Flow.Subscription subscription;

        Filler(ByteBuffer dst, int offset, int length, long skip) {
            this.target = dst.duplicate();
            this.target.position(offset).limit(offset + length);
            this.length = length;
            this.skip = skip;
        }

        synchronized void abandon() {
            abandoned = true;
            if (subscription != null && !done) {
                subscription.cancel();
            }
        }

        @Override
        public CompletionStage<Integer> getBody() {
            return result;
        }

        @Override
        public synchronized void onSubscribe(Flow.Subscription s) {
            subscription = s;
            if (abandoned) {
                s.cancel();
                return;
            }
            s.request(1);
        }

        @Override
        public synchronized void onNext(List<ByteBuffer> items) {
            if (abandoned || done) {
                return;
            }
            for (ByteBuffer b : items) {
                if (skip > 0) {
                    int s = (int) Math.min(skip, b.remaining());
                    b.position(b.position() + s);
                    skip -= s;
                }
                int n = Math.min(b.remaining(), length - filled);
                if (n > 0) {
                    ByteBuffer slice = b.duplicate();
                    slice.limit(slice.position() + n);
                    target.put(slice);
                    filled += n;
                }
                if (filled == length && (skip > 0 || b.remaining() > n)) {
                    // More than asked for: a 200 carrying the whole blob. Stop reading it.
                    done = true;
                    subscription.cancel();
                    result.complete(filled);
                    return;
                }
            }
            subscription.request(1);
        }

        @Override
        public synchronized void onError(Throwable t) {
            if (!done) {
                done = true;
                result.completeExceptionally(t);
            }
        }

        @Override
        public synchronized void onComplete() {
            if (done) {
                return;
            }
            done = true;
            if (filled != length) {
                result.completeExceptionally(new IOException("response body cut short: " + filled + " of " + length + " bytes"));
            } else {
                result.complete(filled);
            }
        }
    }
}
