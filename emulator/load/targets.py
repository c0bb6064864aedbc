"""What a request is sent to, how its bytes are built, and what its answer means.

Targets (docs/load-testing.md, "Targets"):

    function: hello                 Invoke, synchronous (invocation: Event for asynchronous)
    queue: orders                   SQS SendMessageBatch (batch: 1-10 messages per call)
    stream: clicks                  Kinesis PutRecords (batch: 1-500 records per call)
    topic: alerts                   SNS Publish
    url: http://127.0.0.1:3002/orders   any HTTP route (method, headers), e.g. an API Gateway front door

Requests are built as bytes: a head prepared once, the body (the payload) per request,
or the whole request once when the payload never changes. The AWS calls carry a SigV4-
shaped Authorization header naming the service: the emulator routes by it and, like moto,
does not check signatures, so none is computed. Answers are classified without parsing
the body of a plain success: `ok`, `throttled` (with its Reason or error code) or
`error` (with the function's errorType, the AWS error code, the HTTP status).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from emulator.load.payloads import PayloadSource
from emulator.load.series import ERROR, OK, THROTTLED

TARGET_KINDS = ("function", "queue", "stream", "topic", "url")
# SendMessageBatch: at most 10 entries; PutRecords: at most 500 records
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html,
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html).
MAX_SQS_BATCH = 10
MAX_KINESIS_BATCH = 500
# Error codes that mean "slow down" in the AWS APIs the generator calls.
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestThrottled",
                              "ProvisionedThroughputExceededException", "KMSThrottlingException",
                              "LimitExceededException", "RequestLimitExceeded"})
_AUTH = ("AWS4-HMAC-SHA256 Credential=AKIALOADGENERATOR000/{day}/{region}/{service}/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=0")


class TargetError(ValueError):
    """A target that cannot be used; the message says why."""


@dataclass(frozen=True)
class TargetSpec:
    """Picklable: everything a worker needs to build requests and read answers."""

    kind: str  # one of TARGET_KINDS
    name: str  # function, queue URL, stream name, topic ARN, or the URL
    host: str
    port: int
    invocation: str = "RequestResponse"  # function: RequestResponse or Event
    qualifier: str | None = None
    batch: int = 1
    fifo_groups: int = 1  # FIFO queues: messages spread over this many message groups
    partition_key: str = "sequence"  # stream: "sequence" or "random"
    method: str = "POST"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    region: str = "us-east-1"
    label: str = ""  # how the display and the report name the target
    extra: dict[str, Any] = field(default_factory=dict)


def target_spec(settings: dict[str, Any], endpoint: str, region: str) -> TargetSpec:
    """From a scenario's `target:` settings; `endpoint` is the emulator's URL."""
    kinds = [kind for kind in TARGET_KINDS if settings.get(kind)]
    if len(kinds) != 1:
        raise TargetError(f"a target names exactly one of {', '.join(TARGET_KINDS)} (got {', '.join(kinds) or 'none'})")
    kind = kinds[0]
    name = str(settings[kind])
    url = urlsplit(name if kind == "url" else endpoint)
    if url.scheme != "http" or not url.hostname:
        raise TargetError(f"{'url' if kind == 'url' else 'the endpoint'} must be an http:// URL, got {url.geturl()!r}")
    port = url.port or 80
    batch = int(settings.get("batch") or 1)
    limit = {"queue": MAX_SQS_BATCH, "stream": MAX_KINESIS_BATCH}.get(kind, 1)
    if not 1 <= batch <= limit:
        raise TargetError(f"batch must be between 1 and {limit} for a {kind} target, got {batch}")
    invocation = str(settings.get("invocation") or "RequestResponse")
    if invocation not in ("RequestResponse", "Event"):
        raise TargetError(f"invocation must be RequestResponse or Event, got {invocation!r}")
    headers = settings.get("headers") or {}
    if not isinstance(headers, dict):
        raise TargetError("headers must be a mapping")
    partition_key = str(settings.get("partition_key") or "sequence")
    if partition_key not in ("sequence", "random"):
        raise TargetError(f"partition_key must be sequence or random, got {partition_key!r}")
    label = {"function": f"function {name}" + (" (Event)" if invocation == "Event" else ""), "queue": f"queue {name}",
             "stream": f"stream {name}", "topic": f"topic {name}", "url": name}[kind]
    return TargetSpec(
        kind=kind, name=name, host=url.hostname, port=port, invocation=invocation,
        qualifier=settings.get("qualifier"), batch=batch, fifo_groups=int(settings.get("message_groups") or 1),
        partition_key=partition_key, method=str(settings.get("method") or "POST").upper(),
        path=(url.path or "/") + (f"?{url.query}" if url.query else "") if kind == "url" else "/",
        headers=tuple((str(k), str(v)) for k, v in headers.items()), region=region, label=label,
    )


def _auth(service: str, region: str) -> str:
    return _AUTH.format(day=time.strftime("%Y%m%d", time.gmtime()), region=region, service=service)


class RequestBuilder:
    """Bytes of request number `index` (in the run, over all workers)."""

    def __init__(self, spec: TargetSpec, payloads: PayloadSource) -> None:
        self.spec = spec
        self.payloads = payloads
        host = f"{spec.host}:{spec.port}"
        kind = spec.kind
        if kind == "function":
            path = f"/2015-03-31/functions/{quote(spec.name, safe='')}/invocations"
            if spec.qualifier:
                path += f"?Qualifier={quote(str(spec.qualifier), safe='')}"
            headers = [("Content-Type", "application/json")]
            if spec.invocation == "Event":
                headers.append(("X-Amz-Invocation-Type", "Event"))
            self._head = _head("POST", path, host, headers)
            self._body = payloads
        elif kind == "queue":
            self._head = _head("POST", "/", host, [
                ("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "AmazonSQS.SendMessageBatch"),
                ("Authorization", _auth("sqs", spec.region)), ("X-Amz-Date", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))])
            self._body = self._sqs_body
            self._fifo = spec.name.endswith(".fifo")
        elif kind == "stream":
            self._head = _head("POST", "/", host, [
                ("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "Kinesis_20131202.PutRecords"),
                ("Authorization", _auth("kinesis", spec.region)), ("X-Amz-Date", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))])
            self._body = self._kinesis_body
        elif kind == "topic":
            self._head = _head("POST", "/", host, [
                ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
                ("Authorization", _auth("sns", spec.region)), ("X-Amz-Date", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))])
            self._body = self._sns_body
        else:
            headers = list(spec.headers)
            if spec.method not in ("GET", "HEAD", "DELETE") and not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/json"))
            self._head = _head(spec.method, spec.path, host, headers)
            self._body = (lambda index: b"") if spec.method in ("GET", "HEAD") else payloads
        self.static: bytes | None = None
        if payloads.static is not None and kind in ("function", "url"):
            self.static = self.build(0)

    def build(self, index: int) -> bytes:
        body = self._body(index)
        return self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def _entries(self, index: int) -> range:
        batch = self.spec.batch
        return range(index * batch, index * batch + batch)

    def _sqs_body(self, index: int) -> bytes:
        entries = []
        for n, i in enumerate(self._entries(index)):
            entry: dict[str, Any] = {"Id": str(n), "MessageBody": self.payloads(i).decode("utf-8", "replace")}
            if self._fifo:
                entry["MessageGroupId"] = f"g{i % self.spec.fifo_groups}"
                entry["MessageDeduplicationId"] = f"{self.payloads.worker}-{i}-{time.monotonic_ns()}"
            entries.append(entry)
        return json.dumps({"QueueUrl": self.spec.name, "Entries": entries}).encode()

    def _kinesis_body(self, index: int) -> bytes:
        rng = self.payloads.rng
        records = [{"Data": base64.b64encode(self.payloads(i)).decode(),
                    "PartitionKey": str(i) if self.spec.partition_key == "sequence" else str(rng.getrandbits(64))}
                   for i in self._entries(index)]
        return json.dumps({"StreamName": self.spec.name, "Records": records}).encode()

    def _sns_body(self, index: int) -> bytes:
        message = quote(self.payloads(index).decode("utf-8", "replace"), safe="")
        return f"Action=Publish&Version=2010-03-31&TopicArn={quote(self.spec.name, safe='')}&Message={message}".encode()


def _head(method: str, path: str, host: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


# -- answers --------------------------------------------------------------------------------
def header(head: bytes, name: bytes) -> bytes | None:
    """A response header's value (name in lower case), or None."""
    lowered = head.lower()
    start = lowered.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start:end if end >= 0 else len(head)].strip()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _aws_code(head: bytes, body: bytes) -> str:
    value = header(head, b"x-amzn-errortype")
    if value:
        return value.decode("latin-1").split(":")[0]
    parsed = _json(body)
    if isinstance(parsed, dict):
        code = str(parsed.get("__type") or parsed.get("code") or "")
        if code:
            return code.rsplit("#", 1)[-1]
    start = body.find(b"<Code>")
    if start >= 0:
        end = body.find(b"</Code>", start)
        return body[start + 6:end].decode("utf-8", "replace")
    return ""


