# SPDX-License-Identifier: GPL-2.0-or-later
"""An app for tests/router-load.sh that stalls every client: it listens on
$PORT with the smallest backlog and never accepts, so once the first
connection fills the accept queue (berth's own boot check makes that one),
every later SYN is dropped and a connect into it never completes."""
import os
import socket
import time

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(os.environ.get("PORT", "5000"))))
s.listen(0)
print("listening, never accepting", flush=True)
while True:
    time.sleep(3600)
