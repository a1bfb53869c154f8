package io.strata.registry;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@link RangeFetcher} over {@code GET /v2/<repo>/blobs/<digest>}: one {@code Range: bytes=a-b} per
 * read. A 206 must carry {@code Content-Range: bytes a-b/SIZE} for exactly the range asked (a shorter
 * one means the read ran past the end: an error, not retried); a 200 (a server or proxy that ignores
 * Range) is accepted for reads near the start by skipping to the position, and refused beyond
 * {@link #MAX_SKIP} so a misconfigured proxy cannot turn each chunk read into a whole-blob download;
 * 416 is a read past the end. The URL a redirect led to is remembered and used directly by the next
 * reads until it fails in any way but 416 (a signed URL that expired: object stores answer 400, 403
 * or 404 to one; or a storage host gone), when the registry is asked again. The size the manifest
 * gave is the blob's: an answer that says otherwise (a 416, a Content-Range or Content-Length of
 * another total) is refused, and one from a redirect target (a CDN edge holding a cut-short copy)
 * makes the read ask the registry again instead of failing every read past the cut until restart.
 */
final class RegistryBlob implements RangeFetcher {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(RegistryBlob.class);
    /** The most a 200 answer may make us skip (and download for nothing) to reach a position. */
    static final long MAX_SKIP = 4L << 20;
    // At most 18 digits: every such number fits a long, so a hostile header cannot make the parse throw
    // (a longer one does not match: a 206 is then refused as without a valid Content-Range).
    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d{1,18})-(\\d{1,18})/(\\d{1,18}|\\*)");
    private static final Pattern UNSATISFIED = Pattern.compile("bytes \\*/(\\d{1,18})");

    private final RegistryClient client;
    private final RegistryHost host;
    private final ImageReference repo;
    private final String digest;
    private final URI uri;
    private volatile long size;
    /** The size the manifest's descriptor gave, or -1: then answers tell it. */
    private final long manifestSize;
    private volatile URI redirected;

    RegistryBlob(RegistryClient client, RegistryHost host, ImageReference repo, String digest, long knownSize) {
        this.client = client;
        this.host = host;
        this.repo = repo;
        this.digest = digest;
        this.uri = host.resolve("/v2/" + repo.repository() + "/blobs/" + digest);
        this.size = knownSize;
        this.manifestSize = knownSize;
    }

    @Override
    public String describe() {
        return host.name + "/" + repo.repository() + "@" + digest;
    }

    @Override
    public long size() throws IOException {
        long s = size;
        if (s >= 0) {
            return s;
        }
        // One byte at 0: the Content-Range total gives the size (and primes the redirect cache);
        // a HEAD would do on distribution, but a redirected HEAD to a GET-signed URL fails on S3.
        try {
            fetch(0, ByteBuffer.allocate(1));
        } catch (RegistryException e) {
            if (e.status() != 416 || size < 0) {
                throw e;
            }
        }
        if (size < 0) {
            throw new RegistryException(describe() + ": the registry did not say the blob's size");
        }
        return size;
    }

    @Override
    public void fetch(long position, ByteBuffer dst) throws IOException {
        int start = dst.position();
        try {
            fetchOnce(position, dst);
        } catch (RegistryException e) {
            URI target = redirected;
            if (e.status() != 416 || target == null || manifestSize < 0 || position + (dst.limit() - start) > manifestSize) {
                throw e;
            }
            // A redirect target's copy ends before the blob does: forget it, ask the registry.
            LOG.debug("{}: {} from the redirect target; asking the registry again", describe(), e.getMessage());
            redirected = null;
            dst.position(start);
            fetchOnce(position, dst);
        }
    }

    private void fetchOnce(long position, ByteBuffer dst) throws IOException {
        int len = dst.remaining();
        if (len == 0) {
            return;
        }
        if (position < 0) {
            throw new IllegalArgumentException("negative position " + position);
        }
        long last = position + len - 1;
        int offset = dst.position();
        HttpCall<Integer> call = new HttpCall<Integer>("GET", uri, () -> new HttpCall.TryBody<Integer>() {
            /** This try's filler, so a timed-out try can be stopped from writing into dst. */
            private final Bodies.Filler[] current = new Bodies.Filler[1];
            private boolean abandoned;

            @Override
            public synchronized HttpResponse.BodySubscriber<Integer> apply(HttpResponse.ResponseInfo info) {
                if (abandoned) {
                    return HttpCall.failing(new IOException("abandoned"));
                }
                return bodyFor(info, position, last, dst, offset, len, current);
            }

            @Override
            public synchronized void abandon() {
                abandoned = true;
                if (current[0] != null) {
                    current[0].abandon();
                }
            }
        }).header("Range", "bytes=" + position + "-" + last)
                .scope(RegistryClient.pullScope(repo))
                .redirects(true)
                .deadline(client.readDeadline());
        call.startAt = redirected;
        call.onRedirect = u -> redirected = u;
        HttpCall.Reply<Integer> r = client.send(host, call);
        switch (r.status()) {
            case 206, 200 -> {
                dst.position(dst.limit());
                host.metrics.bytes(len);
            }
            case 416 -> {
                Optional<String> cr = r.headers().firstValue("Content-Range");
                if (manifestSize < 0) {
                    cr.map(UNSATISFIED::matcher).filter(Matcher::matches).ifPresent(m -> size = Long.parseLong(m.group(1)));
                }
                throw new RegistryException(describe() + ": bytes " + position + "-" + last + " are past the end of the blob"
                        + (size >= 0 ? " (" + size + " bytes)" : ""), 416);
            }
            case 404 -> throw new RegistryException(describe() + ": blob unknown to the registry" + client.errorDetail(r.errorBody()), 404);
            default -> throw client.statusError(call, r, describe());
        }
    }

    /** An answer for a blob of {@code total} bytes where the manifest says another size (a cut-short copy, most likely). */
    private RegistryException otherSize(long total) {
        return new RegistryException(describe() + ": the answer is for a blob of " + total + " bytes; its manifest says "
                + manifestSize, 416);
    }

    private HttpResponse.BodySubscriber<Integer> bodyFor(HttpResponse.ResponseInfo info, long position, long last,
            ByteBuffer dst, int offset, int len, Bodies.Filler[] current) {
        if (info.statusCode() == 206) {
            String cr = info.headers().firstValue("Content-Range").orElse("");
            Matcher m = CONTENT_RANGE.matcher(cr.trim());
            if (!m.matches()) {
                return HttpCall.failing(new IOException(describe() + ": 206 without a valid Content-Range"));
            }
            long first = Long.parseLong(m.group(1));
            long lastGot = Long.parseLong(m.group(2));
            if (!m.group(3).equals("*")) {
                long total = Long.parseLong(m.group(3));
                if (manifestSize >= 0 && total != manifestSize) {
                    return HttpCall.failing(otherSize(total));
                }
                size = total;
            }
            if (first == position && lastGot < last && size >= 0 && lastGot == size - 1) {
                return HttpCall.failing(new RegistryException(describe() + ": bytes " + position + "-" + last
                        + " run past the end of the blob (" + size + " bytes)", 416));
            }
            if (first != position || lastGot != last) {
                // A proxy or registry answering another range: never use those bytes; try again.
                return HttpCall.failing(new IOException(describe() + ": asked for bytes " + position + "-" + last
                        + ", got Content-Range " + RegistryException.oneLine(cr)));
            }
            Bodies.Filler f = new Bodies.Filler(dst, offset, len, 0);
            current[0] = f;
            return f;
        }
        // 200: the whole blob.
        long length = info.headers().firstValueAsLong("Content-Length").orElse(-1);
        if (length >= 0) {
            if (manifestSize >= 0 && length != manifestSize) {
                return HttpCall.failing(otherSize(length));
            }
            size = length;
            if (last >= length) {
                return HttpCall.failing(new RegistryException(describe() + ": bytes " + position + "-" + last
                        + " run past the end of the blob (" + length + " bytes)", 416));
            }
        }
        if (position > MAX_SKIP) {
            return HttpCall.failing(new RegistryException(describe() + ": the registry ignored the Range header (200 with the"
                    + " whole blob for a read at " + position + ")", 200));
        }
        Bodies.Filler f = new Bodies.Filler(dst, offset, len, position);
        current[0] = f;
        return f;
    }
}
