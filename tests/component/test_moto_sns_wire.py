"""SNS's Publish and PublishBatch short path (emulator/moto_child/sns_wire.py) against moto's
own path, in this process with the SNS fan-out (fast_sns.py) applied.

Every request goes to moto's WSGI application twice: through the short path, and through
moto's normal path behind it (Flask, setup_class, the query parser and serializer). The
answers must be the same bytes, status line and headers, once the ids are blanked
(message ids and request ids are random), and so must what the message did: the SQS
messages it left (envelope or raw), the Lambda outbox's entries, the topic's counters.
Requests the short path does not read itself must come back to moto untouched.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import pytest

from emulator.moto_child import sns_query

pytestmark = pytest.mark.component

REGION, ACCOUNT = "us-east-1", "123456789012"
AUTH = f"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/{REGION}/sns/aws4_request, SignedHeaders=host, Signature=0"
_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_VOLATILE = ("MessageId", "Timestamp", "Signature", "UnsubscribeURL", "SigningCertURL")

WsgiCall = Callable[[Any, dict[str, Any], Callable[..., Any]], Any]


class Paths:
    """moto's application and the two ways into it."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.app = DomainDispatcherApplication(create_backend_app)
        self.short: WsgiCall = DomainDispatcherApplication.__call__
        self.normal: WsgiCall = DomainDispatcherApplication.__call__.__wrapped__

    def call(self, via: WsgiCall, form: dict[str, str] | list[tuple[str, str]], **headers: str) -> tuple[str, list[tuple[str, str]], bytes]:
        from werkzeug.test import EnvironBuilder

        environ = EnvironBuilder(path="/", method="POST", data=urlencode(form).encode(),
                                 content_type="application/x-www-form-urlencoded; charset=utf-8",
                                 headers={"Authorization": AUTH, **headers}).get_environ()
        started: list[Any] = []
        result = via(self.app, environ, lambda status, listed, exc_info=None: started.extend([status, listed]))
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        return started[0], list(started[1]), body

    def both(self, form: dict[str, str] | list[tuple[str, str]], **headers: str) -> tuple[Any, Any]:
        return self._answer(self.short, form, **headers), self._answer(self.normal, form, **headers)

    def _answer(self, via: WsgiCall, form: dict[str, str] | list[tuple[str, str]], **headers: str) -> Any:
        try:
            return normalised(self.call(via, form, **headers))
        except Exception as exc:  # moto fails on a few malformed requests (its server answers 500)
            return type(exc).__name__, str(exc)

    def xml(self, form: dict[str, str]) -> str:
        status, _, body = self.call(self.normal, form)
        assert status.startswith("200"), body
        return body.decode()


