#!/usr/bin/env python3
"""A TCP proxy that shapes traffic like a distant registry: bench/remote-vs-peers.sh puts it in front of
the local registry.

  shaping-proxy.py LISTEN_PORT UPSTREAM_PORT CONTROL_PORT

- Latency: every byte is delivered DELAY/2 after it was read, in each direction, so an HTTP request and
  its answer cost one round trip of DELAY, and a new connection one more (the TCP handshake is modelled
  by holding the first bytes of a connection for another DELAY).
- Bandwidth: one token bucket per direction, shared by all connections (the link, not each flow), of
  RATE bytes/s with a burst of 64 KiB (RATE 0 = unlimited).
- Back pressure: each direction of a connection buffers at most ~4 MiB in flight, so a fast upstream
  does not fill memory.
- Counters: connections, HTTP requests (request lines seen client->server: only GET/HEAD go through
  the proxy, so there are no request bodies to confuse the count), range requests, bytes each way.

Control on 127.0.0.1:CONTROL_PORT, plain HTTP GET: /stats (JSON), /reset (zero the counters),
/shape?delay_ms=20&rate_mib=50 (applies to new bytes at once).
"""
import asyncio
import json
import re
import sys
import time
import urllib.parse

READ_SIZE = 128 * 1024
QUEUE_CHUNKS = 32  # 32 x 128 KiB in flight per direction of one connection
BURST = 256 * 1024
REQUEST_LINE = re.compile(rb"(?:^|\r\n)(GET|HEAD|POST|PUT|PATCH|DELETE) \S+ HTTP/1\.[01]\r\n")
RANGE_HEADER = re.compile(rb"\r\nRange: *bytes=", re.IGNORECASE)


class Shape:
    def __init__(self):
        self.delay = 0.0  # round trip, seconds
        self.rate = 0.0  # bytes/s, 0 = unlimited


class Bucket:
    """A token bucket shared by every connection in one direction.

    A chunk goes out as soon as the bucket is not in debt, and its size is then taken (the bucket may
    go negative: the next chunk waits until it is paid back). The burst is 256 KiB, about 5 ms at
    50 MiB/s: on a loaded machine a sleep overshoots by milliseconds, and a burst smaller than that
    overshoot would lose the credit and deliver less than the rate.
    """

    def __init__(self, shape):
        self.shape = shape
        self.tokens = BURST
        self.last = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n):
        if self.shape.rate <= 0:
            return
        async with self.lock:  # FIFO: connections share the link in order of arrival
            while True:
                now = time.monotonic()
                self.tokens = min(BURST, self.tokens + (now - self.last) * self.shape.rate)
                self.last = now
                if self.tokens >= 0:
                    self.tokens -= n
                    return
                await asyncio.sleep(-self.tokens / self.shape.rate)


stats = {}


def reset():
    stats.update(connections=0, requests=0, range_requests=0, bytes_down=0, bytes_up=0, open=stats.get("open", 0))


reset()
stats["open"] = 0


async def pump(reader, writer, bucket, shape, upstream, first_delay):
    """Copies reader -> writer, each chunk delivered delay/2 after it was read, paced by the bucket."""
    queue = asyncio.Queue(QUEUE_CHUNKS)
    tail = b""

    async def read_side():
        nonlocal tail
        extra = first_delay
        while True:
            data = await reader.read(READ_SIZE)
            if upstream and data:
                text = tail + data
                stats["requests"] += len(REQUEST_LINE.findall(text)) - len(REQUEST_LINE.findall(tail))
                stats["range_requests"] += len(RANGE_HEADER.findall(text)) - len(RANGE_HEADER.findall(tail))
                tail = text[-256:]
            await queue.put((time.monotonic() + shape.delay / 2 + extra, data))
            extra = 0.0
            if not data:
                return

    async def write_side():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            await bucket.take(len(data))
            writer.write(data)
            await writer.drain()
            stats["bytes_up" if upstream else "bytes_down"] += len(data)

    await asyncio.gather(read_side(), write_side())


async def handle(client_reader, client_writer, upstream_port, shape, down, up):
    stats["connections"] += 1
    stats["open"] += 1
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_writer.close()
        stats["open"] -= 1
        return
    try:
        # The first bytes of a connection also wait for the handshake's round trip.
        await asyncio.gather(
            pump(client_reader, server_writer, up, shape, True, shape.delay),
            pump(server_reader, client_writer, down, shape, False, 0.0))
    except (ConnectionError, OSError):
        pass
    finally:
        stats["open"] -= 1
        for w in (server_writer, client_writer):
            try:
                w.close()
            except Exception:
                pass


async def control(reader, writer, shape):
    try:
        line = (await reader.readline()).decode("latin-1").split()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        url = urllib.parse.urlparse(line[1] if len(line) > 1 else "/")
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/reset":
            reset()
        elif url.path == "/shape":
            shape.delay = float(query.get("delay_ms", 0)) / 1000
            shape.rate = float(query.get("rate_mib", 0)) * 1024 * 1024
        body = json.dumps(dict(stats, delay_ms=shape.delay * 1000, rate_mib=shape.rate / 1048576)).encode()
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
    finally:
        writer.close()


async def main():
    listen, upstream, control_port = map(int, sys.argv[1:4])
    shape = Shape()
    down, up = Bucket(shape), Bucket(shape)
    proxy = await asyncio.start_server(lambda r, w: handle(r, w, upstream, shape, down, up), "127.0.0.1", listen)
    ctl = await asyncio.start_server(lambda r, w: control(r, w, shape), "127.0.0.1", control_port)
    print(f"shaping-proxy: 127.0.0.1:{listen} -> 127.0.0.1:{upstream}, control 127.0.0.1:{control_port}", flush=True)
    async with proxy, ctl:
        await asyncio.gather(proxy.serve_forever(), ctl.serve_forever())


if __name__ == "__main__":
    asyncio.run(main())
