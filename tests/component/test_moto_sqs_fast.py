"""moto's SQS behaviour through boto3, against the moto server the emulator starts (with
emulator/moto_child/fast_sqs.py applied) and, for parity, against plain moto.

Each test named `test_parity_*` runs the same assertions against both servers. Where the
fast model deliberately differs from moto, it follows AWS, and the test says so:

- retention: messages older than MessageRetentionPeriod are deleted and no longer counted
  (AWS). moto keeps them, counts them, and stops a receive at the first expired message
  after marking it received;
- FIFO: one receive returns as many messages of one group as it can before the next
  group (AWS, "FIFO queue logic"); moto interleaves groups in arrival order. After a
  visibility timeout moto can deliver a later message of a group before earlier ones;
  this model keeps each group's order;
- FIFO deduplication: a deduplication ID is remembered for 5 minutes from its first send
  even after that message is deleted (AWS); moto only compares with messages still queued;
- receives are serialized by a lock: two concurrent receivers never get the same message
  (moto 5.2 has no lock);
- moto's own Lambda event source mappings on a queue are not run (the emulator never
  registers them: its pollers own the mappings).

Waits on moto's real clock use 1-second timeouts; long polls are bounded.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from backend_testkit import moto_client
from emulator.moto_child import fast_sqs as moto_sqs_fast, versions
from emulator.backend.moto_process import MotoServer
from emulator.moto_child.sqs_store import COMPACT_FACTOR, COMPACT_SLACK

pytestmark = pytest.mark.component

TIMER_S = 1  # the shortest visibility timeout / delay / retention SQS accepts in moto
# moto's visibility, delay and retention timers run in real time: the tests sleep past them
# (the behaviour under test; a sleep longer than the timer always suffices).
PAST_TIMER_S = 1.25
MEMORY_ROUNDS = 150  # 1,500 messages: more than COMPACT_SLACK, so the heaps were compacted


def client(server: MotoServer, service: str = "sqs") -> Any:
    return moto_client(server, service)


@pytest.fixture(params=["fast", "plain"])
def sqs(request: pytest.FixtureRequest, servers: dict[str, MotoServer]) -> Any:
    return client(servers[request.param])


@pytest.fixture
def fast_sqs(servers: dict[str, MotoServer]) -> Any:
    return client(servers["fast"])


def new_queue(sqs: Any, fifo: bool = False, **attributes: Any) -> str:
    name = f"q-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
    if fifo:
        attributes["FifoQueue"] = "true"
    return sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]


def receive(sqs: Any, url: str, count: int = 10, **kwargs: Any) -> list[dict[str, Any]]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, MessageSystemAttributeNames=["All"],
                               MessageAttributeNames=["All"], **kwargs).get("Messages", [])


def counts(sqs: Any, url: str) -> tuple[int, int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return tuple(int(attributes[name]) for name in names)  # type: ignore[return-value]


def send_batch(sqs: Any, url: str, bodies: list[str], **entry: Any) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body, **entry} for i, body in enumerate(bodies[start:start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


# -- visibility --------------------------------------------------------------------------------
def test_parity_visibility_timeout_and_receive_counts(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout=TIMER_S)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    [first] = receive(sqs, url)
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    first_receive = first["Attributes"]["ApproximateFirstReceiveTimestamp"]
    assert int(first_receive) >= int(first["Attributes"]["SentTimestamp"])
    assert receive(sqs, url) == []
    assert counts(sqs, url) == (0, 1, 0)
    time.sleep(PAST_TIMER_S)
    assert counts(sqs, url) == (1, 0, 0)
    [again] = receive(sqs, url)
    assert again["MessageId"] == first["MessageId"] and again["ReceiptHandle"] != first["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["Attributes"]["ApproximateFirstReceiveTimestamp"] == first_receive


def test_parity_change_message_visibility(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    [message] = receive(sqs, url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    [again] = receive(sqs, url, VisibilityTimeout=0)
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    result = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "ReceiptHandle": again["ReceiptHandle"], "VisibilityTimeout": 60},
        {"Id": "bad", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 60},
    ])
    assert [e["Id"] for e in result["Successful"]] == ["ok"]
    assert [(e["Id"], e["Code"]) for e in result["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    assert receive(sqs, url) == [] and counts(sqs, url) == (0, 1, 0)
    with pytest.raises(ClientError) as error:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=43_201)
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as error:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="not-a-handle", VisibilityTimeout=1)
    assert error.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"


# -- redrive -----------------------------------------------------------------------------------
def test_parity_redrive_to_the_dead_letter_queue_at_receive(sqs: Any) -> None:
    dlq = new_queue(sqs)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = new_queue(sqs, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert len(receive(sqs, url, VisibilityTimeout=0)) == 1
    assert receive(sqs, url) == []  # moved, as moto does it: during a receive
    assert counts(sqs, url) == (0, 0, 0)
    [moved] = receive(sqs, dlq)
    assert moved["Body"] == "poison" and moved["Attributes"]["ApproximateReceiveCount"] == "3"


# -- FIFO --------------------------------------------------------------------------------------
def test_parity_fifo_group_order_and_in_flight_groups_wait(sqs: Any) -> None:
    url = new_queue(sqs, fifo=True, ContentBasedDeduplication="true")
    for body, group in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("a3", "A")]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    got = receive(sqs, url, count=2)
    first_group = got[0]["Attributes"]["MessageGroupId"]
    assert [m["Body"] for m in got if m["Attributes"]["MessageGroupId"] == "A"] in (["a1", "a2"], ["a1"], [])
    rest = receive(sqs, url)  # groups with a message in flight wait
    assert all(m["Attributes"]["MessageGroupId"] != first_group for m in rest)
    seen = got + rest
    for group in "AB":
        in_order = [m["Body"] for m in seen if m["Attributes"]["MessageGroupId"] == group]
        assert in_order == sorted(in_order)
    for m in seen:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    remaining = receive(sqs, url)
    assert sorted(m["Body"] for m in seen + remaining) == ["a1", "a2", "a3", "b1", "b2"]


def test_fast_fifo_returns_one_group_first_and_keeps_order_after_a_timeout(fast_sqs: Any) -> None:
    url = new_queue(fast_sqs, fifo=True, ContentBasedDeduplication="true", VisibilityTimeout=TIMER_S)
    for body, group in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A")]:
        fast_sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    assert [m["Body"] for m in receive(fast_sqs, url, count=3)] == ["a1", "a2", "a3"]  # AWS: one group first
    assert [m["Body"] for m in receive(fast_sqs, url)] == ["b1"]
    time.sleep(PAST_TIMER_S)  # moto 5.2 may now hand out a3 before a1
    assert [m["Body"] for m in receive(fast_sqs, url, count=3)] == ["a1", "a2", "a3"]


def test_parity_fifo_deduplication(sqs: Any) -> None:
    content = new_queue(sqs, fifo=True, ContentBasedDeduplication="true")
    first = sqs.send_message(QueueUrl=content, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=content, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=content, MessageBody="other", MessageGroupId="g")
    assert first["MD5OfMessageBody"] == hashlib.md5(b"same").hexdigest()
    got = receive(sqs, content)
    assert [m["Body"] for m in got] == ["same", "other"]
    assert got[0]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same").hexdigest()
    explicit = new_queue(sqs, fifo=True)
    sent = [sqs.send_message(QueueUrl=explicit, MessageBody=body, MessageGroupId="g", MessageDeduplicationId=dedup)
            for body, dedup in [("one", "d1"), ("two", "d1"), ("three", "d2")]]
    assert all(s["SequenceNumber"] for s in sent)
    got = receive(sqs, explicit)
    assert [m["Body"] for m in got] == ["one", "three"]
    assert [m["Attributes"]["MessageDeduplicationId"] for m in got] == ["d1", "d2"]
    with pytest.raises(ClientError) as error:
        sqs.send_message(QueueUrl=explicit, MessageBody="no id", MessageGroupId="g")
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_fast_fifo_deduplication_outlives_the_deleted_message(fast_sqs: Any) -> None:
    url = new_queue(fast_sqs, fifo=True)
    fast_sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g", MessageDeduplicationId="d")
    [m] = receive(fast_sqs, url)
    fast_sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    fast_sqs.send_message(QueueUrl=url, MessageBody="again", MessageGroupId="g", MessageDeduplicationId="d")
    assert receive(fast_sqs, url) == []  # AWS: within 5 minutes of the first send


# -- delays and retention ------------------------------------------------------------------------
def test_parity_queue_and_message_delays(sqs: Any) -> None:
    delayed_queue = new_queue(sqs, DelaySeconds=TIMER_S)
    sqs.send_message(QueueUrl=delayed_queue, MessageBody="queue delay")
    plain_queue = new_queue(sqs)
    send_batch(sqs, plain_queue, ["message delay"], DelaySeconds=TIMER_S)
    sqs.send_message(QueueUrl=plain_queue, MessageBody="at once")
    assert counts(sqs, delayed_queue) == (0, 0, 1) and receive(sqs, delayed_queue) == []
    assert [m["Body"] for m in receive(sqs, plain_queue, VisibilityTimeout=0)] == ["at once"]
    assert counts(sqs, plain_queue) == (1, 0, 1)
    time.sleep(PAST_TIMER_S)
    assert counts(sqs, delayed_queue) == (1, 0, 0)
    assert [m["Body"] for m in receive(sqs, delayed_queue)] == ["queue delay"]
    assert sorted(m["Body"] for m in receive(sqs, plain_queue)) == ["at once", "message delay"]


def test_parity_retention_period(sqs: Any, request: pytest.FixtureRequest) -> None:
    url = new_queue(sqs, MessageRetentionPeriod=TIMER_S)
    sqs.send_message(QueueUrl=url, MessageBody="old")
    time.sleep(PAST_TIMER_S)
    assert receive(sqs, url) == []
    if "fast" in request.node.callspec.id:
        assert counts(sqs, url) == (0, 0, 0)  # deleted, as AWS does; moto keeps counting it


# -- long polling ------------------------------------------------------------------------------------
def test_parity_long_poll_returns_when_a_message_arrives(sqs: Any) -> None:
    url = new_queue(sqs)
    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        result["messages"] = receive(sqs, url, WaitTimeSeconds=10)
        result["waited"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    # Time for the poll to start waiting. The server's wait is not observable from here; a
    # poll that starts late receives at once, so a slow machine cannot make the test fail.
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    poller.join(timeout=15)
    assert [m["Body"] for m in result["messages"]] == ["wake up"]
    assert result["waited"] < 5  # well before the 10 s wait ends


def test_fast_long_poll_ends_after_its_wait(fast_sqs: Any) -> None:
    url = new_queue(fast_sqs)
    started = time.monotonic()
    assert receive(fast_sqs, url, WaitTimeSeconds=1) == []
    assert time.monotonic() - started >= 1


# -- purge and delete --------------------------------------------------------------------------------
def test_parity_purge_queue(sqs: Any) -> None:
    url = new_queue(sqs)
    send_batch(sqs, url, [f"m{i}" for i in range(15)])
    receive(sqs, url)
    assert counts(sqs, url) == (5, 10, 0)
    sqs.purge_queue(QueueUrl=url)
    assert counts(sqs, url) == (0, 0, 0) and receive(sqs, url) == []
    sqs.send_message(QueueUrl=url, MessageBody="after")
    assert [m["Body"] for m in receive(sqs, url)] == ["after"]


def test_parity_delete_with_stale_and_repeated_receipt_handles(sqs: Any) -> None:
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    [first] = receive(sqs, url, VisibilityTimeout=0)
    [second] = receive(sqs, url, VisibilityTimeout=0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])  # moto: an earlier handle deletes too
    assert receive(sqs, url) == [] and counts(sqs, url) == (0, 0, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])  # already deleted: accepted
    result = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "old", "ReceiptHandle": first["ReceiptHandle"]}, {"Id": "bad", "ReceiptHandle": "never-given"},
    ])
    assert [e["Id"] for e in result["Successful"]] == ["old"]
    assert [(e["Id"], e["Code"]) for e in result["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    with pytest.raises(ClientError) as error:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="never-given")
    assert error.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"


# -- attributes ------------------------------------------------------------------------------------
def test_parity_message_attributes_and_md5s(sqs: Any) -> None:
    # botocore checks MD5OfMessageBody and MD5OfMessageAttributes of every send and receive.
    url = new_queue(sqs)
    attributes = {
        "Text": {"DataType": "String", "StringValue": "héllo"},
        "Count": {"DataType": "Number", "StringValue": "42"},
        "Raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        "Custom.tag": {"DataType": "String.custom", "StringValue": "x"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="body", MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"]
    [got] = receive(sqs, url, VisibilityTimeout=0)
    assert got["MessageAttributes"] == attributes
    assert got["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert got["MD5OfBody"] == sent["MD5OfMessageBody"]
    only = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["Custom.*", "Count"], VisibilityTimeout=0)
    assert set(only["Messages"][0]["MessageAttributes"]) == {"Custom.tag", "Count"}
    none = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "MessageAttributes" not in none and "Attributes" not in none


def test_parity_queue_attributes(sqs: Any) -> None:
    url = new_queue(sqs, VisibilityTimeout=45, DelaySeconds=0)
    send_batch(sqs, url, ["a", "b", "c"])
    receive(sqs, url, count=1)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45" and attributes["QueueArn"].endswith(url.rsplit("/", 1)[1])
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == ("2", "1")
    assert "FifoQueue" not in attributes


def test_parity_errors(sqs: Any) -> None:
    with pytest.raises(ClientError) as error:
        sqs.receive_message(QueueUrl=new_queue(sqs) + "-missing")
    assert error.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError) as error:
        sqs.receive_message(QueueUrl=new_queue(sqs), MaxNumberOfMessages=11)
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
    result = sqs.send_message_batch(QueueUrl=new_queue(sqs), Entries=[
        {"Id": "ok", "MessageBody": "x"}, {"Id": "late", "MessageBody": "y", "DelaySeconds": 901},
    ])
    assert [e["Id"] for e in result["Successful"]] == ["ok"]
    assert [(e["Id"], e["Code"]) for e in result["Failed"]] == [("late", "InvalidParameterValue")]


# -- what only the fast model promises ------------------------------------------------------------
def test_fast_concurrent_receivers_never_share_a_message(fast_sqs: Any, servers: dict[str, MotoServer]) -> None:
    url = new_queue(fast_sqs)
    send_batch(fast_sqs, url, [f"m{i}" for i in range(400)])
    received: list[str] = []

    def drain() -> None:
        own = client(servers["fast"])
        while batch := receive(own, url):
            received.extend(m["MessageId"] for m in batch)

    threads = [threading.Thread(target=drain) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(received) == 400 and len(set(received)) == 400


def test_fast_json_calls_keep_their_connection_and_other_calls_still_work(servers: dict[str, MotoServer]) -> None:
    server = servers["fast"]
    url = new_queue(client(server))
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    auth = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0"
    sockets = []
    for action, body in [("SendMessage", {"QueueUrl": url, "MessageBody": "x"}), ("ReceiveMessage", {"QueueUrl": url}),
                         ("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})]:
        connection.request("POST", "/", json.dumps(body), {
            "X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": "application/x-amz-json-1.0", "Authorization": auth,
        })
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
        sockets.append(connection.sock)
    assert sockets[0] is not None and sockets.count(sockets[0]) == 3
    connection.close()
    s3 = client(server, "s3")  # REST protocol: werkzeug's own path
    s3.create_bucket(Bucket="fast-moto-bucket")
    s3.put_object(Bucket="fast-moto-bucket", Key="k", Body=b"v" * 100_000)
    assert s3.get_object(Bucket="fast-moto-bucket", Key="k")["Body"].read() == b"v" * 100_000
    assert s3.head_object(Bucket="fast-moto-bucket", Key="k")["ContentLength"] == 100_000


def test_query_protocol_calls_and_the_outbox_poll_keep_their_connection(servers: dict[str, MotoServer]) -> None:
    """SNS's Publish (a form POSTed to "/") and the control plane's outbox poll are made once
    per publish and per batch: each on a new connection cost moto a thread and the control
    plane a TCP handshake (docs/benchmarks.md, benchmark 15)."""
    server = servers["fast"]
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    auth = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0"
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Authorization": auth}
    sockets, payloads = [], []
    calls = [("POST", "/", "Action=CreateTopic&Name=kept-alive&Version=2010-03-31", form),
             ("POST", "/", "Action=ListTopics&Version=2010-03-31", form),
             ("GET", "/_emulator/sns-metrics", None, {}),
             ("GET", "/_emulator/sns-deliveries?consumer=keep-alive-test&ack=0&wait=0&max=10", None, {})]
    for method, path, body, headers in calls:
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        payload = response.read()
        assert response.status == 200, payload
        assert response.getheader("Connection") is None
        sockets.append(connection.sock)
        payloads.append(payload)
    assert b":kept-alive</TopicArn>" in payloads[1] and json.loads(payloads[3])["messages"] == []
    assert sockets[0] is not None and sockets.count(sockets[0]) == len(calls)
    connection.close()


def test_raw_json_bodies_match_plain_moto(servers: dict[str, MotoServer]) -> None:
    """The short path writes what moto's serializer writes (volatile values blanked)."""
    volatile = {"MessageId", "ReceiptHandle", "SentTimestamp", "ApproximateFirstReceiveTimestamp", "QueueUrl",
                "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn", "SequenceNumber", "Message"}

    def blank(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "*" if k in volatile else blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return value

    def run(server: MotoServer) -> list[tuple[int, Any]]:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        auth = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0"
        out: list[tuple[int, Any]] = []

        def call(action: str, body: dict[str, Any]) -> Any:
            connection.request("POST", "/", json.dumps(body), {
                "X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": "application/x-amz-json-1.0", "Authorization": auth,
            })
            response = connection.getresponse()
            payload = response.read()
            parsed = json.loads(payload) if payload else None
            out.append((response.status, blank(parsed)))
            return parsed

        url = call("CreateQueue", {"QueueName": "raw-parity"})["QueueUrl"]
        fifo = call("CreateQueue", {"QueueName": "raw-parity.fifo", "Attributes": {"FifoQueue": "true"}})["QueueUrl"]
        call("GetQueueUrl", {"QueueName": "raw-parity"})
        call("SendMessage", {"QueueUrl": url, "MessageBody": "hello", "MessageAttributes": {
            "b": {"DataType": "Binary", "BinaryValue": "AAH/"}, "s": {"DataType": "String", "StringValue": "v"}}})
        call("SendMessageBatch", {"QueueUrl": url, "Entries": [{"Id": "a", "MessageBody": "x"},
                                                                {"Id": "b", "MessageBody": "y", "DelaySeconds": 1000}]})
        call("SendMessageBatch", {"QueueUrl": fifo, "Entries": [
            {"Id": "a", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "1"}]})
        got = call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 0,
                                      "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]})
        handle = got["Messages"][0]["ReceiptHandle"]
        call("ReceiveMessage", {"QueueUrl": fifo, "AttributeNames": ["All"]})
        call("ChangeMessageVisibility", {"QueueUrl": url, "ReceiptHandle": handle, "VisibilityTimeout": 5})
        call("ChangeMessageVisibilityBatch", {"QueueUrl": url, "Entries": [
            {"Id": "1", "ReceiptHandle": handle, "VisibilityTimeout": 0}, {"Id": "2", "ReceiptHandle": "bad", "VisibilityTimeout": 5}]})
        call("DeleteMessageBatch", {"QueueUrl": url, "Entries": [{"Id": "1", "ReceiptHandle": handle},
                                                                  {"Id": "2", "ReceiptHandle": "bad"}]})
        call("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "bogus"})
        call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
        call("GetQueueAttributes", {"QueueUrl": url})
        call("ReceiveMessage", {"QueueUrl": url + "-missing"})
        call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 11})
        call("DeleteQueue", {"QueueUrl": url})
        call("DeleteQueue", {"QueueUrl": fifo})
        connection.close()
        return out

    fast, plain = run(servers["fast"]), run(servers["plain"])
    assert fast == plain


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_fast_memory_follows_the_live_messages_not_the_traffic(fast_sqs: Any, servers: dict[str, MotoServer]) -> None:
    """moto's dashboard recorded every Message (and every copy made for a receive) forever;
    the store's heaps kept every deleted message behind one old in-flight message."""
    url = new_queue(fast_sqs)
    fast_sqs.send_message(QueueUrl=url, MessageBody="kept")
    assert len(receive(fast_sqs, url, VisibilityTimeout=43_200)) == 1  # in flight for 12 hours
    for round_ in range(MEMORY_ROUNDS):
        send_batch(fast_sqs, url, [f"{round_}-{i}" for i in range(10)])
        got = receive(fast_sqs, url)
        assert len(got) == 10
        result = fast_sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        assert not result.get("Failed")
    dashboard = http_json(servers["fast"].url + "/moto-api/data.json")
    assert dashboard["sqs"]["Message"] == []  # was one entry per message sent and per copy received
    stats = http_json(servers["fast"].url + "/_emulator/backend-stats")
    assert "sqs.Message" not in stats["tracked_instances"]
    sqs_entries = stats["sqs"]
    for index in ("ready", "timers", "by_sent"):  # bounded by the live messages of every queue
        assert sqs_entries[index] <= COMPACT_FACTOR * sqs_entries["live"] + COMPACT_SLACK * sqs_entries["queues"], sqs_entries


def test_apply_leaves_an_unverified_moto_alone(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import moto
    from moto.sqs import models

    queue_class = models.Queue
    monkeypatch.setattr(moto, "__version__", "0.0.1")
    assert moto_sqs_fast.apply() is False
    assert models.Queue is queue_class
    assert "0.0.1" in caplog.text
    assert versions.is_verified(versions.installed_moto_version() or "")
