"""An emulator in process with one warm environment whose sockets are fakes: what
profile_invoke.py and profile_apigw.py feed request bytes to, to see a request's Python
alone (no system calls, no wake-ups, caches hot)."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from rawhttp import invoke_request

from emulator.config import Config
from emulator.pytest_plugin import load_app
from emulator.server import EmulatorServer


class FakeEnvironmentSocket:
    """The environment's side: every INVOKE frame written is answered with `result` one loop
    turn later; `on_write`/`on_answer` (if given) run as the frame goes and as the answer comes."""

    def __init__(self, env: Any, result: bytes, on_write: Callable[[], None] | None = None,
                 on_answer: Callable[[], None] | None = None) -> None:
        self.env, self.result = env, result
        self.on_write, self.on_answer = on_write, on_answer
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if self.on_write is not None:
            self.on_write()
        self.loop.call_soon(self.answer)

    def answer(self) -> None:
        if self.on_answer is not None:
            self.on_answer()
        self.env.data_received(self.result)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class FakeClientSocket:
    """The client's side: keeps the last response written; `on_write` (if given) runs first."""

    def __init__(self, on_write: Callable[[], None] | None = None) -> None:
        self.on_write = on_write
        self.last = b""

    def write(self, data: bytes) -> None:
        if self.on_write is not None:
            self.on_write()
        self.last = data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


@asynccontextmanager
async def warm_emulator(write_template: Callable[[Path], Path], function: str) -> AsyncIterator[tuple[EmulatorServer, Any]]:
    """(the server, `function`'s one warm environment): the template `write_template` writes
    in a scratch folder, served with invocation logs off; one real invoke warms it."""
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as scratch:
        template = write_template(Path(scratch))
        config = Config(host="127.0.0.1", port=0, api_port=0).replace(
            log_invocations=False, watch_code=False, backend="none", template=str(template))
        server = EmulatorServer(config, load_app(template, config))
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(invoke_request(function, b"{}"))
            await reader.read(65536)
            writer.close()
            yield server, next(iter(server.invoker.pools.values())).idle[0]
        finally:
            await server.stop()


async def cpu_per_request(run: Callable[[int], Awaitable[None]], requests: int, repeats: int, profile: bool,
                          clock: Callable[[], float] = time.thread_time) -> list[float] | None:
    """`run(requests)` `repeats` times after a warm-up: CPU µs per request of each repeat; or,
    with `profile`, cProfile's top functions of one run printed and None."""
    await run(min(requests, 5000))
    gc.collect()
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await run(requests)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(45)
        return None
    cpu = []
    for _ in range(repeats):
        started = clock()
        await run(requests)
        cpu.append((clock() - started) / requests * 1e6)
    return cpu
