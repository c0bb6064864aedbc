"""The poller process's main program: `python -m emulator.sources.poller_host --fd N --settings JSON`.

Started and supervised by sources/poller_process.py, which holds the other end of the
socket pair `--fd`. Here the pollers (`LocalPollers`) run on their own event loop with their
own aiohttp client to the backend: receiving, deleting, reading streams and building
batches cost the control plane nothing. Invoking a batch is a call over the channel
(`ChannelInvokePort`): admission and the environments stay in the control plane.

Over the channel this process answers `start(mapping)`, `stop(uuid)`, `snapshots()` and
`shutdown()`, and sends notes: `log` (the pollers' log records, re-logged by the control
plane under the same logger names), `error` (an unexpected exception in a poller task) and
`result` (a mapping's new LastProcessingResult) and `checkpoint` (a stream shard's new
checkpoint, which the control plane keeps for the next process if this one dies).

It dies with the control plane: the channel's end of file stops it (and PR_SET_PDEATHSIG
if the parent is killed). Ctrl-C in a terminal reaches the whole process group: it is
ignored here, so the control plane stops the pollers in its own order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
import traceback
from dataclasses import asdict, dataclass
from typing import Any

from emulator.backend.client import BackendClient
from emulator.runtimes import proctree
from emulator.clock import ScaledClock
from emulator.sources.base import PollerContext, SourcesConfig
from emulator.sources.channel import Channel, RemoteFailure
from emulator.sources.checkpoints import StreamCheckpoints
from emulator.sources.invoke_port import ChannelInvokePort
from emulator.sources.local_pollers import LocalPollers
from emulator.sources.mapping import EventSourceMapping

# How long `shutdown` or a lost channel give the pollers to stop (they let batches being
# invoked finish within base.STOP_DRAIN_S).
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PollerHostSettings:
    endpoint_url: str
    region: str
    account_id: str
    time_scale: float
    sources: SourcesConfig
    log_level: int = logging.WARNING  # the control plane's level for emulator.sources
    # The control plane clock's ScaledClock.origin: this process keeps time on the same
    # timeline (emulated now() and wall() equal to the control plane's, across restarts).
    clock_origin: tuple[float, float] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "PollerHostSettings":
        raw = json.loads(text)
        origin = raw.get("clock_origin")
        return cls(**{**raw, "sources": SourcesConfig(**raw["sources"]),
                      "clock_origin": None if origin is None else (origin[0], origin[1])})

    def clock(self) -> ScaledClock:
        return ScaledClock(self.time_scale, origin=self.clock_origin)


class ChannelLogHandler(logging.Handler):
    """Hands every log record to the control plane, which logs it under the same name."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.channel.note("log", record.name, record.levelno, self.format(record))
        except Exception:
            self.handleError(record)


class PollerHostProcess:
    def __init__(self, settings: PollerHostSettings) -> None:
        self.settings = settings
        self.backend = BackendClient(settings.endpoint_url, settings.region)
        self.channel: Channel | None = None
        self.pollers: LocalPollers | None = None
        self.finished = asyncio.Event()

    async def run(self, sock: socket.socket) -> None:
        calls = {"start": self._start, "stop": self._stop, "snapshots": self._snapshots, "shutdown": self._shutdown}
        self.channel = Channel(calls, {}, lambda exc: self.finished.set())
        settings = self.settings
        context = PollerContext(
            functions=ChannelInvokePort(self.channel), backend=self.backend, clock=settings.clock(),
            region=settings.region, account_id=settings.account_id, config=settings.sources,
            report_error=self._report_error, processing_result=self._processing_result,
            checkpoints=StreamCheckpoints(self._checkpoint_advanced),
        )
        self.pollers = LocalPollers(context)
        await self.channel.connect(sock)
        self._forward_logs(self.channel)
        await self.finished.wait()
        await self._stop_everything()
        self.channel.close()

    def _forward_logs(self, channel: Channel) -> None:
        root = logging.getLogger()
        root.handlers[:] = [ChannelLogHandler(channel)]
        logging.getLogger("emulator").setLevel(self.settings.log_level)

    # -- calls from the control plane ------------------------------------------------------
    async def _start(self, mapping: EventSourceMapping, checkpoints: dict[str, Any]) -> None:
        assert self.pollers is not None
        await self.pollers.start_poller(mapping, checkpoints)

    async def _stop(self, uuid: str) -> dict[str, Any]:
        assert self.pollers is not None
        return await self.pollers.stop_poller(uuid)

    async def _snapshots(self) -> dict[str, dict[str, Any]]:
        assert self.pollers is not None
        return await self.pollers.snapshots()

    async def _shutdown(self) -> None:
        await self._stop_everything()
        self.finished.set()

    async def _stop_everything(self) -> None:
        if self.pollers is not None:
            try:
                await asyncio.wait_for(self.pollers.stop_all(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                pass
        await self.backend.close()

    # -- notes to the control plane --------------------------------------------------------
    def _report_error(self, error: BaseException) -> None:
        assert self.channel is not None
        text = "".join(traceback.format_exception(error))
        if isinstance(error, RemoteFailure):  # a handler of the control plane raised: where, there
            text += "raised in the control plane:\n" + error.remote_traceback
        self.channel.note("error", f"{type(error).__name__}: {error}", text)

    def _processing_result(self, uuid: str, result: str) -> None:
        assert self.channel is not None
        self.channel.note("result", uuid, result)

    def _checkpoint_advanced(self, uuid: str, shard_id: str, position: Any) -> None:
        assert self.channel is not None
        self.channel.note("checkpoint", uuid, shard_id, position)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator.sources.poller_host")
    parser.add_argument("--fd", type=int, required=True, help="this end of the socket pair to the control plane")
    parser.add_argument("--settings", required=True, help="PollerHostSettings as JSON")
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args(argv)
    parent = os.getppid()
    proctree.die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # the control plane died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.nice:
        os.nice(args.nice)
    sock = socket.socket(fileno=args.fd)
    host = PollerHostProcess(PollerHostSettings.from_json(args.settings))
    try:
        import uvloop
    except ImportError:
        asyncio.run(host.run(sock))
    else:
        uvloop.run(host.run(sock))


if __name__ == "__main__":
    main(sys.argv[1:])
