"""DynamoDB item sizes, as AWS counts them for capacity units and stream records (pure).

https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html:
the size of an item is the sum of its attributes, each the UTF-8 length of its name plus
the size of its value:

- a string: its UTF-8 bytes; a binary: its raw bytes (not the base64 text);
- a number: 1 byte per two significant digits, plus 1 (leading and trailing zeroes trimmed);
- a null or a Boolean: 1 byte;
- a list or map: 3 bytes, plus its elements, plus 1 byte per element (a map element also
  counts its name);
- a set: the sum of its members.

The same sizes make a stream record's `SizeBytes`: AWS's example events (Keys `{Id: 101}`
with NewImage `{Message: "New item!", Id: 101}` is 26 bytes,
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html) are exactly the sum of the keys'
and images' sizes by these rules.

Values come in two forms, and every function here takes both: the wire form
(`{"S": "x"}`, a dict of one type key) and moto's `DynamoType` (an object with `.type` and
`.value`, whose map and list members are DynamoTypes again). A binary may be raw bytes or
its base64 text, depending on which of moto's paths stored it. Nothing here imports moto.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
LIST_OR_MAP_OVERHEAD_BYTES = 3
ELEMENT_OVERHEAD_BYTES = 1
NUMBER_OVERHEAD_BYTES = 1
NULL_OR_BOOLEAN_BYTES = 1


def type_and_value(attribute: Any) -> tuple[str, Any]:
    """(type, value) of an attribute value in either form."""
    if isinstance(attribute, Mapping):
        for key, value in attribute.items():
            return str(key), value
        return "NULL", True
    return str(attribute.type), attribute.value


def _binary_length(value: Any) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    text = str(value)
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return len(text.encode("utf-8"))


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def number_size(text: Any) -> int:
    """Bytes of a number: 1 per two significant digits, plus 1."""
    text = str(text)
    if _PLAIN_NUMBER.fullmatch(text):  # the common case, without Decimal: digits, zeros trimmed
        significant = len(text.replace("-", "").replace(".", "").strip("0"))
    else:  # exponents ("1E+5") and anything else
        try:
            digits = Decimal(text).normalize().as_tuple().digits
        except (InvalidOperation, ValueError):
            digits = tuple(int(ch) for ch in text if ch.isdigit())
        significant = len(digits) if any(digits) else 0
    return (significant + 1) // 2 + NUMBER_OVERHEAD_BYTES


def value_size(attribute: Any) -> int:
    """The size of one attribute value (its name not included)."""
    kind, value = type_and_value(attribute)
    if kind == "S":
        return len(str(value).encode("utf-8"))
    if kind == "N":
        return number_size(value)
    if kind == "B":
        return _binary_length(value)
    if kind in ("BOOL", "NULL"):
        return NULL_OR_BOOLEAN_BYTES
    if kind == "SS":
        return sum(len(str(member).encode("utf-8")) for member in value)
    if kind == "NS":
        return sum(number_size(member) for member in value)
    if kind == "BS":
        return sum(_binary_length(member) for member in value)
    if kind == "L":
        return LIST_OR_MAP_OVERHEAD_BYTES + sum(value_size(member) + ELEMENT_OVERHEAD_BYTES for member in value)
    if kind == "M":
        return LIST_OR_MAP_OVERHEAD_BYTES + sum(
            len(str(name).encode("utf-8")) + value_size(member) + ELEMENT_OVERHEAD_BYTES
            for name, member in value.items()
        )
    return len(str(value).encode("utf-8"))


def item_size(attributes: Mapping[str, Any] | None) -> int:
    """The size of an item (a map of attribute name to value, either form); 0 for None."""
    if not attributes:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in attributes.items())


def projected_size(attributes: Mapping[str, Any] | None, names: Iterable[str] | None) -> int:
    """The size of the attributes of `attributes` named in `names` (all of them when None)."""
    if not attributes:
        return 0
    if names is None:
        return item_size(attributes)
    return sum(len(name.encode("utf-8")) + value_size(attributes[name]) for name in names if name in attributes)
