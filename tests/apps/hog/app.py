# SPDX-License-Identifier: GPL-2.0-or-later
"""An app for tests/quotas.sh that goes past its tenant's quotas on request:
GET /hog?mb=N runs a child that touches N MiB in 8 MiB steps and answers
"hog exit=<its exit status>" (-9 when the kernel killed it);
GET /fork?n=N runs a child that forks until fork fails (or N children) and
answers "forked=<children> error=<errno name>"; GET /spin?ms=N&procs=P
runs P children that spin N ms of wall time each and answers
"cpu_ms=<the cpu time they got together>"; anything else
"app=<name> ok". The server itself stays small and up."""
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HOG = """
import sys
chunks = []
for _ in range(int(sys.argv[1]) // 8):
    chunks.append(b"\\x01" * (8 << 20))
print("survived")
"""

FORK = """
import errno, os, sys, time
kids, err = [], "none"
while len(kids) < int(sys.argv[1]):
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
print("forked=%d error=%s" % (len(kids), err), flush=True)
for pid in kids:
    os.kill(pid, 9)
for pid in kids:
    os.waitpid(pid, 0)
"""

SPIN = """
import sys, time
end = time.monotonic() + int(sys.argv[1]) / 1000
while time.monotonic() < end:
    pass
"""


def run(script, arg):
    p = subprocess.run([sys.executable, "-c", script, arg], capture_output=True, text=True)
    return p.returncode, p.stdout.strip()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def answer(self, text):
        body = (text + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/hog":
            code, out = run(HOG, q.get("mb", "64"))
            self.answer("hog exit=%d %s" % (code, out))
        elif url.path == "/fork":
            code, out = run(FORK, q.get("n", "1000"))
            self.answer("%s exit=%d" % (out, code))
        elif url.path == "/spin":
            before = os.times()
            procs = [subprocess.Popen([sys.executable, "-c", SPIN, q.get("ms", "1000")])
                     for _ in range(int(q.get("procs", "1")))]
            for p in procs:
                p.wait()
            after = os.times()
            used = after.children_user + after.children_system - before.children_user - before.children_system
            self.answer("cpu_ms=%d" % (used * 1000))
        else:
            self.answer("app=%s ok" % os.environ.get("BERTH_APP_NAME", "?"))


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
