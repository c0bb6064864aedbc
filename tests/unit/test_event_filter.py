"""Lambda event filtering (FilterCriteria) in pure code: validation as Lambda answers it,
and which records pass, per https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
and its per-source pages (with-sqs-filtering, with-kinesis-filtering, with-ddb-filtering)."""

from __future__ import annotations

import base64
import json

import pytest

from emulator.patterns.event_filter import (
    INVALID_PATTERN,
    EventFilter,
    FilterCriteriaError,
    compile_filters,
    keep_flags,
)


def _criteria(*patterns: object) -> dict:
    return {"Filters": [{"Pattern": p if isinstance(p, str) else json.dumps(p)} for p in patterns]}


def _filter(kind: str, *patterns: object) -> EventFilter:
    compiled = compile_filters(_criteria(*patterns), kind)
    assert compiled is not None
    return compiled


def _sqs(body: str, **extra: object) -> dict:
    return {"messageId": "m1", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "eventSource": "aws:sqs", **extra}


def _kinesis(data: bytes, key: str = "1") -> dict:
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key, "sequenceNumber": "49",
                        "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1.5},
            "eventSource": "aws:kinesis", "eventName": "aws:kinesis:record"}


@pytest.mark.parametrize("criteria", [
    _criteria("not json"),
    _criteria({"body": [{"prefix": 1}]}),
    _criteria([1, 2]),
    _criteria({"a": []}),
    {"Filters": [{"Pattern": ""}]},
    {"Filters": [{}]},
    {"Filters": "x"},
    "x",
])
def test_invalid_patterns_get_lambdas_one_message(criteria: object) -> None:
    with pytest.raises(FilterCriteriaError) as caught:
        compile_filters(criteria, "sqs")
    assert str(caught.value) == INVALID_PATTERN


def test_a_streams_data_pattern_must_be_json() -> None:
    with pytest.raises(FilterCriteriaError, match="Invalid filter pattern definition."):
        compile_filters(_criteria({"data": ["plain"]}), "kinesis")
    with pytest.raises(FilterCriteriaError, match="Invalid filter pattern definition."):
        compile_filters(_criteria({"dynamodb": [{"exists": True}]}), "dynamodb")
    assert compile_filters(_criteria({"body": ["plain"]}), "sqs") is not None


def test_filter_count_quota() -> None:
    assert compile_filters(_criteria(*[{"a": [i]} for i in range(5)]), "sqs") is not None
    with pytest.raises(FilterCriteriaError, match="quota is 5"):
        compile_filters(_criteria(*[{"a": [i]} for i in range(6)]), "sqs")
    assert compile_filters(_criteria(*[{"a": [i]} for i in range(10)]), "sqs", max_filters=10) is not None


def test_empty_criteria_filter_nothing() -> None:
    assert compile_filters(None, "sqs") is None
    assert compile_filters({}, "sqs") is None
    assert compile_filters({"Filters": []}, "sqs") is None
    assert keep_flags(None, "sqs", [_sqs("a"), _sqs("b")]) == [True, True]


def test_sqs_body_json_and_plain_string() -> None:
    # with-sqs-filtering.html: the body is read as JSON when it is JSON.
    json_filter = _filter("sqs", {"body": {"RequestCode": ["BBBB"]}})
    assert json_filter.keeps(_sqs('{"RequestCode": "BBBB"}'))
    assert not json_filter.keeps(_sqs('{"RequestCode": "AAAA"}'))
    assert not json_filter.keeps(_sqs("RequestCode BBBB"))  # plain body, JSON pattern: dropped
    plain = _filter("sqs", {"body": [{"prefix": "order-"}]})
    assert plain.keeps(_sqs("order-1"))
    assert not plain.keeps(_sqs('{"order": 1}'))  # JSON body, plain pattern: dropped
    metadata = _filter("sqs", {"attributes": {"ApproximateReceiveCount": ["1"]}})
    assert metadata.keeps(_sqs("anything"))
    assert metadata.keeps(_sqs('{"a": 1}'))