def classify(kind: str, status: int, head: bytes, body: bytes) -> tuple[str, str]:
    """(ok | throttled | error, detail) of an answer."""
    if 200 <= status < 300:
        if kind == "function":
            if b"x-amz-function-error" not in head.lower():
                return OK, ""
            parsed = _json(body)
            error_type = parsed.get("errorType") if isinstance(parsed, dict) else None
            return ERROR, f"Function error: {error_type or header(head, b'x-amz-function-error').decode()}"  # type: ignore[union-attr]
        if kind == "queue" and b'"Failed"' in body and b'"Failed":[]' not in body and b'"Failed": []' not in body:
            parsed = _json(body)
            failed = parsed.get("Failed") if isinstance(parsed, dict) else None
            if failed:
                code = str(failed[0].get("Code") or "BatchEntryFailed")
                return (THROTTLED if code in THROTTLING_CODES else ERROR), code
        if kind == "stream" and b'"FailedRecordCount":0' not in body and b'"FailedRecordCount": 0' not in body:
            parsed = _json(body)
            if isinstance(parsed, dict) and parsed.get("FailedRecordCount"):
                codes = [r.get("ErrorCode") for r in parsed.get("Records") or () if r.get("ErrorCode")]
                code = str(codes[0]) if codes else "RecordFailed"
                return (THROTTLED if code in THROTTLING_CODES else ERROR), code
        return OK, ""
    if status == 429:
        parsed = _json(body)
        reason = parsed.get("Reason") if isinstance(parsed, dict) else None
        return THROTTLED, str(reason or _aws_code(head, body) or "HTTP 429")
    code = _aws_code(head, body) if kind != "url" else ""
    if code in THROTTLING_CODES:
        return THROTTLED, code
    return ERROR, code or f"HTTP {status}"
