"""A compiled pattern against a document: flatten the document, then test each branch.

A document is flattened as AWS's Event Ruler flattens events
(https://github.com/aws/event-ruler, "Arrays" in its README): every leaf value under its
dotted path, each array element a value of the same path. Fields matched in one branch
must come from the same element of any array of objects they share ("array consistency":
{"a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]} does not match {"a": {"b": [1], "c": [4]}}).
An object is not a leaf: `exists` is about leaf values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emulator.patterns.compiler import Pattern

# A leaf value and the array elements it sits in: ((id of the array, index), ...). Only
# arrays that hold objects or arrays are recorded: a list of scalars feeds one path alone,
# so its elements can never disagree with another field.
Leaf = tuple[object, tuple[tuple[int, int], ...]]
Flat = Mapping[str, Sequence[Leaf]]
_NO_ARRAYS: tuple[tuple[int, int], ...] = ()


def flatten(document: Mapping[str, Any]) -> dict[str, list[Leaf]]:
    """Every leaf value of a decoded JSON object, by dotted path."""
    flat: dict[str, list[Leaf]] = {}
    _walk(document, "", _NO_ARRAYS, flat)
    return flat


def _walk(value: Any, path: str, arrays: tuple[tuple[int, int], ...], flat: dict[str, list[Leaf]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else key, arrays, flat)
    elif isinstance(value, list):
        structured = any(isinstance(item, (dict, list)) for item in value)
        for index, item in enumerate(value):
            inner = arrays + ((id(value), index),) if structured else arrays
            _walk(item, path, inner, flat)
    elif path:
        leaves = flat.get(path)
        if leaves is None:
            flat[path] = [(value, arrays)]
        else:
            leaves.append((value, arrays))


def matches(pattern: Pattern, flat: Flat) -> bool:
    """Whether any branch of `pattern` matches the flattened document."""
    for branch in pattern.branches:
        if _branch_matches(branch, flat):
            return True
    return False


def _branch_matches(branch: Any, flat: Flat) -> bool:
    choices: list[list[tuple[tuple[int, int], ...]]] = []
    for name, matchers in branch:
        leaves = flat.get(name)
        if not leaves:
            if any(m.exists is False for m in matchers):
                continue  # absent, and absence was asked for
            return False
        found: list[tuple[tuple[int, int], ...]] = []
        free = False
        for value, arrays in leaves:
            for matcher in matchers:
                if matcher.exists is True or (matcher.exists is None and matcher.test(value)):
                    if not arrays:
                        free = True  # agrees with any choice elsewhere
                    else:
                        found.append(arrays)
                    break
            if free:
                break
        if free:
            continue
        if not found:
            return False
        choices.append(found)
    return not choices or _consistent(choices, 0, {})


def _consistent(choices: list[list[tuple[tuple[int, int], ...]]], index: int, chosen: dict[int, int]) -> bool:
    """Whether one leaf per field can be chosen so that every shared array agrees."""
    if index == len(choices):
        return True
    for arrays in choices[index]:
        if all(chosen.get(array, position) == position for array, position in arrays):
            merged = {**chosen, **dict(arrays)}
            if _consistent(choices, index + 1, merged):
                return True
    return False
