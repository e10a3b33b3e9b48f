#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A raw HTTP client for the router tests: sends stdin's bytes as they are
(no parsing, no fixing) to 127.0.0.1:PORT, reads until the server closes
and writes what came back to stdout. How the connection ended goes to
stderr as "end=eof", "end=reset" or "end=timeout" (after --timeout
seconds of silence, 5 by default; --total caps the whole exchange).

  rawhttp.py PORT [--source ADDR] [--timeout S] [--total S] [--split N] < request

With --split N, the first N bytes go out alone, and the rest only once some
of the answer to them has come back (a second request on a keep-alive
connection, rather than two pipelined in one segment).
"""
import argparse
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--source", default=None)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--total", type=float, default=30.0)
    ap.add_argument("--split", type=int, default=0)
    a = ap.parse_args()
    data = sys.stdin.buffer.read()
    s = socket.socket()
    if a.source:
        s.bind((a.source, 0))
    s.settimeout(a.timeout)
    s.connect(("127.0.0.1", a.port))
    end = "eof"
    out = bytearray()
    if a.split:
        s.sendall(data[:a.split])
        data = data[a.split:]
        try:
            out += s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            pass
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass   # refused mid-way: what it answered is still to be read
    deadline = time.monotonic() + a.total
    while True:
        if time.monotonic() > deadline:
            end = "timeout"
            break
        try:
            got = s.recv(65536)
        except socket.timeout:
            end = "timeout"
            break
        except ConnectionResetError:
            end = "reset"
            break
        if not got:
            break
        out += got
    sys.stdout.buffer.write(out)
    sys.stderr.write("end=%s\n" % end)


if __name__ == "__main__":
    main()
