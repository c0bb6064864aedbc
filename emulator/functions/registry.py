"""The live function registry: names, ARNs, versions, and name resolution as Lambda does it."""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from emulator.errors import InvalidParameterValue, ResourceNotFound
from emulator.functions.code_tree import CodeFingerprint, SkippedLink, code_fingerprint
from emulator.functions.function_state import Lifecycle
from emulator.functions.resource_policy import ResourcePolicy
from emulator.template.specs import FunctionSpec

log = logging.getLogger("emulator.functions.registry")

LATEST = "$LATEST"
# FunctionName is a name, name:qualifier, a full or a partial ARN:
# https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
_ARN_RE = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):)?(?:(?P<account>\d{12}):)?(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,64})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)


@functools.lru_cache(maxsize=4096)
def _split_name(raw: str) -> tuple[str, str | None, str | None, str | None] | None:
    """(name, qualifier, region, account) of a FunctionName, or None when it is not one.
    Cached: every invocation names its function, most often by the same few strings (an
    SNS subscription's endpoint is a full ARN, matched for every message)."""
    match = _ARN_RE.match(raw)
    if match is None:
        return None
    return match.group("name"), match.group("qualifier"), match.group("region"), match.group("account")


def iso_timestamp(epoch: float) -> str:
    # The Lambda API's LastModified format: 2019-11-14T18:16:05.568+0000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}+0000"


@dataclass(frozen=True)
class FunctionVersion:
    """The configuration one version runs with ($LATEST or a published number)."""

    spec: FunctionSpec
    version: str
    region: str
    account_id: str
    last_modified: float
    code_sha256: str = ""
    code_size: int = 0
    # Changes with every change of this version's code or configuration; "" = derived from the code.
    revision_id: str = ""
    # The .zip this version was uploaded as (CreateFunction / UpdateFunctionCode), if it was.
    package: Path | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.spec.name}"

    @property
    def qualified_arn(self) -> str:
        return f"{self.function_arn}:{self.version}"

    @property
    def key(self) -> str:
        return f"{self.spec.name}:{self.version}"

    @property
    def current_revision(self) -> str:
        """RevisionId: set by every API change, else derived from the code."""
        if self.revision_id:
            return self.revision_id
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.qualified_arn}#{self.code_sha256}"))


@dataclass
class LambdaFunction:
    """A function and its versions; mutable as the API changes it."""

    latest: FunctionVersion
    versions: dict[str, FunctionVersion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version
    alias_descriptions: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # Resource-based policies by qualifier ("" for the unqualified function).
    policies: dict[str, ResourcePolicy] = field(default_factory=dict)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    @property
    def name(self) -> str:
        return self.latest.name

    def version_for(self, qualifier: str | None) -> FunctionVersion:
        if qualifier is None or qualifier == LATEST:
            return self.latest
        if qualifier in self.versions:
            return self.versions[qualifier]
        if qualifier in self.aliases:
            target = self.aliases[qualifier]  # a version, or $LATEST (CreateAlias accepts it)
            return self.latest if target == LATEST else self.versions[target]
        raise ResourceNotFound(f"Function not found: {self.latest.function_arn}:{qualifier}")


class FunctionRegistry:
    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.functions: dict[str, LambdaFunction] = {}
        self._warned_links: set[tuple[str, str]] = set()

    def add(self, spec: FunctionSpec, fingerprint: CodeFingerprint | None = None) -> LambdaFunction:
        """Register a function; `fingerprint` is its code's (computed here when not given:
        the server computes it off the event loop)."""
        if fingerprint is None:
            fingerprint = code_fingerprint(spec.code_dir)
        self.warn_skipped(spec.name, fingerprint.skipped)
        version = FunctionVersion(spec, LATEST, self.region, self.account_id, time.time(), fingerprint.sha256, fingerprint.size)
        return self.put(LambdaFunction(version, tags=dict(spec.tags)))

    def put(self, function: LambdaFunction) -> LambdaFunction:
        self.functions[function.name] = function
        return function

    def remove(self, name: str) -> LambdaFunction | None:
        return self.functions.pop(name, None)

    def apply_code_fingerprint(self, name: str, fingerprint: CodeFingerprint) -> bool:
        """$LATEST's code as it is now (computed off the loop); True when the code changed."""
        function = self.functions.get(name)
        if function is None:  # gone meanwhile (a reset)
            return False
        self.warn_skipped(name, fingerprint.skipped)
        if fingerprint.sha256 == function.latest.code_sha256 or function.latest.package is not None:
            return False  # unchanged, or an uploaded package (its folder is ours; only UpdateFunctionCode changes it)
        function.latest = replace(function.latest, code_sha256=fingerprint.sha256, code_size=fingerprint.size,
                                  last_modified=time.time(), revision_id="")
        return True

    def warn_skipped(self, name: str, skipped: tuple[SkippedLink, ...]) -> None:
        """One warning per link the code's walk or copy left out (never again for it)."""
        for link in skipped:
            if (name, link.path) in self._warned_links:
                continue
            self._warned_links.add((name, link.path))
            log.warning("%s: skipping the link %s in its code folder: it %s (-> %s); it is left out of the code's "
                        "hash and of version snapshots", name, link.path, link.reason, link.target)

    def parse_name(self, raw: str) -> tuple[str, str | None]:
        """Split a FunctionName (name, name:qualifier, full or partial ARN) into name, qualifier."""
        split = _split_name(raw)
        if split is None:
            raise InvalidParameterValue(
                f"1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
            )
        return split[0], split[1]

    def get(self, raw_name: str) -> tuple[LambdaFunction, str | None]:
        name, qualifier = self.parse_name(raw_name)
        function = self.functions.get(name)
        if function is not None and ":" in raw_name and not self._same_account(raw_name):
            function = None  # an ARN of another Region or account names another function
        if function is None:
            raise ResourceNotFound(f"Function not found: arn:aws:lambda:{self.region}:{self.account_id}:function:{name}")
        return function, qualifier

    def _same_account(self, raw_name: str) -> bool:
        split = _split_name(raw_name)
        if split is None:
            return False
        region, account = split[2], split[3]
        return (region is None or region == self.region) and (account is None or account == self.account_id)

    def resolve(self, raw_name: str, qualifier: str | None = None) -> FunctionVersion:
        return self.resolve_qualified(raw_name, qualifier)[0]

    def resolve_qualified(self, raw_name: str, qualifier: str | None = None) -> tuple[FunctionVersion, str | None]:
        """The version to run and the qualifier it was asked by (from the name or the query)."""
        function, in_name = self.get(raw_name)
        if in_name and qualifier and in_name != qualifier:
            raise InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.")
        effective = qualifier or in_name
        return function.version_for(effective), effective
