"""A sink for the load generator's benchmark: answers every HTTP/1.1 request at once with a
fixed 200, as cheaply as Python can (a uvloop protocol, no parser library), so that the
generator, not the server, is what is measured. Counts the requests it answered; prints its
URL on stdout and stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_END = b"\r\n\r\n"


class Sink(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        answers = 0
        while True:
            end = buffer.find(_END)
            if end < 0:
                break
            head = bytes(buffer[:end]).lower()
            index = head.find(b"content-length:")
            length = int(head[index + 15:head.find(b"\r\n", index) if head.find(b"\r\n", index) > 0 else len(head)]) if index >= 0 else 0
            if len(buffer) < end + 4 + length:
                break
            del buffer[:end + 4 + length]
            answers += 1
        if answers:
            self.transport.write(ANSWER * answers)  # type: ignore[attr-defined]


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    uvloop.run(main())
    sys.exit(0)
