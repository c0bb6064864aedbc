"""The framed protocol between the control plane and one execution environment.

One stream socket per environment. Every frame is a 5-byte header (body length, kind)
followed by the body. Invocation and result frames carry a small JSON "meta" part and
the raw payload bytes after it, so the control plane never re-encodes user payloads.

Why not HTTP (the Lambda Runtime API style): docs/measurements.md records ~52 µs per
round trip for a length-prefixed Unix socket versus 260-300 µs for an HTTP long-poll.

This module is imported by both sides; it must stay free of control-plane imports.
"""

from __future__ import annotations

import json
import struct

HEADER = struct.Struct("!IB")  # body length, frame kind
META_LEN = struct.Struct("!I")

# control plane -> environment
INVOKE = 1
# environment -> control plane
READY = 10  # init finished: meta {"init_ms": float}
INIT_ERROR = 11  # init failed: body is the AWS error object (JSON); the process then exits
LOG = 12  # body is UTF-8 log text written by the handler (whole lines where possible)
RESULT = 13  # RESULT_META (duration ms, max RSS KiB) + the handler's JSON result
ERROR = 14  # RESULT_META + the AWS error object (JSON)
RESULT_TOO_LARGE = 15  # RESULT_META only: the handler's result did not fit in a frame

# Fixed binary fields instead of JSON: result frames are on every invocation's hot path.
RESULT_META = struct.Struct("!dQ")

# Far above Lambda's 6 MB payload limits; a larger length is corrupt or hostile. Both sides
# check it before reading a body: the environment exits, the control plane kills the
# environment (never allocating the length it was told).
MAX_FRAME = 64 * 1024 * 1024
MAX_RESULT = MAX_FRAME - RESULT_META.size
LOG_CHUNK = 256 * 1024  # handler output travels in LOG frames of at most this many bytes
EXIT_BAD_FRAME = 76  # the environment's exit code after a frame over MAX_FRAME (sysexits EX_PROTOCOL)


def frame(kind: int, body: bytes) -> bytes:
    return HEADER.pack(len(body), kind) + body


def frame_with_meta(kind: int, meta: dict, payload: bytes) -> bytes:
    encoded = json.dumps(meta, separators=(",", ":")).encode()
    return b"".join(
        (HEADER.pack(META_LEN.size + len(encoded) + len(payload), kind), META_LEN.pack(len(encoded)), encoded, payload)
    )


def result_frame(kind: int, duration_ms: float, max_rss_kb: int, payload: bytes) -> bytes:
    return b"".join((HEADER.pack(RESULT_META.size + len(payload), kind), RESULT_META.pack(duration_ms, max_rss_kb), payload))


def split_result(body: bytes | memoryview) -> tuple[float, int, bytes]:
    duration_ms, max_rss_kb = RESULT_META.unpack_from(body, 0)
    return duration_ms, max_rss_kb, bytes(body[RESULT_META.size :])


def invoke_frame(request_id: str, deadline_ms: int, arn_json: str, client_context_json: str, payload: bytes,
                 trace: str = "", tenant_json: str | None = None) -> bytes:
    """An INVOKE frame; `arn_json`, `client_context_json` and `tenant_json` are already
    JSON-encoded; `trace` is an X-Ray trace header (letters, digits, '-', '=', ';').

    Formatted by hand because json.dumps of the meta dict cost more than the rest of the
    frame (request ids are hex and dashes, deadlines integers: nothing to escape).
    """
    tenant = "" if tenant_json is None else f',"tenant":{tenant_json}'
    meta = (f'{{"id":"{request_id}","deadline_ms":{deadline_ms},"arn":{arn_json},"cc":{client_context_json},'
            f'"trace":"{trace}"{tenant}}}').encode()
    return b"".join((HEADER.pack(META_LEN.size + len(meta) + len(payload), INVOKE), META_LEN.pack(len(meta)), meta, payload))


def split_meta(body: bytes | memoryview) -> tuple[dict, bytes]:
    (meta_len,) = META_LEN.unpack_from(body, 0)
    start = META_LEN.size
    meta = json.loads(bytes(body[start : start + meta_len]))
    return meta, bytes(body[start + meta_len :])
