# SPDX-License-Identifier: GPL-2.0-or-later
"""An app for tests/processes.sh: answers every GET with
"dyno=<$DYNO> pid=<its pid>\n" (HTTP/1.1 keep-alive), so a test can tell
which of the app's web processes answered; with the config var CLOSE=1 it
answers HTTP/1.0 and closes every connection instead."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


CLOSE = os.environ.get("CLOSE") == "1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0" if CLOSE else "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = ("dyno=%s pid=%d\n" % (os.environ.get("DYNO", "?"), os.getpid())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if CLOSE:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
