"""Layers in a template: `AWS::Serverless::LayerVersion` / `AWS::Lambda::LayerVersion` with
local content, and the `Layers` a function (or Globals) lists.

A layer of the template is version 1 of its name. A function's `Layers` entry that is not
one of them (a layer published in some AWS account) cannot be fetched: it is reported once
and the function starts without it. Lambda's rules: at most 5 layers per function
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), applied in the
order listed (https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.template.intrinsics import StackScope
from emulator.template.resource_values import LAMBDA_LAYER, LAYER_TYPES, SAM_LAYER, layer_version_arn
from emulator.template.specs import LayerSpec

# "Function layers: 5 layers" (the quotas page above).
MAX_LAYERS_PER_FUNCTION = 5
_LAYER_VERSION_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[a-zA-Z0-9_-]+:\d+")
# Properties read here; anything else on a layer warns once.
_CONTENT_PROPERTY = {SAM_LAYER: "ContentUri", LAMBDA_LAYER: "Content"}
_KNOWN = frozenset({"ContentUri", "Content", "LayerName", "Description", "CompatibleRuntimes",
                    "CompatibleArchitectures", "LicenseInfo"})
# Deployment settings with no meaning for one local stack.
_IGNORED = frozenset({"RetentionPolicy", "PublishLambdaVersion"})


def read_layers(stack: StackScope) -> dict[str, LayerSpec]:
    """Every included layer resource of the template, by logical id."""
    layers: dict[str, LayerSpec] = {}
    for logical_id, rtype in stack.types.items():
        if rtype in LAYER_TYPES and stack.included(logical_id):
            layers[logical_id] = _read_layer(stack, logical_id, rtype)
    return layers


def _read_layer(stack: StackScope, logical_id: str, rtype: str) -> LayerSpec:
    for prop in stack.raw[logical_id]["Properties"]:
        if prop not in _KNOWN and prop not in _IGNORED:
            stack.settings.warn_once((rtype, prop), f"{rtype} property {prop!r} (first seen on {logical_id!r}) "
                                     "is not known to the emulator; ignored")
    prop = _CONTENT_PROPERTY[rtype]
    content = stack.resolve_property(logical_id, prop)
    if isinstance(content, Mapping) or (isinstance(content, str) and content.startswith("s3://")):
        stack.fail(f"{content!r} is content in S3, but only local content is supported; point {prop} at "
                   "the layer's folder (holding python/) or at its .zip", logical_id, prop)
    if not isinstance(content, str) or not content:
        stack.fail("is required: give the local folder (holding python/) or .zip of the layer", logical_id, prop)
    path = (stack.settings.base_dir / content).resolve()
    if not (path.is_dir() or (path.is_file() and path.suffix == ".zip")):
        stack.fail(f"{path} is neither a folder nor a .zip file; point {prop} at the layer's content "
                   "(relative to the template)", logical_id, prop)
    _warn_if_unbuilt(stack, logical_id, path)
    name = stack.name_of(logical_id)
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,140}", name):
        stack.fail(f"{name!r} is not a layer name: use 1 to 140 letters, digits, '-' or '_'", logical_id, "LayerName")
    description = stack.resolve_property(logical_id, "Description")
    license_info = stack.resolve_property(logical_id, "LicenseInfo")
    return LayerSpec(
        logical_id=logical_id, name=name, arn=layer_version_arn(stack, logical_id), content=path,
        description=str(description or ""), license_info=None if license_info is None else str(license_info),
        compatible_runtimes=_strings(stack, logical_id, "CompatibleRuntimes"),
        compatible_architectures=_strings(stack, logical_id, "CompatibleArchitectures"),
    )


def _strings(stack: StackScope, logical_id: str, prop: str) -> tuple[str, ...]:
    value = stack.resolve_property(logical_id, prop)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        stack.fail(f"must be a list of names, got {value!r}", logical_id, prop)
    return tuple(value)


def _warn_if_unbuilt(stack: StackScope, logical_id: str, path: Path) -> None:
    """`Metadata: BuildMethod` asks `sam build` to pip-install the layer's requirements into
    python/; the emulator does not build, so a folder without python/ lacks them."""
    metadata = stack.raw[logical_id].get("Metadata")
    if isinstance(metadata, Mapping) and metadata.get("BuildMethod") and path.is_dir() and not (path / "python").is_dir():
        stack.settings.warn_once(("unbuilt-layer", logical_id), (
            f"layer {logical_id!r} has Metadata.BuildMethod {metadata['BuildMethod']!r}, which `sam build` uses to "
            f"install its requirements into python/; the emulator does not build, and {path} has no python/ folder, "
            "so handlers will not find those packages in it: run `sam build` and serve .aws-sam/build/template.yaml, "
            f"or install them with `pip install -r requirements.txt -t {path / 'python'}`"))


def function_layers(stack: StackScope, logical_id: str, value: Any, runtime: str,
                    layers: Mapping[str, LayerSpec]) -> tuple[LayerSpec, ...]:
    """The template's layers a function lists, in order; a foreign layer is reported once."""
    if value is None:
        return ()
    if not isinstance(value, list):
        stack.fail(f"must be a list of layer version ARNs (e.g. !Ref MyLayer), got {value!r}", logical_id, "Layers")
    if len(value) > MAX_LAYERS_PER_FUNCTION:
        stack.fail(f"lists {len(value)} layers; a function can use at most {MAX_LAYERS_PER_FUNCTION}",
                   logical_id, "Layers")
    by_arn = {layer.arn: layer for layer in layers.values()}
    chosen: list[LayerSpec] = []
    for index, arn in enumerate(value):
        if not isinstance(arn, str) or not _LAYER_VERSION_ARN.fullmatch(arn):
            stack.fail(f"{arn!r} is not a layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:"
                       "<version>); use !Ref on a layer of this template", logical_id, f"Layers[{index}]")
        layer = by_arn.get(arn)
        if layer is None:
            stack.settings.warn_once(("foreign-layer", arn), (
                f"layer {arn} (used by {logical_id!r}) is not declared in this template and the emulator cannot "
                "fetch layers from AWS: the function starts without it, so what it provides is importable only if "
                "installed where the emulator runs. Declare it as an AWS::Serverless::LayerVersion with a local "
                "ContentUri to use it"))
            continue
        if layer in chosen:
            stack.fail(f"lists layer {arn} twice; Lambda refuses duplicates", logical_id, f"Layers[{index}]")
        if layer.compatible_runtimes and runtime not in layer.compatible_runtimes:
            stack.settings.warn_once(("layer-runtime", layer.logical_id, runtime), (
                f"layer {layer.logical_id!r} lists CompatibleRuntimes {list(layer.compatible_runtimes)}, not "
                f"{runtime} (function {logical_id!r}); it is used anyway"))
        chosen.append(layer)
    return tuple(chosen)
