#!/usr/bin/env python3
"""Records what real NBD clients send, as seeds for the NBD fuzz tests.

Usage: scripts/nbd-record-sessions.py SERVER_SOCKET PROXY_SOCKET OUTDIR
A unix-socket proxy: every client connecting to PROXY_SOCKET is forwarded to SERVER_SOCKET, and
the bytes the client sends are written to OUTDIR/session-N.bin. Stop it with Ctrl-C. The seeds in
transport-nbd/src/test/resources/io/strata/nbd/*FuzzTestInputs/fuzz/ were recorded this way from
nbdinfo, nbdcopy and qemu-img against `strata serve nbd` on the Nydus fixture, then split with
--split (handshake part for HandshakeFuzzTest, requests for TransmissionFuzzTest).

Usage: scripts/nbd-record-sessions.py --split SESSION HANDSHAKE_OUT TRANSMISSION_OUT
Splits a recorded session where the client chose its export (GO or EXPORT_NAME). The transmission
seed starts with one byte of the fuzzer's mode (bit 0: structured replies, bit 1: base:allocation),
as the negotiation had it, followed by the requests.
"""
import os
import socket
import struct
import sys
import threading


def pump(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                record.write(data)
                record.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def proxy(server_path, proxy_path, outdir):
    os.makedirs(outdir, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(proxy_path):
        os.unlink(proxy_path)
    listener.bind(proxy_path)
    listener.listen(64)
    n = 0
    while True:
        client, _ = listener.accept()
        n += 1
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(server_path)
        record = open(os.path.join(outdir, "session-%d.bin" % n), "wb")
        threading.Thread(target=pump, args=(client, upstream, record), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, None), daemon=True).start()


def split(session, handshake_out, transmission_out):
    data = open(session, "rb").read()
    pos = 4  # client flags
    structured = allocation = False
    while pos + 16 <= len(data):
        _, option, length = struct.unpack(">QII", data[pos:pos + 16])
        pos += 16 + length
        if option == 8:
            structured = True
        elif option == 10:
            allocation = True
        elif option in (1, 7):  # EXPORT_NAME, GO: transmission follows
            open(handshake_out, "wb").write(data[:pos])
            mode = (1 if structured else 0) | (2 if allocation and structured else 0)
            open(transmission_out, "wb").write(bytes([mode]) + data[pos:])
            return
    open(handshake_out, "wb").write(data)  # no export chosen (e.g. --list): handshake only


if __name__ == "__main__":
    if sys.argv[1] == "--split":
        split(*sys.argv[2:5])
    else:
        proxy(*sys.argv[1:4])
