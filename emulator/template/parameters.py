"""Template parameters: the values a stack is created with, checked as CloudFormation checks
them when a stack is created, before any resource is read.

Every declared parameter gets the value given for it (`--parameter-overrides`, as `sam deploy`
and `sam local` take them) or its Default; one without either fails the load with every such
name in one message. Constraints follow the Parameters reference:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# The value of a parameter as `Ref` returns it: a string, or a list for the list types.
ParameterValue = str | list[str]

# Types CloudFormation accepts besides the AWS-specific ones (AWS::EC2::…, List<AWS::…>) and
# the SSM parameter types (AWS::SSM::Parameter::Name, AWS::SSM::Parameter::Value<…>).
_PLAIN_TYPES = frozenset({"String", "Number", "List<Number>", "CommaDelimitedList"})
_SSM_VALUE_TYPE = re.compile(r"AWS::SSM::Parameter::Value<.+>")
_AWS_SPECIFIC_TYPE = re.compile(r"(List<)?AWS::[A-Za-z0-9]+::[A-Za-z0-9:]+(>)?")
_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")
# Where a user gives the values, for the message about missing ones.
HOW_TO_GIVE = ("--parameter-overrides {pairs} (or EMULATOR_PARAMETER_OVERRIDES, or "
               "parameter_overrides={{...}} in the pytest fixtures)")


class ParameterError(ValueError):
    """A parameter has no value, or a value its constraints refuse."""


def is_list_type(ptype: str) -> bool:
    return ptype == "CommaDelimitedList" or ptype.startswith("List<")


def resolve_parameters(declarations: Mapping[str, Any], given: Mapping[str, str],
                       warn_once: Callable[[tuple[str, ...], str], None]) -> dict[str, ParameterValue]:
    """The value of every declared parameter; raises ParameterError naming what is wrong."""
    values: dict[str, ParameterValue] = {}
    missing: list[str] = []
    for name, declaration in declarations.items():
        if not isinstance(declaration, Mapping) or not isinstance(declaration.get("Type"), str):
            raise ParameterError(f"parameter {name!r} must be a mapping with a Type (String, Number, "
                                 "CommaDelimitedList, ...)")
        ptype = declaration["Type"]
        if not (ptype in _PLAIN_TYPES or _SSM_VALUE_TYPE.fullmatch(ptype) or _AWS_SPECIFIC_TYPE.fullmatch(ptype)):
            raise ParameterError(f"parameter {name!r} has Type {ptype!r}, which is not a CloudFormation "
                                 "parameter type; use String, Number, List<Number> or CommaDelimitedList")
        raw = given[name] if name in given else declaration.get("Default")
        if raw is None:
            missing.append(name)
            continue
        if _SSM_VALUE_TYPE.fullmatch(ptype):
            # CloudFormation would read the SSM parameter this names; the backend does not exist
            # yet when the template is read, so the value is taken as it is.
            warn_once(("ssm-parameter", name), f"parameter {name!r} has Type {ptype}: the emulator "
                      f"does not look it up in SSM and uses {_text(raw)!r} itself as the value; pass "
                      f"the value you want with --parameter-overrides {name}=...")
        values[name] = _checked(name, declaration, ptype, raw)
    if missing:
        pairs = " ".join(f"{name}=..." for name in missing)
        names = ", ".join(repr(name) for name in missing)
        raise ParameterError(f"parameter{'s' if len(missing) > 1 else ''} {names} "
                             f"{'have' if len(missing) > 1 else 'has'} no Default and no value was given; "
                             f"pass {'them' if len(missing) > 1 else 'it'} with {HOW_TO_GIVE.format(pairs=pairs)}, "
                             "or add a Default")
    return values


def _text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, list):
        return ",".join(_text(item) for item in raw)
    return str(raw)


def _checked(name: str, declaration: Mapping[str, Any], ptype: str, raw: Any) -> ParameterValue:
    text = _text(raw)
    if not is_list_type(ptype):
        _check_one(name, declaration, ptype, text)
        return text
    # List members are trimmed; each must satisfy the constraints on its own.
    members = [item.strip() for item in text.split(",")] if text else []
    for member in members:
        _check_one(name, declaration, "Number" if ptype == "List<Number>" else "String", member)
    return members


def _check_one(name: str, declaration: Mapping[str, Any], ptype: str, text: str) -> None:
    hint = f" ({declaration['ConstraintDescription']})" if declaration.get("ConstraintDescription") else ""
    allowed = [_text(value) for value in declaration.get("AllowedValues") or []]
    if allowed and text not in allowed:
        raise ParameterError(f"parameter {name!r} is {text!r}, which is not one of its AllowedValues "
                             f"{allowed}{hint}; pass one of those")
    if ptype == "Number":
        if not _NUMBER.fullmatch(text):
            raise ParameterError(f"parameter {name!r} is a Number, but {text!r} is not a number{hint}")
        number = float(text)
        for key, outside in (("MinValue", lambda bound: number < bound), ("MaxValue", lambda bound: number > bound)):
            if key in declaration and outside(_bound(name, key, declaration[key])):
                raise ParameterError(f"parameter {name!r} is {text}, outside its {key} {declaration[key]}{hint}")
        return
    pattern = declaration.get("AllowedPattern")
    if pattern is not None:
        try:
            matches = re.fullmatch(str(pattern), text) is not None
        except re.error as err:
            raise ParameterError(f"parameter {name!r} has an AllowedPattern that is not a regular "
                                 f"expression ({err}); fix the pattern") from None
        if not matches:
            raise ParameterError(f"parameter {name!r} is {text!r}, which does not match its AllowedPattern "
                                 f"{pattern!r}{hint}")
    for key, outside in (("MinLength", lambda bound: len(text) < bound), ("MaxLength", lambda bound: len(text) > bound)):
        if key in declaration and outside(_bound(name, key, declaration[key])):
            raise ParameterError(f"parameter {name!r} is {text!r} ({len(text)} characters), outside its "
                                 f"{key} {declaration[key]}{hint}")


def _bound(name: str, key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"parameter {name!r}: {key} {value!r} is not a number") from None
