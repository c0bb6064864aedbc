"""Function tags (TagResource, UntagResource, ListTags, CreateFunction `Tags`), checked
as Lambda checks them. Pure.

Limits: https://docs.aws.amazon.com/lambda/latest/dg/configuration-tags.html and the
shapes `TagKey` / `TagValue` of the Lambda API model
(https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json):
at most 50 tags per resource, keys of 1-128 characters, values of at most 256, letters,
digits, spaces and `_ . : / = + - @`; keys starting with `aws:` are AWS's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from emulator.errors import InvalidParameterValue, ValidationError

MAX_TAGS_PER_RESOURCE = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
RESERVED_PREFIX = "aws:"
# The model's pattern ([\p{L}\p{Z}\p{N}_.:/=+\-@]*), in Python's terms.
_ALLOWED = re.compile(r"[^\W]|[\s_.:/=+\-@]", re.UNICODE)


def _allowed(text: str) -> bool:
    return all(_ALLOWED.fullmatch(ch) for ch in text)


def check_tags(tags: Any) -> dict[str, str]:
    """A Tags map as a request gives it (TagResource, CreateFunction)."""
    if not isinstance(tags, Mapping):
        raise ValidationError("1 validation error detected: Value null at 'tags' failed to satisfy constraint: "
                              "Member must not be null")
    problems = []
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not _allowed(key):
            problems.append(f"Value '{key}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: "
                            f"[Member must have length less than or equal to {MAX_KEY_LENGTH}, Member must have length "
                            "greater than or equal to 1, Member must satisfy regular expression pattern: "
                            r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*]")
        elif not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH or not _allowed(value):
            problems.append(f"Value '{value}' at 'tags' failed to satisfy constraint: Map value must satisfy constraint: "
                            f"[Member must have length less than or equal to {MAX_VALUE_LENGTH}, Member must satisfy "
                            r"regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*]")
    if problems:
        raise ValidationError(f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
                              + "; ".join(problems))
    reserved = [key for key in tags if key.lower().startswith(RESERVED_PREFIX)]
    if reserved:
        raise InvalidParameterValue(f"Tag keys that start with '{RESERVED_PREFIX}' are reserved for AWS use: "
                                    f"{', '.join(sorted(reserved))}")
    return dict(tags)


def merged(current: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    result = {**current, **new}
    if len(result) > MAX_TAGS_PER_RESOURCE:
        raise InvalidParameterValue(f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags; this request would "
                                    f"leave {len(result)}.")
    return result


def without(current: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    drop = set(keys)
    return {key: value for key, value in current.items() if key not in drop}
