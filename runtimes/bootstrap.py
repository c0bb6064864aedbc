"""What runs inside one execution environment, after the fork server forked it.

Single-threaded and blocking, like Lambda's own runtime: wait for an invocation frame,
run the handler, send the result frame, repeat. Handler output written through
`sys.stdout`/`sys.stderr`/`logging` travels as LOG frames on the same socket, so it is
ordered before the result and the control plane never waits for logs to drain.
"""

from __future__ import annotations

import decimal
import importlib
import importlib.machinery
import io
import json
import logging
import os
import resource
import select
import site
import socket
import sys
import time
import traceback
from typing import Any, Callable

from . import proctree, protocol
from .context import LambdaContext

# AWS's Python runtime refuses handler modules that shadow built-ins (awslambdaric bootstrap).
_BUILTIN_MODULES = frozenset(sys.builtin_module_names)


class HandlerFault(Exception):
    """An error in loading the handler, already in AWS's shape."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


class FrameLog:
    """A text stream that forwards whole lines to the control plane as LOG frames."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._pending: list[str] = []

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._pending.append(text)
        if "\n" in text:
            self.flush()
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            data = "".join(self._pending).encode("utf-8", "replace")
            self._pending.clear()
            # Frames above MAX_FRAME would make the control plane kill this environment:
            # one huge print goes out in pieces instead.
            for start in range(0, len(data), protocol.LOG_CHUNK):
                self._sock.sendall(protocol.frame(protocol.LOG, data[start : start + protocol.LOG_CHUNK]))

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("the Lambda log stream has no file descriptor")

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


# LogRecord attributes that are not a caller's `extra` (the JSON format adds the others).
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "aws_request_id"}
# ApplicationLogLevel values (Lambda's) as Python's logging names them; TRACE has no Python
# level, and AWS's runtime maps it to DEBUG (awslambdaric).
_LEVELS = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}


class LambdaLogHandler(logging.Handler):
    """The log line format of AWS's Python runtime: `[LEVEL] time request-id message`, or
    with LogFormat JSON (AWS_LAMBDA_LOG_FORMAT=JSON) one JSON object per record with
    timestamp, level, message, logger and requestId (plus the error fields of an exception
    and the record's `extra` keys):
    https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html"""

    def __init__(self, json_format: bool = False) -> None:
        super().__init__()
        self.request_id = ""
        self.json_format = json_format

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            millis = int(record.msecs)
            if self.json_format:
                line = self._json(record, f"{stamp}.{millis:03d}Z")
            else:
                line = f"[{record.levelname}]\t{stamp}.{millis:03d}Z\t{self.request_id}\t{self.format(record)}\n"
            sys.stdout.write(line)
        except Exception:  # logging must never break the handler
            self.handleError(record)

    def _json(self, record: logging.LogRecord, stamp: str) -> str:
        level = min(50, max(0, record.levelno)) // 10 * 10
        body: dict[str, Any] = {"timestamp": stamp, "level": logging.getLevelName(level), "message": record.getMessage(),
                                "logger": record.name}
        if record.exc_info and record.exc_info[0] is not None:
            body["stackTrace"] = traceback.format_tb(record.exc_info[2])
            body["errorType"] = record.exc_info[0].__name__
            body["errorMessage"] = str(record.exc_info[1])
            body["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        if self.request_id:
            body["requestId"] = self.request_id
        body.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS and k not in body)
        return json.dumps(body, ensure_ascii=False, default=str) + "\n"


class _TaskRootSourceLoader(importlib.machinery.SourceFileLoader):
    """Validates cached bytecode of the function's own code against the nanosecond mtime.

    Python's default check compares whole seconds and the size, so code rewritten within a
    second of its last import, at the same length (a test editing "v1" into "v2"), would
    keep running from the stale .pyc, and a code reload would silently load the old code.
    """

    def path_stats(self, path: str) -> dict[str, Any]:
        st = os.stat(path)
        return {"mtime": st.st_mtime_ns, "size": st.st_size}


