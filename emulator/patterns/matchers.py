"""The value matchers of the pattern language: each one tests one leaf value of a document.

Leaf values are what JSON decodes to: str, int or float (a `NumberText` when its written
form matters), bool, None. The semantics follow AWS's Event Ruler
(https://github.com/aws/event-ruler), where a string and a number never match each other
("5" is not 5), numbers compare at six decimal places, and an `anything-but` of strings
lets through every value that is not one of those strings, numbers included.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# Numbers become comparable by adding this bound and keeping six decimals (Event Ruler's
# ComparableNumber); beyond it a number cannot be compared numerically.
SIX_DECIMALS = 1_000_000


class NumberText(float):
    """A number decoded from JSON that remembers how it was written (Lambda compares
    numbers by their text: "300, 300.0, and 3.0e2 are not considered equal",
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html)."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> "NumberText":
        number = super().__new__(cls, text)
        number.text = text
        return number


def number_text(value: object) -> str:
    """How a decoded number was written (its JSON text when known)."""
    text = getattr(value, "text", None)
    return text if text is not None else repr(value)


def is_number(value: object) -> bool:
    return (type(value) is int or type(value) is float or type(value) is NumberText)


def comparable(value: float, bound: float) -> int | None:
    """The number at six decimals, or None outside ±bound (then it is not comparable)."""
    if not (-bound <= value <= bound):
        return None
    return int(SIX_DECIMALS * (bound + value))


class Matcher:
    """Tests one leaf value. `exists` is None for value tests; True/False for exists."""

    __slots__ = ()
    exists: bool | None = None

    def test(self, value: object) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


class Exists(Matcher):
    __slots__ = ("exists",)

    def __init__(self, exists: bool) -> None:
        self.exists = exists

    def test(self, value: object) -> bool:
        return self.exists is True

    def __repr__(self) -> str:
        return f"Exists({self.exists})"


class ExactString(Matcher):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def test(self, value: object) -> bool:
        return value == self.text and type(value) is str

    def __repr__(self) -> str:
        return f"ExactString({self.text!r})"


class Literal(Matcher):
    """true, false or null."""

    __slots__ = ("literal",)

    def __init__(self, literal: bool | None) -> None:
        self.literal = literal

    def test(self, value: object) -> bool:
        return value is self.literal

    def __repr__(self) -> str:
        return f"Literal({self.literal!r})"


class ExactNumber(Matcher):
    """A number in a pattern: equal by value at six decimals (SNS), or by its text (Lambda)."""

    __slots__ = ("text", "key", "bound")

    def __init__(self, text: str, value: float, bound: float, by_value: bool) -> None:
        self.text = text
        self.bound = bound
        self.key = comparable(value, bound) if by_value else None

    def test(self, value: object) -> bool:
        if not is_number(value):
            return False
        if self.key is not None and comparable(float(value), self.bound) == self.key:  # type: ignore[arg-type]
            return True
        return number_text(value) == self.text

    def __repr__(self) -> str:
        return f"ExactNumber({self.text})"


class Prefix(Matcher):
    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def test(self, value: object) -> bool:
        return type(value) is str and value.startswith(self.prefix)


class Suffix(Matcher):
    __slots__ = ("suffix",)

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def test(self, value: object) -> bool:
        return type(value) is str and value.endswith(self.suffix)


def _fold(text: str) -> str:
    return text.lower()


class EqualsIgnoreCase(Matcher):
    __slots__ = ("folded",)

    def __init__(self, text: str) -> None:
        self.folded = _fold(text)

    def test(self, value: object) -> bool:
        return type(value) is str and _fold(value) == self.folded


class AnythingButStrings(Matcher):
    """Every value that is not one of these strings (numbers and literals included)."""

    __slots__ = ("excluded", "ignore_case")

    def __init__(self, excluded: Iterable[str], ignore_case: bool = False) -> None:
        self.ignore_case = ignore_case
        self.excluded = frozenset(_fold(t) for t in excluded) if ignore_case else frozenset(excluded)

    def test(self, value: object) -> bool:
        if type(value) is not str:
            return True
        return (_fold(value) if self.ignore_case else value) not in self.excluded


class AnythingButNumbers(Matcher):
    """Every number that is not one of these (at six decimals); other values do not match."""

    __slots__ = ("excluded", "bound")

    def __init__(self, excluded: Iterable[int], bound: float) -> None:
        self.excluded = frozenset(excluded)
        self.bound = bound

    def test(self, value: object) -> bool:
        if not is_number(value):
            return False
        key = comparable(float(value), self.bound)  # type: ignore[arg-type]
        return key is not None and key not in self.excluded


class AnythingButPrefix(Matcher):
    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def test(self, value: object) -> bool:
        return type(value) is not str or not value.startswith(self.prefix)


class AnythingButSuffix(Matcher):
    __slots__ = ("suffix",)

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def test(self, value: object) -> bool:
        return type(value) is not str or not value.endswith(self.suffix)


class NumericRange(Matcher):
    """`{"numeric": [">", a, "<=", b]}` and its one-sided and `=` forms, at six decimals."""

    __slots__ = ("bottom", "open_bottom", "top", "open_top", "bound")

    def __init__(self, bottom: int | None, open_bottom: bool, top: int | None, open_top: bool, bound: float) -> None:
        self.bottom, self.open_bottom, self.top, self.open_top, self.bound = bottom, open_bottom, top, open_top, bound

    def test(self, value: object) -> bool:
        if not is_number(value):
            return False
        key = comparable(float(value), self.bound)  # type: ignore[arg-type]
        if key is None:
            return False
        if self.bottom is not None and (key <= self.bottom if self.open_bottom else key < self.bottom):
            return False
        if self.top is not None and (key >= self.top if self.open_top else key > self.top):
            return False
        return True


def ip_value(text: str) -> int | None:
    """The address of an IPv4 or IPv6 literal (v4 in the low 32 bits), else None."""
    if not text or len(text) > 45 or not (text[0].isdigit() or text[0] in ":abcdefABCDEF"):
        return None
    try:
        return int(ipaddress.ip_address(text))
    except ValueError:
        return None


class IpRange(Matcher):
    """An address range: a CIDR, or one address written as a plain string in the pattern
    (Event Ruler matches such a string as an address, so equal addresses written apart
    still match)."""

    __slots__ = ("low", "high", "version")

    def __init__(self, low: int, high: int, version: int) -> None:
        self.low, self.high, self.version = low, high, version

    def test(self, value: object) -> bool:
        if type(value) is not str:
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return address.version == self.version and self.low <= int(address) <= self.high
