# SPDX-License-Identifier: GPL-2.0-or-later
"""An app for tests/router-load.sh: one asyncio thread that holds any
number of connections (a thread per connection would run into the app's
pids limit), HTTP/1.1 keep-alive. Every request's body is read and counted
(Content-Length or chunked, read as it trickles in) and answered with
"ok bytes=N\n"."""
import asyncio
import os


async def read_body(reader, head):
    n = 0
    chunked = b"\r\ntransfer-encoding: chunked" in head.lower()
    if chunked:
        while True:
            line = await reader.readline()
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return n
            await reader.readexactly(size)
            n += size
            await reader.readline()
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            left = int(line.split(b":", 1)[1])
            while left:
                got = await reader.read(min(left, 65536))
                if not got:
                    break
                left -= len(got)
                n += len(got)
    return n


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            n = await read_body(reader, head)
            body = b"ok bytes=%d\n" % n
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", int(os.environ.get("PORT", "5000")), backlog=1024)
    print("listening", flush=True)
    await server.serve_forever()


asyncio.run(main())
