"""CloudFormation intrinsics: the evaluator and the local stack it reads.

The evaluator (`resolve`) is a pure function of (value, scope). `StackScope` is the scope of
one template deployed as a stack called "local": what a `Ref` or `Fn::GetAtt` means (names,
ARNs, queue URLs), parameters, conditions, mappings, and SAM's Globals merge. Reading the
functions and resources out of it is `emulator.template.loader`'s job.

Reference: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

from emulator.template.parameters import ParameterError, ParameterValue, resolve_parameters
from emulator.template.resource_values import (
    ATTRIBUTES, DYNAMODB_STREAM_LABEL, LAMBDA_FUNCTION, NAME_PROPERTY, REF_VALUES, SAM_FUNCTION,
    implicit_resources,
)

__all__ = ["LAMBDA_FUNCTION", "NAME_PROPERTY", "SAM_FUNCTION", "IntrinsicError", "StackScope",
           "StackSettings", "TemplateError", "merge_globals", "resolve", "to_text"]

# The value of `Ref: AWS::NoValue`: the enclosing key (or list item) disappears.
NO_VALUE: Any = type("NoValueType", (), {"__repr__": lambda self: "AWS::NoValue"})()

# `${Name}` or `${Res.Attr}`; `${!Literal}` is an escape for a literal `${Literal}`.
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Fn::GetAZs has no meaning locally; three zones is the usual shape of a Region.
_LOCAL_ZONE_SUFFIXES = ("a", "b", "c")
LOCAL_STACK_NAME = "local"
SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
_LOGICAL_ID = re.compile(r"[A-Za-z0-9]+")  # CloudFormation logical IDs are alphanumeric.


class IntrinsicError(ValueError):
    """An intrinsic could not be evaluated. `path` locates it inside the value being resolved."""

    def __init__(self, problem: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


class TemplateError(ValueError):
    """The template cannot be loaded. The message says where (file, resource, property) and what to do."""

    def __init__(self, source: str, problem: str, *, logical_id: str | None = None,
                 prop: str | None = None, line: int | None = None) -> None:
        self.source, self.problem, self.line = source, problem, line
        self.logical_id, self.prop = logical_id, prop
        where = source + (f", line {line}" if line else "")
        where += f": resource {logical_id!r}" if logical_id else ""
        where += f", property {prop!r}" if prop else ""
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class StackSettings:
    """Everything a stack needs besides the template itself."""

    source: str
    base_dir: Path
    region: str
    account_id: str
    endpoint_url: str
    parameters: Mapping[str, str]
    warn: Callable[[str], None]
    warned: set[tuple[str, ...]] = field(default_factory=set)
    # Values for Fn::ImportValue, by export name (`--import-values`): a local app has no
    # other stacks to export them.
    imports: Mapping[str, str] = field(default_factory=dict)

    def warn_once(self, key: tuple[str, ...], message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.warn(f"{self.source}: {message}")


class Scope(Protocol):
    """What an intrinsic may look up in the stack it belongs to."""

    region: str

    def ref(self, name: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...

    def condition(self, name: str) -> bool: ...

    def find_in_map(self, map_name: str, top_key: str, second_key: str) -> Any: ...

    def import_value(self, export_name: str) -> Any: ...


# --- evaluation -------------------------------------------------------------------------


def resolve(value: Any, scope: Scope, path: tuple[str, ...] = ()) -> Any:
    """Evaluate every intrinsic in `value`. May return NO_VALUE; raises IntrinsicError."""
    if isinstance(value, list):
        items = [resolve(item, scope, (*path, f"[{i}]")) for i, item in enumerate(value)]
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1:
        (key, argument), = value.items()
        if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
            try:
                return _call(key, argument, scope, path)
            except IntrinsicError as err:
                # The outermost intrinsic names the place: a property, not an argument of Fn::Join.
                err.path = path
                raise
    items = {key: resolve(item, scope, (*path, str(key))) for key, item in value.items()}
    return {key: item for key, item in items.items() if item is not NO_VALUE}


def resolve_condition(value: Any, scope: Scope, path: tuple[str, ...] = ()) -> bool:
    """Evaluate a condition expression: `{Condition: Name}` or a boolean intrinsic."""
    if isinstance(value, Mapping) and len(value) == 1 and "Condition" in value:
        name = value["Condition"]
        if not isinstance(name, str):
            raise IntrinsicError(f"Condition takes a condition name, got {name!r}", path)
        return scope.condition(name)
    result = resolve(value, scope, path)
    if isinstance(result, bool):
        return result
    if result in ("true", "false"):
        return result == "true"
    raise IntrinsicError(
        f"expected a condition (Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition), got {result!r}",
        path)


def to_text(value: Any, what: str) -> str:
    """A scalar as CloudFormation renders it into a string (booleans are lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise IntrinsicError(f"{what} must be a string, got {value!r}")


def _args(name: str, argument: Any, count: int) -> list[Any]:
    if not isinstance(argument, list) or len(argument) != count:
        raise IntrinsicError(f"{name} takes a list of {count} items, got {argument!r}")
    return argument


def _call(name: str, argument: Any, scope: Scope, path: tuple[str, ...]) -> Any:
    handler = _FUNCTIONS.get(name)
    if handler is None:
        raise IntrinsicError(
            f"{name} is not supported by the emulator; replace it with a literal or a Parameter")
    return handler(argument, scope, path)


def _ref(argument: Any, scope: Scope, path: tuple[str, ...]) -> Any:
    if not isinstance(argument, str):
        raise IntrinsicError(f"Ref takes a name, got {argument!r}")
    return scope.ref(argument)


def _get_att(argument: Any, scope: Scope, path: tuple[str, ...]) -> Any:
    if isinstance(argument, str):
        argument = list(argument.partition(".")[::2])
    logical_id, attribute = _args("Fn::GetAtt", argument, 2)
    attribute = to_text(resolve(attribute, scope, path), "Fn::GetAtt attribute")
    if not isinstance(logical_id, str) or not logical_id or not attribute:
        raise IntrinsicError(f"Fn::GetAtt takes [LogicalId, Attribute], got {argument!r}")
    return scope.get_att(logical_id, attribute)


def _sub(argument: Any, scope: Scope, path: tuple[str, ...]) -> str:
    if isinstance(argument, str):
        text, variables = argument, {}
    else:
        text, variables = _args("Fn::Sub", argument, 2)
        if not isinstance(text, str) or not isinstance(variables, Mapping):
            raise IntrinsicError(f"Fn::Sub takes [String, {{Var: Value}}], got {argument!r}")
        variables = {k: resolve(v, scope, path) for k, v in variables.items()}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            value = variables[name]
        elif "." in name:
            logical_id, attribute = name.split(".", 1)
            value = scope.get_att(logical_id, attribute)
        else:
            value = scope.ref(name)
        return to_text(value, f"Fn::Sub variable ${{{name}}}")

    return _SUB_VARIABLE.sub(substitute, text)


def _join(argument: Any, scope: Scope, path: tuple[str, ...]) -> str:
    delimiter, items = _args("Fn::Join", argument, 2)
    items = resolve(items, scope, path)
    if not isinstance(items, list):
        raise IntrinsicError(f"Fn::Join needs a list of values, got {items!r}")
    return to_text(delimiter, "Fn::Join delimiter").join(to_text(i, "Fn::Join item") for i in items)


def _select(argument: Any, scope: Scope, path: tuple[str, ...]) -> Any:
    index, items = (resolve(a, scope, path) for a in _args("Fn::Select", argument, 2))
    try:
        position = int(index)
    except (TypeError, ValueError):
        raise IntrinsicError(f"Fn::Select index must be an integer, got {index!r}") from None
    if not isinstance(items, list) or not 0 <= position < len(items):
        raise IntrinsicError(f"Fn::Select index {position} is outside the list {items!r}")
    return items[position]


def _split(argument: Any, scope: Scope, path: tuple[str, ...]) -> list[str]:
    delimiter, text = (resolve(a, scope, path) for a in _args("Fn::Split", argument, 2))
    return to_text(text, "Fn::Split source").split(to_text(delimiter, "Fn::Split delimiter"))


def _if(argument: Any, scope: Scope, path: tuple[str, ...]) -> Any:
    name, when_true, when_false = _args("Fn::If", argument, 3)
    if not isinstance(name, str):
        raise IntrinsicError(f"Fn::If takes a condition name first, got {name!r}")
    # Only the chosen branch is evaluated: the other may Ref a resource that the same
    # condition left out of the stack.
    return resolve(when_true if scope.condition(name) else when_false, scope, path)


def _equals(argument: Any, scope: Scope, path: tuple[str, ...]) -> bool:
    left, right = (resolve(a, scope, path) for a in _args("Fn::Equals", argument, 2))
    if isinstance(left, (str, int, float)) and isinstance(right, (str, int, float)):
        return to_text(left, "Fn::Equals") == to_text(right, "Fn::Equals")
    return bool(left == right)


def _not(argument: Any, scope: Scope, path: tuple[str, ...]) -> bool:
    (operand,) = _args("Fn::Not", argument, 1)
    return not resolve_condition(operand, scope, path)


def _all_conditions(name: str, argument: Any, scope: Scope, path: tuple[str, ...]) -> list[bool]:
    # 2 to 10 conditions, per the Fn::And / Fn::Or reference.
    if not isinstance(argument, list) or not 2 <= len(argument) <= 10:
        raise IntrinsicError(f"{name} takes a list of 2 to 10 conditions, got {argument!r}")
    return [resolve_condition(operand, scope, path) for operand in argument]


def _find_in_map(argument: Any, scope: Scope, path: tuple[str, ...]) -> Any:
    if not isinstance(argument, list) or len(argument) != 3:
        raise IntrinsicError(f"Fn::FindInMap takes [MapName, TopKey, SecondKey], got {argument!r}")
    keys = [to_text(resolve(a, scope, path), "Fn::FindInMap key") for a in argument]
    return scope.find_in_map(*keys)


def _base64(argument: Any, scope: Scope, path: tuple[str, ...]) -> str:
    text = to_text(resolve(argument, scope, path), "Fn::Base64 input")
    return base64.b64encode(text.encode()).decode()


def _get_azs(argument: Any, scope: Scope, path: tuple[str, ...]) -> list[str]:
    region = to_text(resolve(argument, scope, path), "Fn::GetAZs Region") or scope.region
    return [region + suffix for suffix in _LOCAL_ZONE_SUFFIXES]


def _import_value(argument: Any, scope: Scope, path: tuple[str, ...]) -> Any:
    return scope.import_value(to_text(resolve(argument, scope, path), "Fn::ImportValue export name"))


_FUNCTIONS = {
    "Ref": _ref, "Fn::GetAtt": _get_att, "Fn::Sub": _sub, "Fn::Join": _join, "Fn::Select": _select,
    "Fn::Split": _split, "Fn::If": _if, "Fn::Equals": _equals, "Fn::Not": _not,
    "Fn::And": lambda a, s, p: all(_all_conditions("Fn::And", a, s, p)),
    "Fn::Or": lambda a, s, p: any(_all_conditions("Fn::Or", a, s, p)),
    "Fn::FindInMap": _find_in_map, "Fn::Base64": _base64, "Fn::GetAZs": _get_azs,
    "Fn::ImportValue": _import_value,
}


# --- the local stack: the Scope that template intrinsics see ------------------------------


class StackScope:
    """Parameters, conditions, mappings and resource names of one template."""

    def __init__(self, doc: Any, settings: StackSettings) -> None:
        self.settings = settings
        self.region = settings.region
        fail = self.fail
        if not isinstance(doc, Mapping):
            fail("the template must be a mapping with a Resources section; check the file is a template")
        resources = doc.get("Resources")
        if not isinstance(resources, Mapping) or not resources:
            fail("the template needs a non-empty Resources mapping; declare at least one resource")
        transforms = doc.get("Transform", [])
        for transform in transforms if isinstance(transforms, list) else [transforms]:
            if transform != SERVERLESS_TRANSFORM:
                fail(f"Transform {transform!r} is not supported; only {SERVERLESS_TRANSFORM} is")
        self.parameters = self._section(doc, "Parameters")
        self.mappings = self._section(doc, "Mappings")
        self.conditions = self._section(doc, "Conditions")
        globals_ = self._section(doc, "Globals")
        self.function_globals = globals_.get("Function") or {}
        if not isinstance(self.function_globals, Mapping):
            fail("Globals.Function must be a mapping of function properties")
        for name in settings.parameters.keys() - self.parameters.keys():
            settings.warn_once(("parameter", name), f"parameter {name!r} is given but not declared; ignored")
        # CloudFormation checks every parameter when the stack is created, used or not.
        try:
            self.parameter_values: dict[str, ParameterValue] = resolve_parameters(
                self.parameters, settings.parameters, settings.warn_once)
        except ParameterError as err:
            fail(str(err))
        self.raw: dict[str, Mapping[str, Any]] = {}
        self.types: dict[str, str] = {}
        for logical_id, resource in resources.items():
            self._add_resource(logical_id, resource)
        self.implicit = implicit_resources(self.types, self.raw)
        self.pseudo: dict[str, Any] = {
            "AWS::Region": settings.region, "AWS::AccountId": settings.account_id,
            "AWS::StackName": LOCAL_STACK_NAME, "AWS::Partition": "aws",
            "AWS::StackId": f"arn:aws:cloudformation:{settings.region}:{settings.account_id}:"
                            f"stack/{LOCAL_STACK_NAME}/{LOCAL_STACK_NAME}",
            "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": NO_VALUE, "AWS::NotificationARNs": [],
        }
        self._names: dict[str, str] = {}
        self._truth: dict[str, bool] = {}
        self._pending: set[str] = set()  # names and conditions being evaluated (cycle check)

    def fail(self, problem: str, logical_id: str | None = None, prop: str | None = None) -> NoReturn:
        raise TemplateError(self.settings.source, problem, logical_id=logical_id, prop=prop)

    def _section(self, doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        section = doc.get(name) or {}
        if not isinstance(section, Mapping):
            self.fail(f"the {name} section must be a mapping")
        return section

    def _add_resource(self, logical_id: Any, resource: Any) -> None:
        if not isinstance(logical_id, str) or not _LOGICAL_ID.fullmatch(logical_id):
            self.fail(f"logical id {logical_id!r} must be alphanumeric (A-Z, a-z, 0-9); rename it")
        if not isinstance(resource, Mapping) or not isinstance(resource.get("Type"), str):
            self.fail("every resource needs a Type, e.g. Type: AWS::Serverless::Function", logical_id, "Type")
        properties = resource.get("Properties") or {}
        if not isinstance(properties, Mapping):
            self.fail("Properties must be a mapping of property names to values", logical_id, "Properties")
        rtype = resource["Type"]
        if rtype == SAM_FUNCTION:
            # SAM merges Globals into each serverless function before anything else happens.
            properties = merge_globals(self.function_globals, properties)
        self.raw[logical_id] = {**resource, "Properties": properties}
        self.types[logical_id] = rtype

    def resolve_property(self, logical_id: str, prop: str) -> Any:
        """One property of a resource with its intrinsics evaluated; None if absent or NoValue."""
        properties = self.raw[logical_id]["Properties"]
        if prop not in properties:
            return None
        try:
            value = resolve(properties[prop], self, (prop,))
        except IntrinsicError as err:
            self.fail(err.problem, logical_id, _format_path(err.path or (prop,)))
        return None if value is NO_VALUE else value

    def included(self, logical_id: str) -> bool:
        """False when the resource's `Condition` is false: CloudFormation leaves it out."""
        name = self.raw[logical_id].get("Condition")
        if name is None:
            return True
        try:
            return self.condition(to_text(name, "Condition"))
        except IntrinsicError as err:
            self.fail(err.problem, logical_id, "Condition")

    # Scope protocol.

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameter_values[name]
        rtype = self._type_of(name)
        if rtype is None:
            return self._sam_function_reference(name)
        value = REF_VALUES.get(rtype)
        if value is None:
            self.settings.warn_once(("ref", rtype), f"Ref of a {rtype} (first: {name!r}) gives its logical "
                                    f"id: the emulator does not know the value CloudFormation returns for {rtype}")
            return name
        return value(self, name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        rtype = self._type_of(logical_id)
        if rtype is None:
            raise IntrinsicError(f"Fn::GetAtt {logical_id}.{attribute}: there is no resource "
                                 f"{logical_id!r}; declare it under Resources or fix the spelling")
        getters = ATTRIBUTES.get(rtype, {})
        if attribute not in getters:
            known = f" (supported: {', '.join(getters)})" if getters else ""
            raise IntrinsicError(f"Fn::GetAtt {logical_id}.{attribute}: attribute {attribute!r} of "
                                 f"{rtype} is not supported by the emulator{known}; use a Parameter instead")
        return getters[attribute](self, logical_id)

    def import_value(self, export_name: str) -> Any:
        if export_name in self.settings.imports:
            return self.settings.imports[export_name]
        raise IntrinsicError(
            f"Fn::ImportValue {export_name!r} reads another stack's export, and a local app has no other "
            f"stacks; give its value with --import-values {export_name}=... (or EMULATOR_IMPORT_VALUES, "
            "or import_values={...} in the pytest fixtures)")

    def _type_of(self, logical_id: str) -> str | None:
        """The type of a declared (and included) or SAM-generated resource; None if there is none."""
        if logical_id in self.raw:
            self._require_included(logical_id)
            return self.types[logical_id]
        return self.implicit.get(logical_id)

    def _sam_function_reference(self, name: str) -> Any:
        """`Ref: MyFunction.Alias` / `MyFunction.Version`: what SAM's AutoPublishAlias creates
        (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html#sam-function-autopublishalias).
        The emulator publishes version 1 at start-up."""
        logical_id, _, suffix = name.partition(".")
        if suffix in ("Alias", "Version") and self.types.get(logical_id) == SAM_FUNCTION:
            self._require_included(logical_id)
            alias = self.resolve_property(logical_id, "AutoPublishAlias")
            if alias is None:
                raise IntrinsicError(f"Ref {name!r}: function {logical_id!r} has no AutoPublishAlias, so SAM "
                                     f"creates no {suffix.lower()}; add AutoPublishAlias or Ref the function")
            function_arn = self.arn("lambda", f"function:{self.name_of(logical_id)}")
            return f"{function_arn}:{alias if suffix == 'Alias' else 1}"
        raise IntrinsicError(f"Ref {name!r} names no parameter, resource or pseudo parameter; "
                             "declare it under Parameters or Resources, or fix the spelling")

    def condition(self, name: str) -> bool:
        if name in self._truth:
            return self._truth[name]
        if name not in self.conditions:
            raise IntrinsicError(f"there is no condition {name!r}; declare it under Conditions")
        key = f"Conditions.{name}"
        if key in self._pending:
            raise IntrinsicError(f"condition {name!r} depends on itself; break the cycle")
        self._pending.add(key)
        try:
            truth = resolve_condition(self.conditions[name], self, (key,))
        except IntrinsicError as err:
            raise IntrinsicError(f"in condition {name!r}: {err.problem}") from None
        finally:
            self._pending.discard(key)
        self._truth[name] = truth
        return truth

    def find_in_map(self, map_name: str, top_key: str, second_key: str) -> Any:
        try:
            return self.mappings[map_name][top_key][second_key]
        except (KeyError, TypeError):
            raise IntrinsicError(f"Fn::FindInMap: Mappings has no {map_name}.{top_key}.{second_key}; "
                                 "add the entry or fix the keys") from None

    # Names, ARNs and the values of Ref / GetAtt.

    def name_of(self, logical_id: str) -> str:
        """The physical name CloudFormation would give the resource (its name property or the logical id)."""
        if logical_id in self._names:
            return self._names[logical_id]
        if logical_id not in self.raw:
            return logical_id  # generated by SAM: named after its logical id locally
        rtype, prop = self.types[logical_id], NAME_PROPERTY.get(self.types[logical_id], "")
        if logical_id in self._pending:
            raise IntrinsicError(f"the {prop} of {logical_id!r} refers to itself; break the cycle")
        self._pending.add(logical_id)
        try:
            explicit = self.resolve_property(logical_id, prop) if prop else None
        finally:
            self._pending.discard(logical_id)
        if explicit is not None and not isinstance(explicit, str):
            self.fail(f"{explicit!r} is not a name; write a string", logical_id, prop)
        name = explicit if explicit is not None else logical_id
        if rtype == "AWS::S3::Bucket" and explicit is None:
            name = logical_id.lower()  # bucket names are lower case
        if rtype == "AWS::SQS::Queue":
            name = self._queue_name(logical_id, name, explicit is not None)
        self._names[logical_id] = name
        return name

    def _queue_name(self, logical_id: str, name: str, explicit: bool) -> str:
        # A FIFO queue's name must end in ".fifo":
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html
        fifo = self.resolve_property(logical_id, "FifoQueue") in (True, "true")
        if fifo and not explicit:
            return f"{name}.fifo"
        if fifo != name.endswith(".fifo"):
            self.fail(f"queue name {name!r} and FifoQueue {fifo} disagree: a FIFO queue's name must "
                      "end in .fifo and only a FIFO queue's may", logical_id, "QueueName")
        return name

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.settings.account_id}:{resource}"

    @property
    def account_id(self) -> str:
        return self.settings.account_id

    @property
    def endpoint_url(self) -> str:
        return self.settings.endpoint_url

    def property_of(self, logical_id: str, prop: str) -> Any:
        return self.resolve_property(logical_id, prop)

    def _require_included(self, logical_id: str) -> None:
        if not self.included(logical_id):
            raise IntrinsicError(f"resource {logical_id!r} is left out because its condition "
                                 f"{self.raw[logical_id]['Condition']!r} is false; wrap the reference "
                                 "in Fn::If with the same condition")

    def table_stream_arn(self, logical_id: str) -> str:
        if "StreamSpecification" not in self.raw[logical_id]["Properties"]:
            raise IntrinsicError(f"Fn::GetAtt {logical_id}.StreamArn: the table has no stream; "
                                 "add StreamSpecification.StreamViewType to it")
        return self.arn("dynamodb", f"table/{self.name_of(logical_id)}/stream/{DYNAMODB_STREAM_LABEL}")


def _format_path(path: tuple[str, ...]) -> str:
    return "".join(part if part.startswith("[") or i == 0 else f".{part}" for i, part in enumerate(path))


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and (
        "Ref" in value or str(next(iter(value))).startswith("Fn::"))


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals merge: maps merge key by key with the resource winning, lists are
    concatenated globals first, and anything else (an intrinsic counts as a scalar) is
    replaced by the resource's value.
    https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification-template-anatomy-globals.html
    """
    if (isinstance(global_value, Mapping) and isinstance(local_value, Mapping)
            and not _is_intrinsic(global_value) and not _is_intrinsic(local_value)):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value
