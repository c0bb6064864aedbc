"""Payloads and requests of `emulator load` (emulator/load/payloads.py, targets.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from emulator.load.payloads import PayloadError, PayloadSource, payload_spec
from emulator.load.targets import TargetError, classify, target_spec, RequestBuilder

ENDPOINT = "http://127.0.0.1:3001"


def source(settings: dict, base: Path = Path("."), worker: int = 0, seed: int | None = 3) -> PayloadSource:
    return PayloadSource(payload_spec(settings, base), worker, seed)


def test_fixed_payloads_are_built_once() -> None:
    fixed = source({"payload": {"a": 1}})
    assert fixed.static == b'{"a": 1}' and fixed(5) == b'{"a": 1}'
    assert source({}).static == b"{}"
    assert source({"payload": "plain text"})(0) == b"plain text"


def test_template_variables() -> None:
    make = source({"template": '{"n": {{sequence}}, "w": {{worker}}, "id": "{{uuid}}", "r": {{random}}, '
                               '"k": {{random_int:3:5}}, "t": {{time}}, "ms": {{time_ms}}, "at": "{{iso_time}}"}'}, worker=2)
    assert make.static is None
    first, second = json.loads(make(0)), json.loads(make(7))
    assert (first["n"], second["n"], first["w"]) == (0, 7, 2)
    assert uuid.UUID(first["id"]).version == 4 and first["id"] != second["id"]
    assert 0 <= first["r"] < 1 and 3 <= first["k"] <= 5
    assert first["ms"] // 1000 == pytest.approx(first["t"], abs=1) and first["at"].endswith("Z")
    again = source({"template": "{{uuid}} {{random}}"}, worker=2)
    assert source({"template": "{{uuid}} {{random}}"}, worker=2)(0) == again(0)  # seeded per worker
    with pytest.raises(PayloadError, match="unknown variable"):
        payload_spec({"template": "{{nope}}"}, Path("."))
    with pytest.raises(PayloadError):
        payload_spec({"template": "{{random_int}}"}, Path("."))


def test_lines_of_a_file_in_turn(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    make = source({"payload_file": "events.jsonl"}, tmp_path)
    assert [make(i) for i in range(3)] == [b'{"a": 1}', b'{"a": 2}', b'{"a": 1}']
    (tmp_path / "whole.json").write_text('{"big": true}\n')
    assert source({"payload_file": "whole.json"}, tmp_path).static == b'{"big": true}\n'
    with pytest.raises(PayloadError, match="missing.jsonl"):
        payload_spec({"payload_file": "missing.jsonl"}, tmp_path)


def test_a_generator_function(tmp_path: Path) -> None:
    (tmp_path / "make_orders.py").write_text("def order(index, rng):\n    return {'order': index, 'qty': rng.randint(1, 9)}\n")
    make = source({"generator": "make_orders:order"}, tmp_path)
    assert json.loads(make(4))["order"] == 4
    with pytest.raises(PayloadError):
        source({"generator": "make_orders:missing"}, tmp_path)
    with pytest.raises(PayloadError, match="module:function"):
        payload_spec({"generator": "no_colon"}, tmp_path)
    with pytest.raises(PayloadError, match="one of"):
        payload_spec({"payload": 1, "template": "x"}, tmp_path)


def test_requests_of_each_target() -> None:
    body = source({"template": '{"n": {{sequence}}}'})
    function = RequestBuilder(target_spec({"function": "hello", "invocation": "Event"}, ENDPOINT, "us-east-1"), body)
    request = function.build(3)
    assert request.startswith(b"POST /2015-03-31/functions/hello/invocations HTTP/1.1\r\n")
    assert b"X-Amz-Invocation-Type: Event\r\n" in request and request.endswith(b'\r\n\r\n{"n": 3}')
    queue = RequestBuilder(target_spec({"queue": f"{ENDPOINT}/1/orders", "batch": 3}, ENDPOINT, "us-east-1"), body)
    entries = json.loads(queue.build(2).split(b"\r\n\r\n", 1)[1])["Entries"]
    assert [e["MessageBody"] for e in entries] == ['{"n": 6}', '{"n": 7}', '{"n": 8}']
    stream = RequestBuilder(target_spec({"stream": "clicks", "batch": 2}, ENDPOINT, "us-east-1"), body)
    records = json.loads(stream.build(0).split(b"\r\n\r\n", 1)[1])["Records"]
    assert [r["PartitionKey"] for r in records] == ["0", "1"]
    assert b"/us-east-1/kinesis/aws4_request" in stream.build(0)
    static = RequestBuilder(target_spec({"url": "http://127.0.0.1:9/orders?x=1"}, ENDPOINT, "us-east-1"), source({}))
    assert static.static is not None and static.static.startswith(b"POST /orders?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n")


@pytest.mark.parametrize("settings", [{}, {"function": "a", "queue": "b"}, {"queue": "q", "batch": 11},
                                      {"stream": "s", "batch": 501}, {"url": "https://example.com/"},
                                      {"function": "f", "invocation": "DryRun"}])
def test_bad_targets(settings: dict) -> None:
    with pytest.raises(TargetError):
        target_spec(settings, ENDPOINT, "us-east-1")


def test_answers_of_batches() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"
    assert classify("queue", 200, ok, b'{"Successful": [{"Id": "0"}], "Failed": []}') == ("ok", "")
    assert classify("queue", 200, ok, b'{"Successful": [], "Failed": [{"Id": "0", "Code": "InternalError"}]}') == ("error", "InternalError")
    assert classify("stream", 200, ok, b'{"FailedRecordCount": 0, "Records": []}') == ("ok", "")
    failed = b'{"FailedRecordCount": 1, "Records": [{"ErrorCode": "ProvisionedThroughputExceededException"}]}'
    assert classify("stream", 200, ok, failed) == ("throttled", "ProvisionedThroughputExceededException")
    assert classify("topic", 400, ok, b"<ErrorResponse><Error><Code>NotFound</Code></Error></ErrorResponse>") == ("error", "NotFound")
    assert classify("url", 503, ok, b"") == ("error", "HTTP 503")
    assert classify("url", 429, ok, b"slow down") == ("throttled", "HTTP 429")