def normalised(answer: tuple[str, list[tuple[str, str]], bytes]) -> tuple[str, list[tuple[str, str]], str, int]:
    status, listed, body = answer
    request_id = dict(listed)["x-amzn-requestid"]
    text = _IDS.sub("<id>", body.decode().replace(request_id, "<request-id>"))
    headers = [(name, "<request-id>" if name == "x-amzn-requestid" else value)
               for name, value in listed if name.lower() != "content-length"]
    [length] = [int(value) for name, value in listed if name.lower() == "content-length"]
    return status, headers, text, length - len(body)


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Paths]:
    """fast_sns applied to this process's moto, every patched attribute restored after."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sns import models, responses

    from emulator.moto_child import fast_sns

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", DomainDispatcherApplication.__call__)
    monkeypatch.setattr(responses.SNSResponse, "subscribe", responses.SNSResponse.subscribe)
    for name in ("set_subscription_attributes", "reset"):
        monkeypatch.setattr(models.SNSBackend, name, getattr(models.SNSBackend, name))
    monkeypatch.setattr(models.Topic, "publish", models.Topic.publish)
    monkeypatch.setattr(models, "_emulator_fast_sns", False, raising=False)
    assert fast_sns.apply() is True
    yield Paths()


def new_topic(paths: Paths, fifo: bool = False, content_dedup: bool = False) -> str:
    form = {"Action": "CreateTopic", "Name": f"t-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")}
    if fifo:
        form.update({"Attributes.entry.1.key": "FifoTopic", "Attributes.entry.1.value": "true",
                     "Attributes.entry.2.key": "ContentBasedDeduplication",
                     "Attributes.entry.2.value": "true" if content_dedup else "false"})
    return re.search(r"<TopicArn>(.*)</TopicArn>", paths.xml(form)).group(1)


def entries(*items: dict[str, str]) -> dict[str, str]:
    form = {}
    for index, item in enumerate(items, 1):
        form.update({f"PublishBatchRequestEntries.member.{index}.{key}": value for key, value in item.items()})
    return form


def attributes(prefix: str, *items: tuple[str, str, str, str]) -> dict[str, str]:
    """(name, DataType, StringValue|BinaryValue, value) as the query protocol writes them."""
    form = {}
    for index, (name, data_type, kind, value) in enumerate(items, 1):
        form.update({f"{prefix}MessageAttributes.entry.{index}.Name": name,
                     f"{prefix}MessageAttributes.entry.{index}.Value.DataType": data_type,
                     f"{prefix}MessageAttributes.entry.{index}.Value.{kind}": value})
    return form


def publish_cases(topic: str, fifo_topic: str, dedup_topic: str) -> list[dict[str, str]]:
    missing = topic + "-missing"
    b64 = base64.b64encode(b"\x00\xffbin").decode()
    publish = {"Action": "Publish", "Version": "2010-03-31", "TopicArn": topic}
    return [
        {**publish, "Message": "hello"},
        {**publish, "Message": "<&>\"' é\n\ttabs", "Subject": "s <&>"},
        {**publish, "Message": ""},
        {**publish, "Message": "x", "Subject": "s" * 101},
        {**publish, "Message": "x" * (256 * 1024 + 1)},
        {**publish, "Message": "x", **attributes("", ("s", "String", "StringValue", "v <&>"), ("n", "Number", "StringValue", "1.5e3"),
                                                  ("b", "Binary", "BinaryValue", b64), ("a", "String.Array", "StringValue", '["x", 1]'))},
        {**publish, "Message": "x", **attributes("", ("n", "Number", "StringValue", "twelve"))},
        {**publish, "Message": "x", **attributes("", ("t", "Text", "StringValue", "v"))},
        {**publish, "Message": "x", **attributes("", ("e", "String", "StringValue", ""))},
        {**publish, "Message": "x", **attributes("", ("d", "", "StringValue", "v"))},
        {**publish, "Message": json.dumps({"default": "d", "sqs": "q", "lambda": {"nested": 1}}), "MessageStructure": "json"},
        {**publish, "Message": "not json", "MessageStructure": "json"},
        {**publish, "Message": json.dumps({"sqs": "q"}), "MessageStructure": "json"},
        {**publish, "Message": "x", "MessageStructure": "xml"},
        {**publish, "Message": "x", "MessageDeduplicationId": "d"},
        {**publish, "TopicArn": missing, "Message": "x"},
        {**publish, "TopicArn": "not-an-arn", "Message": "x"},
        {**publish, "TopicArn": fifo_topic, "Message": "x"},
        {**publish, "TopicArn": fifo_topic, "Message": "x", "MessageGroupId": "g"},
        {**publish, "TopicArn": fifo_topic, "Message": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d1"},
        {**publish, "TopicArn": dedup_topic, "Message": "x", "MessageGroupId": "g"},
        {"Action": "Publish", "PhoneNumber": "+15555550123", "Message": "sms"},
        {"Action": "Publish", "PhoneNumber": "555", "Message": "sms"},
        {"Action": "Publish", "TargetArn": missing, "Message": "x"},
    ]


def batch_cases(topic: str, fifo_topic: str) -> list[dict[str, str]]:
    batch = {"Action": "PublishBatch", "Version": "2010-03-31", "TopicArn": topic}
    return [
        {**batch, **entries({"Id": "a", "Message": "one"}, {"Id": "b <&>", "Message": "two", "Subject": "s"})},
        {**batch, **entries({"Id": "a", "Message": "one", **attributes("", ("k", "String", "StringValue", "v"))})},
        {**batch, **entries({"Id": "a", "Message": "x", **attributes("", ("n", "Number", "StringValue", "NaNx"))})},
        {**batch, **entries({"Id": "ok", "Message": "x"}, {"Id": "long", "Message": "x" * (256 * 1024 + 1)},
                            {"Id": "structure", "Message": "x", "MessageStructure": "xml"},
                            {"Id": "bad-json", "Message": "{", "MessageStructure": "json"},
                            {"Id": "dedup", "Message": "x", "MessageDeduplicationId": "d"}, {"Id": "", "Message": "empty id"})},
        {**batch, **entries(*({"Id": str(i), "Message": "x"} for i in range(11)))},
        {**batch, **entries({"Id": "same", "Message": "x"}, {"Id": "same", "Message": "y"})},
        {**batch, **entries({"Id": "no-message"})},
        batch,
        {**batch, "TopicArn": topic + "-missing", **entries({"Id": "a", "Message": "x"})},
        {**batch, "TopicArn": fifo_topic, **entries({"Id": "a", "Message": "x"})},
        {**batch, "TopicArn": fifo_topic, **entries({"Id": "a", "Message": "x", "MessageGroupId": "g"},
                                                     {"Id": "b", "Message": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d"})},
    ]


def test_short_path_answers_as_moto_does(paths: Paths) -> None:
    from emulator.moto_child import sns_wire

    topic, fifo_topic, dedup_topic = new_topic(paths), new_topic(paths, fifo=True), new_topic(paths, fifo=True, content_dedup=True)
    for form in publish_cases(topic, fifo_topic, dedup_topic) + batch_cases(topic, fifo_topic):
        assert sns_query.parse(urlencode(form).encode()) is not None, form  # the short path reads it
        short, normal = paths.both(form)
        assert short == normal, form
    # The short path itself answered those (moto's path is the one behind it).
    status, _, _ = paths.call(lambda app, environ, start: sns_wire.serve(environ, start), {
        "Action": "Publish", "TopicArn": topic, "Message": "x"})
    assert status == "200 OK"


@pytest.mark.parametrize("form", [
    [("Action", "Publish"), ("TopicArn", "{topic}"), ("Message", "x"), ("Unknown", "1")],
    [("Action", "Publish"), ("TopicArn", "{topic}"), ("Message", "x"), ("Message", "y")],
    [("Action", "Publish"), ("TopicArn", "{topic}"), ("Message", "x"), ("MessageAttributes.entry.1.Name", "k"),
     ("MessageAttributes.entry.1.Value.StringValue", "v")],
    [("Action", "Publish"), ("TopicArn", "{topic}"), ("Message", "x"), ("MessageAttributes.entry.2.Name", "k"),
     ("MessageAttributes.entry.2.Value.DataType", "String"), ("MessageAttributes.entry.2.Value.StringValue", "v")],
    [("Action", "Publish"), ("TopicArn", "{topic}"), ("Message", "x"), ("MessageAttributes.entry.1.Name", "k"),
     ("MessageAttributes.entry.1.Value.DataType", "Binary"), ("MessageAttributes.entry.1.Value.BinaryValue", "not base64!")],
    [("Action", "PublishBatch"), ("TopicArn", "{topic}"), ("PublishBatchRequestEntries.member.1.Id", "a"),
     ("PublishBatchRequestEntries.member.1.Message", "x"), ("PublishBatchRequestEntries.member.3.Id", "c"),
     ("PublishBatchRequestEntries.member.3.Message", "x")],
    [("Action", "PublishBatch"), ("TopicArn", "{topic}"), ("PublishBatchRequestEntries", "")],
    [("Action", "Publish"), ("TopicArn", "{topic}"), ("Message", "x"), ("ContentType", "JSON")],
], ids=["unknown-key", "twice", "no-data-type", "index-gap", "not-base64", "entry-gap", "empty-list", "json-answer"])
def test_requests_the_short_path_does_not_read_go_to_moto_untouched(paths: Paths, form: list[tuple[str, str]]) -> None:
    topic = new_topic(paths)
    filled = [(key, value.replace("{topic}", topic)) for key, value in form]
    assert sns_query.parse(urlencode(filled).encode()) is None
    short, normal = paths.both(filled)
    assert short == normal


def test_non_sns_and_unsigned_requests_are_not_taken(paths: Paths) -> None:
    from werkzeug.test import EnvironBuilder

    from emulator.moto_child import sns_wire

    form = urlencode({"Action": "Publish", "TopicArn": new_topic(paths), "Message": "x"}).encode()
    for headers in ({"Authorization": AUTH.replace("/sns/", "/sqs/")}, {}, {"Authorization": AUTH, "Origin": "http://x"},
                    {"Authorization": AUTH, "Content-Encoding": "gzip"}):
        environ = EnvironBuilder(path="/", method="POST", data=form, content_type="application/x-www-form-urlencoded",
                                 headers=headers).get_environ()
        assert sns_wire.serve(environ, lambda *args: None) is None
        assert environ["wsgi.input"].read() in (form, b"")  # put back when it was read


def sqs_subscription(paths: Paths, topic: str, raw: bool = False, policy: dict[str, Any] | None = None) -> Any:
    from moto.sqs.models import sqs_backends

    name = f"q-{uuid.uuid4().hex[:12]}"
    queue = sqs_backends[ACCOUNT][REGION].create_queue(name)
    form = {"Action": "Subscribe", "TopicArn": topic, "Protocol": "sqs", "Endpoint": queue.queue_arn}
    extra = ({"RawMessageDelivery": "true"} if raw else {}) | ({"FilterPolicy": json.dumps(policy)} if policy else {})
    for index, (key, value) in enumerate(extra.items(), 1):
        form.update({f"Attributes.entry.{index}.key": key, f"Attributes.entry.{index}.value": value})
    paths.xml(form)
    return queue


def drained(queue: Any) -> list[Any]:
    messages = []
    for message in queue._messages:
        body = message.body
        if body.startswith("{"):
            body = {k: ("<v>" if k in _VOLATILE else v) for k, v in json.loads(body).items()}
        messages.append((body, message.message_attributes))
    queue._messages.clear()
    return messages


def test_a_message_reaches_the_same_subscriptions_either_way(paths: Paths) -> None:
    from emulator.moto_child.sns_outbox import COUNTERS, OUTBOX

    topic = new_topic(paths)
    enveloped, raw = sqs_subscription(paths, topic), sqs_subscription(paths, topic, raw=True)
    filtered = sqs_subscription(paths, topic, policy={"colour": ["blue"]})
    paths.xml({"Action": "Subscribe", "TopicArn": topic, "Protocol": "lambda",
               "Endpoint": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"})
    forms = [
        {"Action": "Publish", "TopicArn": topic, "Message": "m <&>", "Subject": "s",
         **attributes("", ("colour", "String", "StringValue", "blue"), ("b", "Binary", "BinaryValue", "AAE="))},
        {"Action": "Publish", "TopicArn": topic, "Message": "m", **attributes("", ("colour", "String", "StringValue", "red"))},
        {"Action": "Publish", "TopicArn": topic, "Message": json.dumps({"default": "d", "sqs": "q"}), "MessageStructure": "json"},
        {"Action": "PublishBatch", "TopicArn": topic, **entries(
            {"Id": "1", "Message": "b1", **attributes("", ("colour", "String", "StringValue", "blue"))}, {"Id": "2", "Message": "b2"})},
    ]
    OUTBOX.clear()
    COUNTERS.clear()
    seen = {}
    for name in ("short", "normal"):
        for form in forms:
            status, _, body = paths.call(getattr(paths, name), form)
            assert status == "200 OK", body
        _, outbox = OUTBOX.take(name, 0, 0, 100)
        seen[name] = ([drained(queue) for queue in (enveloped, raw, filtered)],
                      [{k: ("<v>" if k in _VOLATILE else v) for k, v in message.items()} for message in outbox],
                      COUNTERS.snapshot())
        OUTBOX.clear()  # what was taken too: the next round's consumer would get it back
        COUNTERS.clear()
    assert seen["short"] == seen["normal"]
    queues, outbox, counters = seen["short"]
    assert [len(messages) for messages in queues] == [5, 5, 2] and len(outbox) == 5
    assert counters[topic]["NumberOfMessagesPublished"] == 5


# -- the reader and the writers, against moto's parser and serializer ------------------------------
@pytest.mark.parametrize("form", [
    {"Action": "Publish", "TopicArn": "t", "Message": "", "Subject": "s", "MessageGroupId": "g", "MessageDeduplicationId": "d",
     "MessageStructure": "json", "TargetArn": "a", "PhoneNumber": "+1", **attributes(
         "", ("s", "String", "StringValue", "v"), ("b", "Binary", "BinaryValue", "AAE="), ("s", "Number", "StringValue", "2"))},
    {"Action": "PublishBatch", "TopicArn": "t", **entries(
        {"Id": "1", "Message": "m", "Subject": "", "MessageStructure": "json", "MessageGroupId": "g", "MessageDeduplicationId": "d",
         **attributes("", ("k", "String", "StringValue", "v"), ("z", "Binary", "BinaryValue", "AA=="))},
        *({"Id": str(i), "Message": "m"} for i in range(2, 12)))},
    {"Action": "PublishBatch", "TopicArn": "t"},
    {"Action": "Publish"},
])
def test_the_reader_gives_what_motos_parser_gives(form: dict[str, str]) -> None:
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.utils import get_service_model
    from werkzeug.datastructures import MultiDict

    body = urlencode(form).encode()
    action, params = sns_query.parse(body)
    parser = PROTOCOL_PARSERS["query"](get_service_model("sns").operation_model(action), map_type=dict)
    expected = parser.parse({"method": "POST", "values": MultiDict(list(form.items())), "headers": {}, "body": body,
                             "url_path": "/", "url_params": {}})
    assert (json.dumps(params, default=repr), action) == (json.dumps(expected, default=repr), form["Action"])


@pytest.mark.parametrize("action, result", [
    ("Publish", {"MessageId": "m-1"}),
    ("Publish", {"MessageId": ""}),
    ("PublishBatch", {"Successful": [], "Failed": []}),
    ("PublishBatch", {"Successful": [{"MessageId": "m", "Id": "<&>\"'\r\n é"}, {"MessageId": "n", "Id": ""}],
                      "Failed": [{"Id": "x", "Code": "InvalidParameter", "Message": "a < b & c", "SenderFault": True},
                                 {"Id": "y", "Code": "C", "Message": "", "SenderFault": False}]}),
])
def test_the_writers_give_what_motos_serializer_gives(action: str, result: dict[str, Any]) -> None:
    from moto.core.responses import ActionResult
    from moto.sns.responses import SNSResponse

    response = SNSResponse()
    response.headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response.querystring = {"Action": [action]}
    response.response_headers = {}
    _, _, expected = response.serialized(ActionResult(result))
    writer = sns_query.publish_body if action == "Publish" else sns_query.publish_batch_body
    assert writer(result, "request-id") == expected.encode()
    assert writer({**result, "Other": 1}, "request-id") is None
