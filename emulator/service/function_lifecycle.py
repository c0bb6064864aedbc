"""Functions made, changed and deleted through the Lambda API: CreateFunction,
UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.

Domain logic only; emulator/api/function_api.py maps it to HTTP. What AWS does, and so do we
(https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html):

* a created function is `Pending` while its package is unpacked, then `Active`;
* an update answers at once with `LastUpdateStatus: InProgress`; the change is applied by a
  task this class owns (unpacking a new package off the event loop, then switching
  `$LATEST`), after which the status is `Successful`. Until then invocations run the old
  code and configuration, and a second update is refused (ResourceConflictException);
* after the switch, new execution environments start with the new code and configuration;
  idle ones are stopped, busy ones finish their invocation first and are then replaced.

Packages (uploaded in the request, or named by S3Bucket/S3Key in the backend's S3) are
checked and extracted by emulator/functions/zip_package.py into a folder of this
emulator's, kept with the .zip itself (GetFunction's Code.Location serves it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

from emulator.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound
from emulator.functions import function_settings, tags as tag_rules
from emulator.functions.function_state import FunctionState, Lifecycle, UpdateStatus
from emulator.functions.registry import LATEST, FunctionVersion, LambdaFunction
from emulator.backend.client import BackendClient, BackendError
from emulator.functions.zip_package import (
    MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES, PackageError, PackageInfo, extract_package, inspect_package,
)
from emulator.service.function_admin import FunctionAdmin
from emulator.tasks import OwnedTasks

log = logging.getLogger("emulator.service.lifecycle")

# Lambda's wording (users' error output; AWS's docs do not give it).
ALREADY_EXISTS = "Function already exist: {name}"
LATEST_NOT_DELETABLE = "$LATEST version cannot be deleted without deleting the function."
REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias "
                     "API to retrieve the latest Revision Id")
# How long a deleted function's package folder is kept for environments still running in
# it (they finish their invocation first), at most: then it is removed regardless.
PACKAGE_CLEANUP_GRACE_S = 900.0 + 30.0
PACKAGE_CLEANUP_POLL_S = 0.5


class FunctionLifecycle:
    def __init__(self, admin: FunctionAdmin, packages_dir: Path, on_error: Callable[[BaseException], None]) -> None:
        self.admin = admin
        self.packages_dir = packages_dir
        self._tasks = OwnedTasks("function lifecycle", on_error)
        self.backend: BackendClient | None = None  # for code in S3; set once the backend runs
        self._warned_layers: set[tuple[str, str]] = set()

    @property
    def registry(self):  # replaced on reset: always follow the service's
        return self.admin.service.registry

    # -- CreateFunction ------------------------------------------------------------------
    async def create(self, request: Mapping[str, Any]) -> tuple[LambdaFunction, FunctionVersion]:
        """The new function (Pending) and the configuration to answer with."""
        spec = function_settings.spec_from_create(request, Path("/"))  # every check of the request first
        name = spec.name
        if name in self.registry.functions:
            raise ResourceConflict(ALREADY_EXISTS.format(name=name))
        data, limit = await self._package(request.get("Code"))
        folder = self._new_folder(name)
        spec = replace(spec, code_dir=folder / "code")
        tags = tag_rules.merged({}, tag_rules.check_tags(request["Tags"])) if request.get("Tags") is not None else {}
        info = await self._inspect(data, limit)
        package = await asyncio.to_thread(_write_package, folder, data)
        if name in self.registry.functions:  # created by another request while we read the package
            shutil.rmtree(folder, ignore_errors=True)
            raise ResourceConflict(ALREADY_EXISTS.format(name=name))
        registry = self.registry
        version = FunctionVersion(spec, LATEST, registry.region, registry.account_id, time.time(), info.code_sha256,
                                  info.code_size, _new_revision(), package)
        function = registry.put(LambdaFunction(version, tags=tags, lifecycle=Lifecycle(FunctionState.PENDING)))
        log.info("%s: created (package %s, %d bytes)", name, info.code_sha256, info.code_size)
        task = self._tasks.spawn(self._activate(function, data, spec.code_dir), f"{name}: activate")
        if request.get("Publish"):
            await asyncio.shield(task)
            if function.lifecycle.state is FunctionState.ACTIVE:
                return function, await self.admin.publish_version(name)
        return function, version

    async def _activate(self, function: LambdaFunction, data: bytes, code_dir: Path) -> None:
        try:
            extracted = await asyncio.to_thread(extract_package, data, code_dir)
        except (PackageError, OSError) as exc:
            function.lifecycle.move_state(FunctionState.FAILED, f"The package could not be unpacked: {exc}",
                                          "InvalidZipFileException")
            log.warning("%s: creation failed: %s", function.name, exc)
            return
        _warn_links(function.name, extracted.skipped_links)
        function.lifecycle.move_state(FunctionState.ACTIVE)

    # -- UpdateFunctionCode --------------------------------------------------------------
    async def update_code(self, raw_name: str, request: Mapping[str, Any]) -> tuple[LambdaFunction, FunctionVersion]:
        function = self._function(raw_name)
        latest = function.latest
        function.lifecycle.check_updatable(latest.function_arn)
        _check_revision(request.get("RevisionId"), latest)
        if request.get("ImageUri"):
            raise InvalidParameterValue("Container image functions are not emulated: upload a .zip (ZipFile).")
        data, limit = await self._package(request)
        info = await self._inspect(data, limit)
        if request.get("DryRun"):
            return function, replace(latest, code_sha256=info.code_sha256, code_size=info.code_size)
        function.lifecycle.check_updatable(latest.function_arn)  # another update began meanwhile
        folder = self._new_folder(function.name)
        package = await asyncio.to_thread(_write_package, folder, data)
        pending = replace(latest, spec=replace(latest.spec, code_dir=folder / "code"), code_sha256=info.code_sha256,
                          code_size=info.code_size, last_modified=time.time(), revision_id=_new_revision(),
                          package=package)
        function.lifecycle.move_update(UpdateStatus.IN_PROGRESS)
        task = self._tasks.spawn(self._switch_code(function, pending, data), f"{function.name}: update code")
        if request.get("Publish"):
            await asyncio.shield(task)
            if function.lifecycle.update is UpdateStatus.SUCCESSFUL:
                return function, await self.admin.publish_version(function.name)
        return function, pending

    async def _switch_code(self, function: LambdaFunction, pending: FunctionVersion, data: bytes) -> None:
        try:
            extracted = await asyncio.to_thread(extract_package, data, pending.spec.code_dir)
        except (PackageError, OSError) as exc:
            function.lifecycle.move_update(UpdateStatus.FAILED, f"The package could not be unpacked: {exc}",
                                           "InvalidZipFileException")
            log.warning("%s: code update failed: %s", function.name, exc)
            return
        _warn_links(function.name, extracted.skipped_links)
        previous = function.latest
        pool = self.admin.invoker.pools.get(pending.key)
        self._switch(function, pending)
        if previous.package is not None and previous.spec.code_dir.parent != pending.spec.code_dir.parent:
            # The previous upload's folder goes once no environment runs its code any more.
            self._tasks.spawn(self._remove_folders([_OldGeneration(pool)] if pool else [], {previous.spec.code_dir.parent}),
                              f"{function.name}: remove the previous package")

    # -- UpdateFunctionConfiguration -----------------------------------------------------
    async def update_configuration(self, raw_name: str, request: Mapping[str, Any]) -> tuple[LambdaFunction, FunctionVersion]:
        function = self._function(raw_name)
        latest = function.latest
        function.lifecycle.check_updatable(latest.function_arn)
        _check_revision(request.get("RevisionId"), latest)
        spec = function_settings.spec_from_update(latest.spec, request)
        _warn_api_layers(self._warned_layers, function.name, spec.layer_arns)
        pending = replace(latest, spec=spec, last_modified=time.time(), revision_id=_new_revision())
        function.lifecycle.move_update(UpdateStatus.IN_PROGRESS)
        self._tasks.spawn(self._switch_later(function, pending), f"{function.name}: update configuration")
        return function, pending

    async def _switch_later(self, function: LambdaFunction, pending: FunctionVersion) -> None:
        await asyncio.sleep(0)  # after the answer: the update is seen InProgress, as on AWS
        self._switch(function, pending)

    def _switch(self, function: LambdaFunction, pending: FunctionVersion) -> None:
        """$LATEST becomes `pending`: new environments start with it, idle ones stop now and
        busy ones once their invocation ends (the pool's generation changes)."""
        if self.registry.functions.get(function.name) is not function:
            return  # deleted (or reset) meanwhile
        function.latest = pending
        pool = self.admin.invoker.pools.get(pending.key)
        if pool is not None:
            pool.new_code(pending)
        function.lifecycle.move_update(UpdateStatus.SUCCESSFUL)
        log.info("%s: update applied; new environments start with it", function.name)

    # -- DeleteFunction ------------------------------------------------------------------
    async def delete(self, raw_name: str, qualifier: str | None) -> None:
        function, in_name = self.registry.get(raw_name)
        if in_name and qualifier and in_name != qualifier:
            raise InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.")
        qualifier = qualifier or in_name
        if qualifier:
            self._delete_version(function, qualifier)
            return
        registry = self.registry
        registry.remove(function.name)
        self.admin.forget_function(function)
        pools = self.admin.invoker.retire(function.name)
        log.info("%s: deleted", function.name)
        folders = {version.spec.code_dir.parent for version in [function.latest, *function.versions.values()]
                   if version.package is not None}
        if folders:
            self._tasks.spawn(self._remove_folders(pools, folders), f"{function.name}: remove packages")

    def _delete_version(self, function: LambdaFunction, qualifier: str) -> None:
        if qualifier == LATEST:
            raise InvalidParameterValue(LATEST_NOT_DELETABLE)
        if qualifier in function.aliases:
            raise InvalidParameterValue(f"{qualifier} is an alias: delete it with DeleteAlias, or name a version.")
        if qualifier not in function.versions:
            raise ResourceNotFound(f"Function not found: {function.latest.function_arn}:{qualifier}")
        users = sorted(alias for alias, version in function.aliases.items() if version == qualifier)
        if users:
            raise ResourceConflict(f"Unable to delete version because the following aliases reference it: {users}")
        del function.versions[qualifier]
        function.policies.pop(qualifier, None)
        self.admin.forget_version(function, qualifier)
        self.admin.invoker.retire(function.name, qualifier)

    async def _remove_folders(self, pools: list[Any], folders: set[Path]) -> None:
        """Remove a deleted function's package folders once none of its environments runs
        in them any more (bounded by the longest timeout Lambda allows)."""
        deadline = time.monotonic() + PACKAGE_CLEANUP_GRACE_S
        while any(pool.size for pool in pools) and time.monotonic() < deadline:
            await asyncio.sleep(PACKAGE_CLEANUP_POLL_S)
        for folder in folders:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    # -- helpers -------------------------------------------------------------------------
    def _function(self, raw_name: str) -> LambdaFunction:
        function, qualifier = self.registry.get(raw_name)
        if qualifier:
            # Only $LATEST can change (the model's FunctionName for these operations has no qualifier).
            raise InvalidParameterValue("Only the unqualified function ($LATEST) can be updated; versions are immutable.")
        return function

    def _new_folder(self, name: str) -> Path:
        return self.packages_dir / name / uuid.uuid4().hex

    async def _inspect(self, data: bytes, max_zipped: int) -> PackageInfo:
        try:
            return await asyncio.to_thread(inspect_package, data, max_zipped)
        except PackageError as exc:
            raise InvalidParameterValue(str(exc)) from None

    async def _package(self, code: Any) -> tuple[bytes, int]:
        """The .zip of a request's `Code` (CreateFunction) or body (UpdateFunctionCode), and
        the zipped size allowed for where it came from."""
        if not isinstance(code, Mapping) or not (code.get("S3Bucket") or code.get("S3Key")):
            return _zip_bytes(code), MAX_ZIPPED_BYTES
        bucket, key = code.get("S3Bucket"), code.get("S3Key")
        if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
            raise InvalidParameterValue("Please provide a source for function code: both S3Bucket and S3Key.")
        if self.backend is None:
            raise InvalidParameterValue("Code in S3 needs the AWS backend; this emulator runs with --backend none.")
        try:
            return await self.backend.s3_get_object(bucket, key, code.get("S3ObjectVersion"), MAX_UNZIPPED_BYTES), \
                MAX_UNZIPPED_BYTES
        except BackendError as exc:
            if exc.status >= 500:
                raise
            # Lambda's wording (users' error output).
            raise InvalidParameterValue(f"Error occurred while GetObject. S3 Error Code: {exc.code}. S3 Error Message: "
                                        f"{exc.message}") from None
        except ValueError:
            raise InvalidParameterValue(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes") from None

    async def close(self) -> None:
        await self._tasks.cancel_all()


class _OldGeneration:
    """The environments of a pool that still run the code before its last change."""

    def __init__(self, pool: Any) -> None:
        self.pool, self.generation = pool, pool.generation

    @property
    def size(self) -> int:
        return sum(1 for env in self.pool.members if env.generation < self.generation and env.alive)


def _zip_bytes(code: Any) -> bytes:
    """The package of a request's `Code` (CreateFunction) or body (UpdateFunctionCode)."""
    if not isinstance(code, Mapping):
        raise InvalidParameterValue("Please provide a source for function code: ZipFile.")
    if code.get("ImageUri"):
        raise InvalidParameterValue("Container image functions are not emulated: use a .zip package (ZipFile).")
    raw = code.get("ZipFile")
    if not isinstance(raw, str) or not raw:
        raise InvalidParameterValue("Please provide a source for function code: ZipFile.")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again.") from None


def _write_package(folder: Path, data: bytes) -> Path:
    folder.mkdir(parents=True)
    package = folder / "package.zip"
    package.write_bytes(data)
    return package


def _check_revision(revision: Any, latest: FunctionVersion) -> None:
    if revision is not None and revision != latest.current_revision:
        raise PreconditionFailed(REVISION_MISMATCH)


def _new_revision() -> str:
    return str(uuid.uuid4())


def _warn_links(name: str, skipped: tuple[str, ...]) -> None:
    for link in skipped:
        log.warning("%s: the package's link %s points outside the package; it was left out", name, link)


def _warn_api_layers(warned: set[tuple[str, str]], name: str, arns: tuple[str, ...]) -> None:
    for arn in arns:
        if (name, arn) not in warned:
            warned.add((name, arn))
            log.warning("%s: layer %s is recorded and shown by GetFunction, but layers given through the API are "
                        "not loaded: declare the layer in the template (AWS::Serverless::LayerVersion)", name, arn)
