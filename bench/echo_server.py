"""Baseline: the most trivial aiohttp JSON echo server (uvloop), on the invoke route.

It parses the body and serialises it back, like the no-op handler, but with no admission,
no environment and no process hop: the ceiling for an aiohttp front door on this machine.
Prints its URL on stdout (like `emulator up --port 0`) and stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import uvloop
from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    event = json.loads(await request.read() or b"{}")
    return web.Response(body=json.dumps(event).encode(), content_type="application/json")


async def serve() -> None:
    app = web.Application(handler_args={"access_log": None})
    app.add_routes([web.post("/2015-03-31/functions/{name}/invocations", echo)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024, reuse_address=True)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"http://127.0.0.1:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    uvloop.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
