"""The X-Ray trace header of an invocation, which the runtime puts in `_X_AMZN_TRACE_ID`.

Lambda gives every invocation one, tracing active or not (X-Ray SDKs and Powertools'
Tracer read it), in the tracing header's format
`Root=1-{8 hex digits: epoch seconds}-{24 hex digits};Parent={16 hex digits};Sampled={0|1}`
(https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader).
An `X-Amzn-Trace-Id` the caller sends is passed through (Lambda's PassThrough mode); what
is missing or malformed in it is made up. Locally nothing is sampled unless the caller
says so: there is no X-Ray daemon to send segments to.

Pure: the caller passes the time and the random bits.
"""

from __future__ import annotations

import re

# The id is 96 random bits after the time; the parent (segment) id, 64 bits.
RANDOM_BITS = 96 + 64
_ROOT = re.compile(r"1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}")
_PARENT = re.compile(r"[0-9a-fA-F]{16}")
# At most this much of an incoming header is looked at (a header of any length must cost little).
_MAX_INCOMING = 1024


_ROOT_BITS = (1 << 96) - 1
_PARENT_BITS = (1 << 64) - 1
# %-formatting: the cheapest way found (timeit) on a path every invocation takes.
_NEW = "Root=1-%08x-%024x;Parent=%016x;Sampled=0"


def trace_header(incoming: str | None, epoch_s: float, random_bits: int) -> str:
    """The invocation's trace header: `incoming`'s valid Root, Parent and Sampled, the rest new.
    `random_bits` holds at least RANDOM_BITS random bits."""
    if not incoming:
        return _NEW % (int(epoch_s) & 0xFFFFFFFF, random_bits & _ROOT_BITS, (random_bits >> 96) & _PARENT_BITS)
    root = parent = sampled = None
    if incoming:
        for field in incoming[:_MAX_INCOMING].split(";"):
            key, _, value = field.strip().partition("=")
            key = key.strip().lower()
            if key == "root" and _ROOT.fullmatch(value):
                root = value.lower()
            elif key == "parent" and _PARENT.fullmatch(value):
                parent = value.lower()
            elif key == "sampled" and value in ("0", "1"):
                sampled = value
    if root is None:
        root = f"1-{int(epoch_s) & 0xFFFFFFFF:08x}-{random_bits & _ROOT_BITS:024x}"
    if parent is None:
        parent = f"{(random_bits >> 96) & _PARENT_BITS:016x}"
    return f"Root={root};Parent={parent};Sampled={sampled or '0'}"
