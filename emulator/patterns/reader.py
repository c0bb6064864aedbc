"""A streaming JSON token reader that knows where it is the way Jackson does.

SNS rejects a bad filter policy with the message of the rule compiler, followed by where
its JSON parser (Jackson, reading token by token) stood: `... at [Source: (String)"{...}";
line: 1, column: 31]`, as recorded from AWS in LocalStack's AWS-validated snapshots
(tests/aws/services/sns/test_sns_filter_policy.snapshot.json in localstack/localstack).
The column follows from how Jackson reads, which this reader copies:

* after a field name it reads the colon and the start of the value at once;
* a string value is read lazily: the position is just past its opening quote until its
  text is asked for (`text()`), then just past its closing quote;
* numbers and `true`/`false`/`null` are read whole; brackets are one character.

Only text that is already known to be valid JSON is read here (callers parse it first),
so syntax errors are reported plainly, without positions.
"""

from __future__ import annotations

import json
from enum import Enum

# Jackson shows at most this many characters of the source in a location
# (JsonLocation's content snippet).
MAX_SOURCE_SNIPPET = 500
_WHITESPACE = " \t\n\r"
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_LITERALS = {"t": ("true", "TRUE"), "f": ("false", "FALSE"), "n": ("null", "NULL")}


class Token(Enum):
    START_OBJECT = "{"
    END_OBJECT = "}"
    START_ARRAY = "["
    END_ARRAY = "]"
    FIELD_NAME = "name"
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    TRUE = "true"
    FALSE = "false"
    NULL = "null"

    @property
    def numeric(self) -> bool:
        return self is Token.INT or self is Token.FLOAT

    @property
    def scalar(self) -> bool:
        return self in _SCALARS


_SCALARS = frozenset({Token.STRING, Token.INT, Token.FLOAT, Token.TRUE, Token.FALSE, Token.NULL})


class ReaderSyntaxError(ValueError):
    """The text is not the JSON this reader expects (callers validate JSON first)."""


class TokenReader:
    def __init__(self, text: str) -> None:
        self.source = text
        self.pos = 0  # index of the next character to read, as Jackson's input pointer
        self._stack: list[str] = []  # "o" (object) or "a" (array) per open container
        self._first = True  # no member read yet in the innermost container
        self._pending: Token | None = None  # a value read ahead after a field name
        self._incomplete = False  # the current string's body is not read yet
        self._token: Token | None = None
        self._text = ""  # text of the current token, once known
        self.name = ""  # the last field name

    # -- reading ---------------------------------------------------------------------------
    def next(self) -> Token | None:
        """The next token, or None at the end of the text."""
        if self._pending is not None:
            # The value read ahead with the field name: a string stays unread (Jackson
            # returns its token without moving).
            token, self._pending = self._pending, None
            return self._set(token)
        if self._incomplete:
            self._finish_string()
        self._skip_space()
        if not self._stack:
            if self._token is not None:
                return None
            return self._set(self._value_start())
        context = self._stack[-1]
        closer = "}" if context == "o" else "]"
        if self._peek() == closer:
            self.pos += 1
            self._stack.pop()
            self._first = False
            self._text = closer
            self._token = Token.END_OBJECT if closer == "}" else Token.END_ARRAY
            return self._token
        if not self._first:
            self._expect(",")
            self._skip_space()
        self._first = False
        if context == "a":
            return self._set(self._value_start())
        self.name = self._read_string_whole()
        self._skip_space()
        self._expect(":")
        self._skip_space()
        self._pending = self._value_start()
        self._token = Token.FIELD_NAME
        self._text = self.name
        return Token.FIELD_NAME

    def text(self) -> str:
        """The current token's text (Jackson's getText): a string's value (read now, if it
        was not yet), a number as written, a literal, a bracket, or a field name."""
        if self._token is Token.FIELD_NAME:
            return self.name
        if self._incomplete and self._token is Token.STRING:
            self._finish_string()
        return self._text

    def number(self) -> float:
        return float(self._text)

    def location(self) -> tuple[int, int]:
        """(line, column) of the next character, both from 1, columns in UTF-16 units as
        Java counts them."""
        source, pos = self.source, self.pos
        line = source.count("\n", 0, pos) + 1
        start = source.rfind("\n", 0, pos) + 1
        column = len(source[start:pos].encode("utf-16-le")) // 2 + 1
        return line, column

    def where(self) -> str:
        """Jackson's location suffix for an error message."""
        line, column = self.location()
        text = self.source
        if len(text) > MAX_SOURCE_SNIPPET:
            snippet = f'"{text[:MAX_SOURCE_SNIPPET]}"[truncated {len(text) - MAX_SOURCE_SNIPPET} chars]'
        else:
            snippet = f'"{text}"'
        return f"\n at [Source: (String){snippet}; line: {line}, column: {column}]"

    # -- the pieces ------------------------------------------------------------------------
    def _set(self, token: Token) -> Token:
        self._token = token
        return token

    def _peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def _skip_space(self) -> None:
        source, pos, end = self.source, self.pos, len(self.source)
        while pos < end and source[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ReaderSyntaxError(f"expected {char!r} at offset {self.pos}")
        self.pos += 1

    def _value_start(self) -> Token:
        char = self._peek()
        if char == "{" or char == "[":
            self.pos += 1
            self._stack.append("o" if char == "{" else "a")
            self._first = True
            self._text = char
            return Token.START_OBJECT if char == "{" else Token.START_ARRAY
        if char == '"':
            self.pos += 1  # Jackson stops here until the text is wanted
            self._incomplete = True
            return Token.STRING
        if char in _LITERALS:
            word = _LITERALS[char][0]
            if not self.source.startswith(word, self.pos):
                raise ReaderSyntaxError(f"unknown literal at offset {self.pos}")
            self.pos += len(word)
            self._text = word
            return Token(word)
        start = self.pos
        source, end = self.source, len(self.source)
        pos = start
        while pos < end and source[pos] in _NUMBER_CHARS:
            pos += 1
        if pos == start:
            raise ReaderSyntaxError(f"unexpected character at offset {start}")
        self.pos = pos
        self._text = source[start:pos]
        return Token.FLOAT if any(c in self._text for c in ".eE") else Token.INT

    def _string_end(self, start: int) -> int:
        """Index just past the closing quote of the string whose body begins at `start`."""
        source = self.source
        pos = start
        while True:
            quote = source.find('"', pos)
            if quote < 0:
                raise ReaderSyntaxError(f"unterminated string at offset {start}")
            backslashes = 0
            back = quote - 1
            while back >= start and source[back] == "\\":
                backslashes += 1
                back -= 1
            if backslashes % 2 == 0:
                return quote + 1
            pos = quote + 1

    def _finish_string(self) -> None:
        start = self.pos
        end = self._string_end(start)
        self._text = json.loads(self.source[start - 1 : end])
        self.pos = end
        self._incomplete = False

    def _read_string_whole(self) -> str:
        if self._peek() != '"':
            raise ReaderSyntaxError(f"expected a field name at offset {self.pos}")
        start = self.pos + 1
        end = self._string_end(start)
        self.pos = end
        return json.loads(self.source[start - 1 : end])
