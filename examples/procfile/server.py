# SPDX-License-Identifier: GPL-2.0-or-later
"""berth's Procfile example: no dependency file at all, only a Procfile, so
the null buildpack builds it and the Procfile's command runs as it is. A
standard-library HTTP server on $PORT."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"Hello from berth's Procfile example\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        found = self.path.split("?", 1)[0] == "/"
        body = BODY if found else b"Not found\n"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    print(f"listening on 0.0.0.0:{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