def _watch_task_root_sources(task_root: str) -> None:
    finder = importlib.machinery.FileFinder.path_hook(
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (_TaskRootSourceLoader, importlib.machinery.SOURCE_SUFFIXES),
        (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
    )
    inside = task_root.rstrip(os.sep) + os.sep

    def hook(path: str) -> Any:
        if path == task_root or path.startswith(inside):
            return finder(path)
        raise ImportError("not the function's code")  # the next hook handles it

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()


def _decimal_default(value: Any) -> Any:
    # awslambdaric serialises Decimal (common with DynamoDB) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# What json.dumps(result, default=_decimal_default) builds for each call, built once.
_RESULT_ENCODER = json.JSONEncoder(default=_decimal_default)


def load_handler(handler: str) -> Callable[[Any, Any], Any]:
    """Import the handler module and find the function, with awslambdaric's error types."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise HandlerFault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    if module_name.split(".")[0] in _BUILTIN_MODULES:
        raise HandlerFault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise HandlerFault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        stack = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise HandlerFault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", stack) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise HandlerFault("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return function


def error_object(exc: BaseException, request_id: str | None, skip_frames: int = 1) -> dict[str, Any]:
    if isinstance(exc, HandlerFault):
        return {"errorMessage": exc.message, "errorType": exc.error_type, "requestId": request_id or "", "stackTrace": exc.stack}
    tb = exc.__traceback__
    for _ in range(skip_frames):  # drop our own frame, as AWS's runtime does
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id or "",
        "stackTrace": traceback.format_list(traceback.extract_tb(tb)),
    }


def _log_error(error: dict[str, Any]) -> None:
    # AWS's runtime logs "[ERROR] Type: message" followed by the traceback; with LogFormat
    # JSON, one object with log_level ERROR and the error's fields (awslambdaric).
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sys.stdout.write(json.dumps({"timestamp": stamp, "log_level": "ERROR", **error}) + "\n")
        return
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in error["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")


class PollingSocketReader(io.RawIOBase):
    """The socket's receiving side, waiting for data in poll() rather than in recv().

    A task blocked in recv() on a Unix stream socket is also woken whenever its peer reads
    what the task wrote (the kernel's unix_write_space wakes every waiter of the socket,
    whatever it waits for). So each result frame, once the control plane read it, woke the
    environment for nothing: a second context switch per invocation, and a wake-up the
    control plane paid for on its own critical path. poll() waits for POLLIN only, and the
    kernel filters that wake-up out.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._poll.poll()
        return self._sock.recv_into(buffer)


class Runner:
    """Serves invocations for one handler over one socket, until the socket closes."""

    def __init__(self, sock: socket.socket, handler: Callable[[Any, Any], Any], spec: dict[str, Any], log_handler: LambdaLogHandler) -> None:
        self.sock = sock
        self.handler = handler
        self.spec = spec
        self.log_handler = log_handler
        self.reader = io.BufferedReader(PollingSocketReader(sock), 256 * 1024)

    def serve(self) -> None:
        header_size = protocol.HEADER.size
        while True:
            header = self.reader.read(header_size)
            if len(header) < header_size:
                return  # control plane closed the socket: shut down
            length, kind = protocol.HEADER.unpack(header)
            if length > protocol.MAX_FRAME:
                # A corrupt stream: nothing after it can be trusted, and reading `length`
                # bytes could exhaust memory. Say why (fd 2 reaches the function's log) and end.
                os.write(2, f"lambda runtime: frame of {length} bytes from the control plane exceeds {protocol.MAX_FRAME}\n".encode())
                os._exit(protocol.EXIT_BAD_FRAME)
            body = self.reader.read(length)
            if len(body) < length:
                return  # the control plane closed the socket mid-frame
            if kind == protocol.INVOKE:
                self.invoke(body)

    def invoke(self, body: bytes) -> None:
        meta, payload = protocol.split_meta(body)
        request_id = meta["id"]
        self.log_handler.request_id = request_id
        # Set for each invocation, as AWS's runtime does (X-Ray SDKs, Powertools' Tracer read it).
        trace = meta.get("trace")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        spec = self.spec
        context = LambdaContext(
            request_id=request_id,
            deadline_ms=meta["deadline_ms"],
            invoked_function_arn=meta["arn"],
            function_name=spec["function_name"],
            function_version=spec["function_version"],
            memory_limit_in_mb=str(spec["memory_mb"]),  # a string, as in AWS's runtime (env var value)
            log_group_name=spec["log_group"],
            log_stream_name=spec["log_stream"],
            client_context=meta.get("cc"),
            identity=meta.get("identity"),
            tenant_id=meta.get("tenant"),
        )
        started = time.perf_counter()
        try:
            event = json.loads(payload) if payload else None
            result = self.handler(event, context)
            try:
                out = _RESULT_ENCODER.encode(result).encode()
                kind = protocol.RESULT
            except (TypeError, ValueError, OverflowError) as exc:
                out = json.dumps(
                    {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError", "requestId": request_id, "stackTrace": []}
                ).encode()
                kind = protocol.ERROR
        except Exception as exc:
            error = error_object(exc, request_id)
            _log_error(error)
            out = error_bytes(error)
            kind = protocol.ERROR
        duration_ms = (time.perf_counter() - started) * 1000.0
        sys.stdout.flush()
        sys.stderr.flush()
        if len(out) > protocol.MAX_RESULT:
            # Far beyond Lambda's response limit: say so instead of sending a frame the
            # control plane would refuse (it reports Function.ResponseSizeTooLarge).
            kind, out = protocol.RESULT_TOO_LARGE, b""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.sock.sendall(protocol.result_frame(kind, duration_ms, usage.ru_maxrss, out))


def error_bytes(error: dict[str, Any]) -> bytes:
    """The error object as JSON, cut down if it would not fit in a frame (a message of
    hundreds of megabytes must not cost the environment its life)."""
    out = json.dumps(error).encode()
    if len(out) <= protocol.MAX_RESULT:
        return out
    cut = {**error, "errorMessage": str(error.get("errorMessage", ""))[: protocol.LOG_CHUNK] + " [truncated]", "stackTrace": []}
    return json.dumps(cut).encode()


def _add_layers(layers_dir: str, runtime: str) -> None:
    """The function's layers, as Lambda's Python runtime searches them: right after the task
    root, python/lib/python3.X/site-packages (a site directory: its .pth files count), then
    python/. https://docs.aws.amazon.com/lambda/latest/dg/python-package.html#python-package-searchpath
    and https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html"""
    site_dir = os.path.join(layers_dir, "python", "lib", runtime, "site-packages")
    known = len(sys.path)
    site.addsitedir(site_dir)  # appends it and what its .pth files name
    added = [entry for entry in sys.path[known:]] or [site_dir]
    del sys.path[known:]
    sys.path[1:1] = [*added, os.path.join(layers_dir, "python")]


def _hide_runtime() -> None:
    """Drop the folder our runtime package was imported from out of sys.path, so user code
    cannot import it (or anything else of ours) by accident."""
    package = __name__.rpartition(".")[0]
    sys.path[:] = [entry for entry in sys.path if not os.path.isdir(os.path.join(entry or ".", package))]


def run(sock: socket.socket, spec: dict[str, Any]) -> None:
    """Entry point in the forked child. Never returns normally: the caller exits."""
    _hide_runtime()
    os.setsid()  # own session: signals to the emulator's process group do not reach handlers
    proctree.hold_processes(spec)
    os.environ.clear()
    os.environ.update(spec["env"])
    task_root = spec["task_root"]
    os.chdir(task_root)
    sys.path.insert(0, task_root)
    if spec.get("layers_dir"):
        _add_layers(spec["layers_dir"], spec["runtime"])
    _watch_task_root_sources(task_root)
    stream = FrameLog(sock)
    sys.stdout = stream  # type: ignore[assignment]
    sys.stderr = stream  # type: ignore[assignment]
    log_handler = LambdaLogHandler(json_format=os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON")
    root = logging.getLogger()
    root.handlers[:] = [log_handler]
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper()
    root.setLevel(_LEVELS.get(level, level))

    started = time.perf_counter()
    try:
        handler = load_handler(spec["handler"])
    except SystemExit as exc:  # the control plane reports it as Runtime.ExitError
        stream.flush()
        os._exit(exit_code(exc))
    except BaseException as exc:  # init failure: report, then exit so the environment is replaced
        error = error_object(exc, None, skip_frames=0)
        _log_error(error)
        stream.flush()
        sock.sendall(protocol.frame(protocol.INIT_ERROR, error_bytes(error)))
        os._exit(1)
    init_ms = (time.perf_counter() - started) * 1000.0
    stream.flush()
    sock.sendall(protocol.frame_with_meta(protocol.READY, {"init_ms": init_ms}, b""))
    Runner(sock, handler, spec, log_handler).serve()


def exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 1
