# SPDX-License-Identifier: GPL-2.0-or-later
"""An app for tests/logs.sh that talks: it prints a line when it starts
and one per request ("request /path"), on stdout and on stderr for
/stderr; /big prints one line of 25000 bytes; /slow answers after 3 s
(past a router timeout of 1 s: H12)."""
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/big":
            print("B" * 25000)
        elif self.path == "/stderr":
            print("request to stderr", file=sys.stderr, flush=True)
        else:
            print("request %s" % self.path)
        if self.path == "/slow":
            time.sleep(3)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print("booting on port %s" % os.environ["PORT"])
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
