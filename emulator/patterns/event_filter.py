"""Lambda event filtering (`FilterCriteria` of event source mappings), pure.

https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html: up to five
filters by default (a quota, raised on request up to ten), ORed; a record is sent when any
matches and discarded otherwise. Each pattern is matched against the record with its data
decoded: the `body` of an SQS message and the base64 `data` of a Kinesis record are read as
JSON when they are JSON; a DynamoDB Streams record is JSON already (`dynamodb`). Where the
pattern's data key and the data disagree (a JSON pattern for a plain-string body, a string
pattern for a JSON body, any pattern on `data` that is not JSON), the record does not match.
A stream's data pattern must be an object: anything else is refused when the mapping is
created or updated. Every refusal is Lambda's one message, "Invalid filter pattern definition."
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emulator.patterns.compiler import LAMBDA, Pattern, PatternError, check_json, compile_pattern
from emulator.patterns.matchers import NumberText
from emulator.patterns.matching import flatten, matches

# Default quota of filters per mapping, and the most AWS raises it to (page above).
DEFAULT_MAX_FILTERS = 5
MAX_FILTERS_ON_REQUEST = 10
INVALID_PATTERN = "Invalid filter pattern definition."
SQS, KINESIS, DYNAMODB = "sqs", "kinesis", "dynamodb"
# The record key that holds the data, per source (page above).
DATA_KEYS = {SQS: "body", KINESIS: "data", DYNAMODB: "dynamodb"}
# Numbers keep their text: Lambda compares "300" and "300.0" as different.
_DECODER = json.JSONDecoder(parse_int=NumberText, parse_float=NumberText)


class FilterCriteriaError(ValueError):
    """Criteria Lambda refuses at CreateEventSourceMapping / UpdateEventSourceMapping."""


@dataclass(frozen=True)
class _Filter:
    pattern: Pattern
    # "object": the pattern filters on fields inside the data; "value": on the data as a
    # plain string; None: it does not look at the data.
    data_form: str | None


@dataclass(frozen=True)
class EventFilter:
    kind: str
    filters: tuple[_Filter, ...]

    def keeps(self, record: Mapping[str, Any]) -> bool:
        """Whether an event record (as the function would receive it) passes."""
        return keeps_document(self, filter_document(self.kind, record))


def compile_filters(criteria: Any, kind: str, max_filters: int = DEFAULT_MAX_FILTERS) -> EventFilter | None:
    """`FilterCriteria` → an EventFilter (None when it filters nothing); raises
    FilterCriteriaError with Lambda's message."""
    if criteria is None:
        return None
    if not isinstance(criteria, Mapping):
        raise FilterCriteriaError(INVALID_PATTERN)
    filters = criteria.get("Filters")
    if filters is None or filters == []:
        return None  # an empty FilterCriteria removes the filters (page above, "AWS CLI")
    if not isinstance(filters, list):
        raise FilterCriteriaError(INVALID_PATTERN)
    if len(filters) > max_filters:
        # The quota is documented; the wording of the refusal is not: ours.
        raise FilterCriteriaError(f"The FilterCriteria has {len(filters)} filters; the quota is {max_filters} "
                                  "filters per event source mapping.")
    data_key = DATA_KEYS.get(kind)
    compiled = []
    for item in filters:
        text = item.get("Pattern") if isinstance(item, Mapping) else None
        if not isinstance(text, str) or not text:
            raise FilterCriteriaError(INVALID_PATTERN)
        try:
            loaded = check_json(text)
            pattern = compile_pattern(text, LAMBDA)
        except (ValueError, RecursionError, PatternError):
            raise FilterCriteriaError(INVALID_PATTERN) from None
        form = _data_form(loaded, data_key)
        if form == "value" and kind in (KINESIS, DYNAMODB):
            raise FilterCriteriaError(INVALID_PATTERN)  # a stream's data pattern must be JSON
        compiled.append(_Filter(pattern, form))
    return EventFilter(kind, tuple(compiled))


def _data_form(loaded: Any, data_key: str | None) -> str | None:
    """How the pattern looks at the data key, also inside `$or` branches."""
    if not isinstance(loaded, dict) or data_key is None:
        return None
    forms = set()
    for key, value in loaded.items():
        if key == data_key:
            forms.add("object" if isinstance(value, dict) else "value")
        elif key == "$or" and isinstance(value, list):
            forms.update(form for branch in value if (form := _data_form(branch, data_key)))
    if len(forms) > 1:
        return "mixed"
    return forms.pop() if forms else None


@dataclass(frozen=True)
class FilterDocument:
    """A record as the filters read it: flattened twice at most (data as JSON, data as a
    plain value), and whether its data is JSON."""

    with_json: Any
    with_text: Any
    data_is_json: bool


def filter_document(kind: str, record: Mapping[str, Any]) -> FilterDocument:
    """The record with its data decoded: for Kinesis the `kinesis` fields (`data`,
    `partitionKey`, ...) sit at the top, as the page's patterns address them."""
    if kind == KINESIS:
        inner = record.get("kinesis") or {}
        base = {**{k: v for k, v in record.items() if k != "kinesis"}, **inner}
        raw = inner.get("data")
        decoded = _kinesis_data(raw)
    elif kind == SQS:
        base = dict(record)
        raw = record.get("body")
        decoded = _json_object(raw) if isinstance(raw, str) else None
    else:
        return FilterDocument(flatten(_with_text_numbers(record)), None, True)
    key = DATA_KEYS[kind]
    if decoded is not None:
        return FilterDocument(flatten({**base, key: decoded}), None, True)
    text = base.get(key) if kind == SQS else _kinesis_text(raw)
    return FilterDocument(None, flatten({**base, key: text}), False)


def _json_object(text: str) -> Any:
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _kinesis_data(raw: Any) -> Any:
    text = _kinesis_text(raw)
    return _json_object(text) if text is not None else None


def _kinesis_text(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _with_text_numbers(record: Any) -> Any:
    """A decoded record whose numbers remember their text (re-read once)."""
    return _DECODER.decode(json.dumps(record))


def keeps_document(event_filter: EventFilter, document: FilterDocument) -> bool:
    for item in event_filter.filters:
        form = item.data_form
        if form == "object" or form == "mixed":
            if document.data_is_json and matches(item.pattern, document.with_json):
                return True
        elif form == "value":
            if not document.data_is_json and matches(item.pattern, document.with_text):
                return True
        else:
            flat = document.with_json if document.data_is_json else document.with_text
            if matches(item.pattern, flat):
                return True
    return False


def keeps_event_json(event_filter: EventFilter, text: str) -> bool:
    """Whether a serialised event record passes: stream pollers keep each record as the
    JSON they send, so it is read once here, numbers keeping their text."""
    record = _DECODER.decode(text)
    if event_filter.kind == DYNAMODB:
        return keeps_document(event_filter, FilterDocument(flatten(record), None, True))
    return event_filter.keeps(record)


def keep_flags(event_filter: EventFilter | None, kind: str, records: Sequence[Mapping[str, Any]]) -> list[bool]:
    """For each record, whether the mapping sends it (every record without a filter)."""
    if event_filter is None:
        return [True] * len(records)
    return [event_filter.keeps(record) for record in records]
