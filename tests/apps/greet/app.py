# SPDX-License-Identifier: GPL-2.0-or-later
"""An app for tests/releases.sh: answers every GET with
"greeting=<$GREETING or unset> pid=<its pid>\n", and GET /headers with
what the router set ("via=... xff=... probe=...\n", "-" for a header it
did not get), which the health checks test reads. HTTP/1.1 keep-alive, so
the router pools its connections; with the config var CLOSE=1 it answers
HTTP/1.0 and closes every connection instead."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLOSE = os.environ.get("CLOSE") == "1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0" if CLOSE else "HTTP/1.1"
    # The head and the body go out in two writes: without this, Nagle and
    # delayed ACKs hold every keep-alive answer 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/headers":
            body = ("via=%s xff=%s probe=%s\n" % tuple(self.headers.get(h, "-") for h in
                                                       ("Via", "X-Forwarded-For", "X-Berth-Probe"))).encode()
        else:
            body = ("greeting=%s pid=%d\n" % (os.environ.get("GREETING", "unset"), os.getpid())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if CLOSE:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
