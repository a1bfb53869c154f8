#!/usr/bin/python3
"""NBD client for bench/remote-vs-peers.sh (libnbd's Python binding, python3-libnbd).

  nbd-replay.py first URI TIMEOUT_S      wait until the server accepts a connection, read the EROFS
                                         superblock block; print the wall-clock time (epoch seconds) then
  nbd-replay.py replay URI RANGES DEPTH  read every "OFFSET LENGTH" line of RANGES, in order, at most
                                         DEPTH requests in flight (as a kernel's readahead and a few
                                         reader threads would); print "SECONDS BYTES REQUESTS"
"""
import sys
import time

import nbd

MAX_REQUEST = 32 * 1024 * 1024  # the NBD protocol's customary largest read


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def first(uri, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            h = connect(uri)
            break
        except nbd.Error:
            if time.monotonic() > deadline:
                sys.exit(f"nbd-replay: {uri} did not accept a connection within {timeout:.0f} s")
            time.sleep(0.02)
    h.pread(4096, 0)
    print(f"{time.time():.6f}")
    h.shutdown()


def replay(uri, ranges_file, depth):
    ranges = []
    with open(ranges_file) as f:
        for line in f:
            off, length = map(int, line.split())
            while length > 0:
                n = min(length, MAX_REQUEST)
                ranges.append((off, n))
                off += n
                length -= n
    h = connect(uri)
    start = time.monotonic()
    pending = {}
    next_i = 0
    total = 0
    while next_i < len(ranges) or pending:
        while next_i < len(ranges) and len(pending) < depth:
            off, n = ranges[next_i]
            buf = nbd.Buffer(n)
            pending[h.aio_pread(buf, off)] = buf  # keep the buffer alive until the read completes
            next_i += 1
            total += n
        h.poll(-1)
        for cookie in [c for c in pending if h.aio_command_completed(c)]:
            del pending[cookie]
    elapsed = time.monotonic() - start
    h.shutdown()
    print(f"{elapsed:.3f} {total} {len(ranges)}")


if __name__ == "__main__":
    if sys.argv[1] == "first":
        first(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "replay":
        replay(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