def test_kinesis_data_is_base64_json() -> None:
    # with-kinesis-filtering.html
    record = _kinesis(b'{"RecordNumber": "0001", "RequestCode": "AAAA"}')
    assert _filter("kinesis", {"data": {"RequestCode": ["AAAA"]}}).keeps(record)
    assert not _filter("kinesis", {"data": {"RequestCode": ["BBBB"]}}).keeps(record)
    assert not _filter("kinesis", {"data": {"RequestCode": ["AAAA"]}}).keeps(_kinesis(b"RequestCode AAAA"))
    assert _filter("kinesis", {"partitionKey": ["1"]}).keeps(_kinesis(b"not json"))
    assert _filter("kinesis", {"partitionKey": ["1"], "data": {"RequestCode": ["AAAA"]}}).keeps(record)
    assert not _filter("kinesis", {"partitionKey": ["2"], "data": {"RequestCode": ["AAAA"]}}).keeps(record)


def test_dynamodb_records_filter_on_any_key() -> None:
    record = {"eventName": "INSERT", "eventSource": "aws:dynamodb",
              "dynamodb": {"Keys": {"Id": {"N": "101"}}, "NewImage": {"Id": {"N": "101"}, "ok": {"BOOL": True}},
                           "SizeBytes": 26}}
    assert _filter("dynamodb", {"dynamodb": {"Keys": {"Id": {"N": ["101"]}}}}).keeps(record)
    assert _filter("dynamodb", {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"ok": {"BOOL": [True]}}}}).keeps(record)
    assert not _filter("dynamodb", {"eventName": ["REMOVE"]}).keeps(record)
    assert _filter("dynamodb", {"dynamodb": {"SizeBytes": [{"numeric": [">", 10]}]}}).keeps(record)


def test_numbers_compare_by_their_text() -> None:
    # "300, 300.0, and 3.0e2 are not considered equal" (invocation-eventfiltering.html)
    exact = _filter("sqs", {"body": {"price": [300]}})
    assert exact.keeps(_sqs('{"price": 300}'))
    assert not exact.keeps(_sqs('{"price": 300.0}'))
    assert not exact.keeps(_sqs('{"price": 3.0e2}'))
    numeric = _filter("sqs", {"body": {"price": [{"numeric": ["=", 300]}]}})
    assert numeric.keeps(_sqs('{"price": 3.0e2}'))


def test_filters_are_ored_and_support_every_operator() -> None:
    any_of = _filter("sqs", {"body": {"a": ["x"]}}, {"body": {"b": [{"exists": True}]}})
    assert keep_flags(any_of, "sqs", [_sqs('{"a": "x"}'), _sqs('{"b": 1}'), _sqs('{"c": 1}')]) == [True, True, False]
    operators = _filter("sqs", {"body": {
        "s": [{"suffix": ".png"}], "i": [{"equals-ignore-case": "yes"}], "n": [{"anything-but": {"suffix": "x"}}],
        "m": [{"anything-but": {"equals-ignore-case": ["no"]}}], "w": [None], "e": [""],
    }})
    assert operators.keeps(_sqs(json.dumps({"s": "a.png", "i": "YES", "n": "a", "m": "maybe", "w": None, "e": ""})))
    assert not operators.keeps(_sqs(json.dumps({"s": "a.png", "i": "YES", "n": "a", "m": "NO", "w": None, "e": ""})))
    either = _filter("sqs", {"body": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}})
    assert either.keeps(_sqs('{"b": "2"}'))
    assert not either.keeps(_sqs('{"c": "2"}'))


def test_serialised_stream_records_are_read_as_the_filters_expect() -> None:
    # The stream pollers keep each record as the JSON they send (sources/kinesis_records.py):
    # keeps_event_json reads it once, numbers keeping their text.
    from emulator.patterns.event_filter import keeps_event_json

    kinesis = _filter("kinesis", {"data": {"kind": ["sale"]}})
    assert keeps_event_json(kinesis, json.dumps(_kinesis(b'{"kind": "sale"}')))
    assert not keeps_event_json(kinesis, json.dumps(_kinesis(b"plain")))
    ddb = _filter("dynamodb", {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"n": {"N": ["10"]}}}})
    record = {"eventName": "INSERT", "eventSource": "aws:dynamodb", "dynamodb": {"NewImage": {"n": {"N": "10"}}}}
    assert keeps_event_json(ddb, json.dumps(record))
    assert not keeps_event_json(ddb, json.dumps({**record, "eventName": "MODIFY"}))
