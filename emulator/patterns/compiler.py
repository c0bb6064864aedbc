"""A pattern's JSON text → branches of (field, matchers), with AWS's own error messages.

The steps and messages follow AWS's Event Ruler rule compilers
(https://github.com/aws/event-ruler, JsonRuleCompiler and RuleCompiler), which read the
pattern token by token; we read it the same way (`reader.TokenReader`) so that an error is
found at the same token and reported at the same line and column. As Event Ruler's
`GenericMachine.addRule` does, a pattern that the `$or`-aware compiler refuses is compiled
again with `$or` as an ordinary field name, and only that second refusal counts
(https://docs.aws.amazon.com/sns/latest/dg/and-or-logic.html: when the `$or` conditions are
not met, "$or is treated as a regular attribute name").

A field is the dotted path of its keys ("a.b" for {"a": {"b": [...]}}), which is also how
documents are read (`matching.flatten`). A compiled `Pattern` matches when any branch
matches; a branch matches when every field does.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

from emulator.patterns.matchers import (
    AnythingButNumbers,
    AnythingButPrefix,
    AnythingButStrings,
    AnythingButSuffix,
    EqualsIgnoreCase,
    ExactNumber,
    ExactString,
    Exists,
    IpRange,
    Literal,
    Matcher,
    NumericRange,
    Prefix,
    Suffix,
    comparable,
)
from emulator.patterns.reader import ReaderSyntaxError, Token, TokenReader

OR_KEY = "$or"
# Field names that may not appear inside a `$or` (Event Ruler's Constants).
RESERVED_IN_OR = frozenset({"anything-but", "exists", "prefix", "suffix", "equals-ignore-case", "numeric", "cidr",
                            "wildcard", "exact"})
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_IPV6 = re.compile(r"^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$")


@dataclass(frozen=True)
class Dialect:
    """What differs between the services that use the language."""

    name: str
    # A number in a pattern equals a number in the event by value at six decimals (SNS:
    # "five digits of accuracy", https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html),
    # or by its text only (Lambda: "300, 300.0, and 3.0e2 are not considered equal",
    # https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
    numbers_by_value: bool
    # What an `anything-but` object may hold. SNS refuses `suffix` ("Unsupported anything-but
    # pattern: suffix", recorded from AWS in LocalStack's snapshots) and documents prefix only
    # (https://docs.aws.amazon.com/sns/latest/dg/string-value-matching.html); Lambda follows
    # EventBridge's forms (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html).
    anything_but_forms: frozenset[str]
    # Numbers compare within ±this bound (Event Ruler's ComparableNumber: ±5e9 in the release
    # SNS's messages match).
    number_bound: float
    # SNS runs an older Event Ruler whose messages name `prefix` alone where newer ones say
    # "prefix/suffix" (recorded: "prefix match pattern must be a string" for
    # {"anything-but": {"prefix": false}}).
    older_messages: bool


SNS = Dialect("sns", numbers_by_value=True, anything_but_forms=frozenset({"prefix"}), number_bound=5e9,
              older_messages=True)
LAMBDA = Dialect("lambda", numbers_by_value=False,
                 anything_but_forms=frozenset({"prefix", "suffix", "equals-ignore-case"}), number_bound=5e9,
                 older_messages=False)

Field = tuple[str, tuple[Matcher, ...]]


@dataclass(frozen=True)
class Pattern:
    """Branches (OR) of fields (AND) of matchers (OR)."""

    branches: tuple[tuple[Field, ...], ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for branch in self.branches for name, _ in branch)


class PatternError(ValueError):
    """A pattern AWS refuses. `message` is Event Ruler's; `where` the parser's location
    suffix (empty for errors raised outside the parser, as AWS's are)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message + where)
        self.message = message
        self.where = where


class _Located(PatternError):
    """An error found while reading tokens (Jackson's JsonParseException)."""


def check_json(text: str) -> object:
    """The pattern as JSON, or ValueError if it is not JSON that AWS's parser accepts."""

    def no_constants(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constants)


def compile_pattern(text: str, dialect: Dialect) -> Pattern:
    """Compile valid JSON text (see `check_json`); raises PatternError."""
    try:
        return _Compiler(text, dialect, with_or=True).run()
    except _Located:
        return _Compiler(text, dialect, with_or=False).run()


class _Compiler:
    def __init__(self, text: str, dialect: Dialect, *, with_or: bool) -> None:
        self.reader = TokenReader(text)
        self.dialect = dialect
        self.with_or = with_or

    def fail(self, message: str) -> None:
        raise _Located(message, self.reader.where())

    def run(self) -> Pattern:
        try:
            if self.reader.next() is not Token.START_OBJECT:
                self.fail("Filter is not an object")
            rules: list[dict[str, tuple[Matcher, ...]]] = []
            self._object(rules, [], inside_or=False)
        except ReaderSyntaxError as exc:
            raise PatternError(f"not valid JSON: {exc}") from None
        return Pattern(tuple(tuple(rule.items()) for rule in rules))

    # -- structure ---------------------------------------------------------------------------
    def _object(self, rules: list[dict[str, tuple[Matcher, ...]]], path: list[str], *, inside_or: bool) -> None:
        reader = self.reader
        present = False
        while reader.next() is not Token.END_OBJECT:
            present = True
            name = reader.name
            if self.with_or and name == OR_KEY:
                self._or(rules, path)
                continue
            if inside_or and name in RESERVED_IN_OR:
                self.fail(f"{name} is Ruler reserved fieldName which cannot be used inside {OR_KEY}.")
            token = reader.next()
            if token is Token.START_OBJECT:
                path.append(name)
                self._object(rules, path, inside_or=inside_or)
                path.pop()
            elif token is Token.START_ARRAY:
                self._values(rules, ".".join([*path, name]))
            else:
                self.fail(f'"{name}" must be an object or an array')
        if not present:
            self.fail("Empty objects are not allowed")

    def _or(self, rules: list[dict[str, tuple[Matcher, ...]]], path: list[str]) -> None:
        reader = self.reader
        before = [dict(rule) for rule in rules]
        rules.clear()
        if reader.next() is not Token.START_ARRAY:
            self.fail(f"It must be an Array followed with {OR_KEY}.")
        count = 0
        while (token := reader.next()) is not Token.END_ARRAY:
            count += 1
            if token is not Token.START_OBJECT:
                self.fail(f"Only JSON object is allowed in array of {OR_KEY} relationship.")
            branch = [dict(rule) for rule in before] or [{}]
            self._object(branch, path, inside_or=True)
            rules.extend(branch)
        if count < 2:
            self.fail(f"There must have at least 2 Objects in {OR_KEY} relationship.")

    def _values(self, rules: list[dict[str, tuple[Matcher, ...]]], name: str) -> None:
        reader = self.reader
        values: list[Matcher] = []
        while (token := reader.next()) is not Token.END_ARRAY:
            if token is Token.START_OBJECT:
                values.append(self._expression())
            elif token is Token.STRING:
                text = reader.text()
                address = _single_address(text)
                values.append(address if address is not None else ExactString(text))
            elif token.numeric:
                values.append(ExactNumber(reader.text(), reader.number(), self.dialect.number_bound,
                                          self.dialect.numbers_by_value))
            elif token is Token.TRUE or token is Token.FALSE or token is Token.NULL:
                values.append(Literal({Token.TRUE: True, Token.FALSE: False}.get(token)))
            else:
                self.fail("Match value must be String, number, true, false, or null")
        if not values:
            self.fail("Empty arrays are not allowed")
        if not rules:
            rules.append({})
        for rule in rules:
            rule[name] = tuple(values)

    # -- match expressions -------------------------------------------------------------------
    def _expression(self) -> Matcher:
        reader = self.reader
        if reader.next() is not Token.FIELD_NAME:
            self.fail("Match expression name not found")
        kind = reader.name
        if kind in ("prefix", "suffix", "equals-ignore-case"):
            if reader.next() is not Token.STRING:
                self.fail(f"{kind} match pattern must be a string")
            text = reader.text()
            matcher: Matcher = {"prefix": Prefix, "suffix": Suffix, "equals-ignore-case": EqualsIgnoreCase}[kind](text)
            self._one_key()
            return matcher
        if kind == "numeric":
            if reader.next() is not Token.START_ARRAY:
                self.fail("Value of numeric must be an array.")
            matcher = self._numeric()
            if reader.next() is not Token.END_OBJECT:
                self.fail("Too many elements in numeric expression")
            return matcher
        if kind == "anything-but":
            return self._anything_but()
        if kind == "exists":
            token = reader.next()
            if token is not Token.TRUE and token is not Token.FALSE:
                self.fail("exists match pattern must be either true or false.")
            self._one_key()
            return Exists(token is Token.TRUE)
        if kind == "cidr":
            if reader.next() is not Token.STRING:
                self.fail("prefix match pattern must be a string")  # Event Ruler's wording for cidr too
            matcher = cidr_range(reader.text())
            self._one_key()
            return matcher
        self.fail(f"Unrecognized match type {kind}")
        raise AssertionError("unreachable")

    def _one_key(self) -> None:
        if self.reader.next() is not Token.END_OBJECT:
            self.fail("Only one key allowed in match expression")

    def _anything_but(self) -> Matcher:
        reader, dialect = self.reader, self.dialect
        token = reader.next()
        ignore_case = False
        if token is Token.START_OBJECT:
            if reader.next() is not Token.FIELD_NAME:
                self.fail("Anything-But expression name not found")
            form = reader.name
            if form == "equals-ignore-case" and form in dialect.anything_but_forms:
                ignore_case = True
                token = reader.next()
            else:
                if form not in dialect.anything_but_forms:
                    self.fail(f"Unsupported anything-but pattern: {form}")
                if reader.next() is not Token.STRING:
                    self.fail("prefix match pattern must be a string" if dialect.older_messages
                              else "prefix/suffix match pattern must be a string")
                text = reader.text()
                if not text:
                    self.fail("Null prefix not allowed" if dialect.older_messages else "Null prefix/suffix not allowed")
                self._one_key()
                self._one_key()
                return AnythingButPrefix(text) if form == "prefix" else AnythingButSuffix(text)
        if token not in (Token.START_ARRAY, Token.STRING, Token.INT, Token.FLOAT):
            self.fail("Value of anything-but must be an array or single string/number value.")
        if token is Token.START_ARRAY:
            matcher = self._anything_but_list(ignore_case)
        elif token is Token.STRING:
            matcher = AnythingButStrings([reader.text()], ignore_case)
        elif ignore_case:
            self.fail("Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.")
            raise AssertionError("unreachable")
        else:
            matcher = AnythingButNumbers([self._comparable(reader.number())], dialect.number_bound)
        if reader.next() is not Token.END_OBJECT:
            self.fail("Too many elements in numeric expression")
        if ignore_case and reader.next() is not Token.END_OBJECT:
            self.fail("Too many elements in numeric expression")
        return matcher

    def _anything_but_list(self, ignore_case: bool) -> Matcher:
        reader = self.reader
        strings: list[str] = []
        numbers: list[int] = []
        while (token := reader.next()) is not Token.END_ARRAY:
            if token is Token.STRING:
                strings.append(reader.text())
            elif token.numeric and not ignore_case:
                numbers.append(self._comparable(reader.number()))
            elif ignore_case:
                self.fail("Inside anything-but/equals-ignore-case list, numberic|start|null|boolean is not supported.")
            else:
                self.fail("Inside anything but list, start|null|boolean is not supported.")
        if ignore_case:
            return AnythingButStrings(strings, ignore_case=True)
        if bool(strings) == bool(numbers):
            self.fail("Inside anything but list, either all values are number or string, mixed type is not supported")
        if strings:
            return AnythingButStrings(strings)
        return AnythingButNumbers(numbers, self.dialect.number_bound)

    def _comparable(self, number: float) -> int:
        key = comparable(number, self.dialect.number_bound)
        if key is None:
            bound = _java_double(self.dialect.number_bound)
            self.fail(f"Value must be between -{bound} and {bound}, inclusive")
        return key  # type: ignore[return-value]

    def _numeric(self) -> Matcher:
        """`{"numeric": [...]}`; numbers become comparable only once the array is read, where
        Event Ruler builds its Range (so a number out of bounds is reported after `]`)."""
        reader = self.reader
        if reader.next() is not Token.STRING:
            self.fail(f"Invalid member in numeric match: {reader.text()}")
        operator = reader.text()
        token = reader.next()
        bound = self.dialect.number_bound
        if operator not in ("=", ">=", ">", "<=", "<"):
            self.fail(f"Unrecognized numeric range operator: {operator}")
        if token is None or not token.numeric:
            self.fail(f"Value of {'equals' if operator == '=' else operator} must be numeric")
        value = reader.number()
        if operator in ("=", "<", "<="):
            if reader.next() is not Token.END_ARRAY:
                self.fail("Too many elements in numeric expression")
            key = self._comparable(value)
            if operator == "=":
                return NumericRange(key, False, key, False, bound)
            return NumericRange(None, False, key, operator == "<", bound)
        token = reader.next()
        if token is Token.END_ARRAY:
            return NumericRange(self._comparable(value), operator == ">", None, False, bound)
        if token is not Token.STRING:
            self.fail(f"Bad value in numeric range: {reader.text()}")
        upper = reader.text()
        if upper not in ("<", "<="):
            self.fail(f"Bad numeric range operator: {upper}")
        token = reader.next()
        if token is None or not token.numeric:
            self.fail(f"Value of {upper} must be numeric")
        top_value = reader.number()
        if reader.next() is not Token.END_ARRAY:
            self.fail("Too many terms in numeric range expression")
        bottom, top = self._comparable(value), self._comparable(top_value)
        if bottom >= top:
            self.fail("Bottom must be less than top")
        return NumericRange(bottom, operator == ">", top, upper == "<", bound)


def _java_double(value: float) -> str:
    """A double as Java's Double.toString writes it for the bounds used here (5.0E9)."""
    exponent = len(str(int(value))) - 1
    return f"{value / 10 ** exponent:.1f}E{exponent}"


def _is_ip_literal(text: str) -> bool:
    return bool(_IPV4.match(text) or (":" in text and _IPV6.match(text)))


def _single_address(text: str) -> IpRange | None:
    """An IP address literal written as a plain string matches as an address."""
    if not _is_ip_literal(text):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return IpRange(int(address), int(address), address.version)


def cidr_range(text: str) -> IpRange:
    """Event Ruler's CIDR: from the address as written (not masked) to its last host address.
    Errors are raised outside the parser, so they carry no location."""
    parts = text.split("/")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()  # Java's String.split drops trailing empty strings
    if len(parts) != 2:
        raise PatternError("Malformed CIDR, one '/' required")
    address_text, mask_text = parts
    if not re.fullmatch(r"[+-]?[0-9]+", mask_text):
        raise PatternError("Malformed CIDR, mask bits must be an integer")
    mask = int(mask_text)
    if mask < 0:
        raise PatternError("Malformed CIDR, mask bits must not be negative")
    if not _is_ip_literal(address_text):
        raise PatternError(f"Nonstandard IP address: {address_text}")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        raise PatternError(f"Invalid IP address: {address_text}") from None
    width = 32 if address.version == 4 else 128
    if mask > width - 1:
        raise PatternError(f"IPv{address.version} mask bits must be < {width}")
    low = int(address)
    return IpRange(low, low | ((1 << (width - mask)) - 1), address.version)
