# SPDX-License-Identifier: GPL-2.0-or-later
"""An app for tests/router.sh: CPython's own http.server (the parser the
router's smuggling issue was found with: it takes a lone CR as a line end),
threaded, HTTP/1.1 keep-alive, so the router pools its connections.

  GET /token?t=X   answers "token=X\n": a canary sees its own answer only
  GET /count       how many requests (other than /count) the app has read
  POST /upload     reads the body slowly (Content-Length or chunked) and
                   answers "bytes=N\n"; ?delay_ms=D sleeps D ms per 64 KiB
  GET /ws          with Upgrade: websocket: 101, then echoes raw bytes
  anything else    the request line and header lines as the app got them

Every request is also printed to stdout (the app's log), escaped."""
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
seen = 0


def log(line):
    sys.stdout.write(line.encode("ascii", "backslashreplace").decode() + "\n")
    sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def count(self):
        global seen
        path = self.path.split("?", 1)[0]
        if path != "/count":
            with lock:
                seen += 1
        log("request %r %r" % (self.requestline, list(self.headers.items())))
        return path

    def read_body(self, delay):
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return n
                left = size
                while left:
                    got = self.rfile.read(min(left, 65536))
                    if not got:
                        raise ConnectionError("short chunk")
                    left -= len(got)
                    n += len(got)
                    if delay:
                        time.sleep(delay)
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            got = self.rfile.read(min(left, 65536))
            if not got:
                break
            left -= len(got)
            n += len(got)
            if delay:
                time.sleep(delay)
        return n

    def handle_any(self):
        path = self.count()
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path == "/count":
            with lock:
                n = seen
            return self.answer(200, b"%d\n" % n)
        if path == "/token":
            body = self.read_body(0)
            return self.answer(200, ("token=%s\n" % params.get("t", "")).encode(), [("X-Body-Bytes", str(body))])
        if path == "/upload":
            n = self.read_body(int(params.get("delay_ms", "0")) / 1000.0)
            return self.answer(200, b"bytes=%d\n" % n)
        if path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        self.read_body(0)
        lines = [self.requestline] + ["%s: %s" % kv for kv in self.headers.items()]
        self.answer(200, ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))

    def websocket(self):
        import base64
        import hashlib
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        # Raw bytes from here: echoed back until the client closes.
        sock = self.connection
        while True:
            data = sock.recv(65536)
            if not data:
                break
            sock.sendall(data)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = do_PATCH = handle_any


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    log("listening on 0.0.0.0:%d" % port)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
