#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Slow and half-open clients for tests/router-load.sh, all in one asyncio
loop (thousands of sockets, no thread or process each). Each subcommand
prints one line of key=value results.

  loadtool.py trickle PORT HOST --conns N --chunks K --size B --interval S [--ramp R] [--source ADDR]
      N chunked uploads (all at once, or their connects spread over R
      seconds), each sending K chunks of B bytes, one every S seconds, then
      the last chunk; counts the answers "200 ... bytes=K*B", and the
      other statuses by code.
  loadtool.py halfopen PORT HOST --conns N --wait S [--source ADDR]
      N connections that each send half a request head and stop; each then
      waits up to S seconds for the router to answer or close. Counts the
      status lines seen (408, 503, ...), closes without one, sockets still
      open at the end, and how long the slowest 408 took from connect.
"""
import argparse
import asyncio
import resource
import socket
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def open_conn(port, source):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0) if source else None)


async def trickle_one(a, res):
    try:
        reader, writer = await open_conn(a.port, a.source)
    except OSError as e:
        res["connect_failed"] += 1
        res["last_error"] = str(e)
        return
    try:
        writer.write(("POST /upload HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
                      "Connection: close\r\n\r\n" % a.host).encode())
        await writer.drain()
        chunk = b"%x\r\n%s\r\n" % (a.size, b"z" * a.size)
        for _ in range(a.chunks):
            await asyncio.sleep(a.interval)
            writer.write(chunk)
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=30)
        want = b"bytes=%d" % (a.chunks * a.size)
        if answer.startswith(b"HTTP/1.1 200") and want in answer:
            res["ok"] += 1
        else:
            res["bad"] += 1
            if answer.startswith(b"HTTP/1.1 "):
                code = "status_" + answer[9:12].decode()
                res[code] = res.get(code, 0) + 1
            else:
                res["last_error"] = repr(answer[:80])
    except (OSError, asyncio.TimeoutError) as e:
        res["failed"] += 1
        res["last_error"] = repr(e)
    finally:
        writer.close()


async def halfopen_one(a, res, start):
    try:
        reader, writer = await open_conn(a.port, a.source)
    except OSError as e:
        res["connect_failed"] += 1
        res["last_error"] = str(e)
        return
    t0 = time.monotonic()
    try:
        writer.write(("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: half" % a.host).encode())
        await writer.drain()
    except OSError:
        pass
    data = b""
    try:
        while True:
            left = a.wait - (time.monotonic() - start)
            if left <= 0:
                res["still_open"] += 1
                break
            got = await asyncio.wait_for(reader.read(65536), timeout=left)
            if not got:
                break
            data += got
    except asyncio.TimeoutError:
        res["still_open"] += 1
    except OSError:
        res["reset"] += 1
    took = time.monotonic() - t0
    if data.startswith(b"HTTP/1.1 "):
        code = data[9:12].decode()
        res["status_" + code] = res.get("status_" + code, 0) + 1
        if code == "408":
            res["max_408_s"] = max(res.get("max_408_s", 0), round(took, 1))
            res["min_408_s"] = min(res.get("min_408_s", 1e9), round(took, 1))
    elif data == b"":
        res["closed_silently"] += 1
    else:
        res["other"] += 1
    writer.close()


async def main_async(a):
    raise_nofile()
    res = {"ok": 0, "bad": 0, "failed": 0, "connect_failed": 0, "still_open": 0, "reset": 0,
           "closed_silently": 0, "other": 0}
    start = time.monotonic()
    if a.cmd == "trickle":
        tasks = []
        for _ in range(a.conns):
            tasks.append(asyncio.ensure_future(trickle_one(a, res)))
            await asyncio.sleep(a.ramp / a.conns if a.ramp else 0)
    else:
        tasks = []
        for _ in range(a.conns):
            tasks.append(asyncio.ensure_future(halfopen_one(a, res, start)))
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    res["seconds"] = round(time.monotonic() - start, 1)
    print(" ".join("%s=%s" % kv for kv in res.items() if kv[1] or kv[0] in ("ok", "seconds")), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["trickle", "halfopen"])
    ap.add_argument("port", type=int)
    ap.add_argument("host")
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--wait", type=float, default=15.0)
    ap.add_argument("--ramp", type=float, default=0.0)
    ap.add_argument("--source", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
