"""SNS's Publish and PublishBatch in the query protocol, read and written as moto 5.2 does.

`parse()` turns a form-encoded request body into the parameters moto's QueryParser
(moto/core/parse.py) makes of it against botocore's model: the same keys, in the model's
member order, a list or map read by index from 1 until the first one missing, a
BinaryValue base64-decoded with the same function. It answers None for any request moto
might read differently, so that the request takes moto's own path: a key it does not
know (moto ignores it), a key given twice, an entry past a gap in the indices, a message
attribute without its DataType, a body that is not UTF-8, or not base64 where it must be.

`publish_body()` and `publish_batch_body()` write the XML moto's QuerySerializer writes
through xmltodict (text escaped as xml.sax.saxutils does, an empty element as `<X/>`) for
the results moto's SNSResponse returns; None for any other result, which moto's own
serializer then writes. Pure: imports nothing of moto.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"
# botocore's members, in its order (sns 2010-03-31 service-2.json: PublishInput,
# PublishBatchInput, PublishBatchRequestEntry, MessageAttributeValue).
_PUBLISH_MEMBERS = ("TopicArn", "TargetArn", "PhoneNumber", "Message", "Subject", "MessageStructure",
                    "MessageAttributes", "MessageDeduplicationId", "MessageGroupId")
_BATCH_MEMBERS = ("TopicArn", "PublishBatchRequestEntries")
_ENTRY_MEMBERS = ("Id", "Message", "Subject", "MessageStructure", "MessageAttributes", "MessageDeduplicationId",
                  "MessageGroupId")
_ACTIONS = {"Publish": _PUBLISH_MEMBERS, "PublishBatch": _BATCH_MEMBERS}
# Keys every SDK sends that the model has no member for.
_ENVELOPE_KEYS = ("Action", "Version")


class _Unusual(Exception):
    """moto might read this request otherwise: it takes moto's path."""


def parse(body: bytes) -> tuple[str, dict[str, Any]] | None:
    """(action, parameters as moto's parser makes them), or None."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            return None
        fields[key] = value
    members = _ACTIONS.get(fields.get("Action", ""))
    if members is None:
        return None
    action = fields["Action"]
    for key in _ENVELOPE_KEYS:
        fields.pop(key, None)
    try:
        params = _structure(fields, "", members)
    except _Unusual:
        return None
    return (action, params) if not fields else None


def _structure(fields: dict[str, str], prefix: str, members: tuple[str, ...]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for member in members:
        key = prefix + member
        if member == "MessageAttributes":
            attributes = _attributes(fields, key)
            if attributes:  # an empty map is left out, as moto's parser leaves it out
                parsed[member] = attributes
        elif member == "PublishBatchRequestEntries":
            entries = _entries(fields, key)
            if entries:
                parsed[member] = entries
        elif key in fields:
            parsed[member] = fields.pop(key)
    return parsed


def _entries(fields: dict[str, str], key: str) -> list[dict[str, Any]]:
    entries = []
    while True:
        prefix = f"{key}.member.{len(entries) + 1}."
        if not any(name.startswith(prefix) for name in fields):
            return entries
        entries.append(_structure(fields, prefix, _ENTRY_MEMBERS))


def _attributes(fields: dict[str, str], key: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    index = 1
    while (name := fields.pop(f"{key}.entry.{index}.Name", None)) is not None:
        prefix = f"{key}.entry.{index}.Value."
        data_type = fields.pop(prefix + "DataType", None)
        if data_type is None:
            raise _Unusual()
        value: dict[str, Any] = {"DataType": data_type}
        if (text := fields.pop(prefix + "StringValue", None)) is not None:
            value["StringValue"] = text
        if (blob := fields.pop(prefix + "BinaryValue", None)) is not None:
            try:
                value["BinaryValue"] = base64.b64decode(blob)  # moto.core.parse.default_blob_parser
            except (binascii.Error, ValueError):
                raise _Unusual() from None
        attributes[name] = value
        index += 1
    return attributes


# -- responses -----------------------------------------------------------------------------------
def _element(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>" if text else f"<{name}/>"


def _wrapped(action: str, result: str, request_id: str) -> bytes:
    return (f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>").encode()


def publish_body(result: Any, request_id: str) -> bytes | None:
    """PublishResponse for moto's result {"MessageId": ...}, or None."""
    if not isinstance(result, dict) or result.keys() != {"MessageId"} or not isinstance(result["MessageId"], str):
        return None
    return _wrapped("Publish", _element("MessageId", result["MessageId"]), request_id)


def publish_batch_body(result: Any, request_id: str) -> bytes | None:
    """PublishBatchResponse for moto's result {"Successful": [{MessageId, Id}], "Failed":
    [{Id, Code, Message, SenderFault}]}, or None."""
    if not isinstance(result, dict) or result.keys() != {"Successful", "Failed"}:
        return None
    parts = []
    for name, members in (("Successful", ("Id", "MessageId")), ("Failed", ("Id", "Code", "Message", "SenderFault"))):
        entries = result[name]
        if not isinstance(entries, list):
            return None
        written = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.keys() != set(members):
                return None
            texts = []
            for member in members:
                value = entry[member]
                if member == "SenderFault":
                    if not isinstance(value, bool):
                        return None
                    value = "true" if value else "false"
                elif not isinstance(value, str):
                    return None
                texts.append(_element(member, value))
            written.append("<member>" + "".join(texts) + "</member>")
        parts.append(f"<{name}>{''.join(written)}</{name}>" if written else f"<{name}/>")
    return _wrapped("PublishBatch", "".join(parts), request_id)
