# SPDX-License-Identifier: GPL-2.0-or-later
"""berth's Python example: a standard-library HTTP server on $PORT that
imports tabulate, a pure-Python library vendored as a wheel under
vendor/wheels (not part of the stack), and shows its version."""
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import tabulate

BODY = f"Hello from berth's Python example (tabulate {tabulate.__version__})\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/table":
            rows = [("python", sys.version.split()[0]), ("tabulate", tabulate.__version__)]
            body = tabulate.tabulate(rows, headers=("package", "version")) + "\n"
            status = 200
        elif self.path.split("?", 1)[0] == "/":
            body, status = BODY, 200
        else:
            body, status = "Not found\n", 404
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    print(f"listening on 0.0.0.0:{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
