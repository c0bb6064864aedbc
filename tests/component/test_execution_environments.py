"""Component tests: real template and environment processes, driven through
EnvironmentFactory / EnvironmentPool / Invoker on the test's own event loop.

Nothing here is mocked: every handler runs in a forked environment process, and process
life and death is checked in /proc. Waits are bounded polls, never timing assertions.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import errno
import logging
import os
import re
import stat
import sys
import time
import uuid
from pathlib import Path

import pytest

from core_testkit import GATED_HANDLER_SOURCE, WARM_STATE_SOURCE, Gate, ProcessId, running, running_children
from environment_kit import ENDPOINT, REGION, Runtime, body, eventually, tail
from emulator.execution.environment import EnvState, ExecutionEnvironment, IllegalTransition
from emulator.execution.pool import DUMMY_CREDENTIALS

pytestmark = pytest.mark.component

PID_HANDLER = GATED_HANDLER_SOURCE + """
import os, sys
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    wait_at_gate(event, context)  # held until the test opens the gate (if the event names one)
    return {"pid": os.getpid(), "ppid": os.getppid(), "count": COUNT, "version": list(sys.version_info[:2])}
"""


# -- warm and cold -----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_warm_invocation_reuses_the_process_its_module_state_and_tmp(rt: Runtime) -> None:
    version = rt.function('print("initialising the module")\n' + WARM_STATE_SOURCE)
    marker = f"emulator-test-{uuid.uuid4().hex}"
    try:
        first = await rt.invoke(version, {"marker": marker})
        second = await rt.invoke(version, {"marker": marker})
    finally:
        Path("/tmp", marker).unlink(missing_ok=True)
    assert (first.cold, second.cold) == (True, False)
    assert body(first)["count"] == 1 and body(second)["count"] == 2
    assert body(first)["pid"] == body(second)["pid"]
    assert body(second)["previous"] == first.request_id
    assert "Init Duration:" in tail(first) and "Init Duration:" not in tail(second)
    # Output of Init belongs to the cold start, before its START line (as in CloudWatch).
    assert tail(first).index("initialising the module") < tail(first).index("START RequestId")
    assert "initialising the module" not in tail(second)
    fn = rt.metrics.of("fn")
    assert (fn.invocations, fn.cold_starts, fn.errors) == (2, 1, 0)


@pytest.mark.asyncio
async def test_concurrent_invocations_get_one_environment_each_and_are_reused(rt: Runtime, tmp_path: Path) -> None:
    version = rt.function(PID_HANDLER)

    async def wave(name: str) -> list:
        """Three invocations, all held inside their handlers at once before any may finish."""
        gate = Gate(tmp_path / name)
        calls = [asyncio.ensure_future(rt.invoke(version, {"gate": gate.path})) for _ in range(3)]
        assert await eventually(lambda: gate.arrived() == 3), f"{gate.arrived()} of 3 invocations ran at once"
        gate.open()
        return await asyncio.gather(*calls)

    first_wave = await wave("first")
    pids = {body(r)["pid"] for r in first_wave}
    assert len(pids) == 3 and all(r.cold for r in first_wave)
    assert rt.invoker.pool_for(version).size == 3
    # All forked from one template process.
    assert len({body(r)["ppid"] for r in first_wave}) == 1
    second_wave = await wave("second")
    assert {body(r)["pid"] for r in second_wave} == pids
    assert not any(r.cold for r in second_wave)
    assert rt.metrics.of("fn").cold_starts == 3


@pytest.mark.asyncio
async def test_event_json_of_any_type_reaches_the_handler_and_none_comes_back_as_null(rt: Runtime) -> None:
    version = rt.function(
        """
        def handler(event, context):
            if event == "nothing":
                return None
            return {"type": type(event).__name__, "event": event}
        """
    )
    for event, kind in (([1, "two"], "list"), ("text", "str"), (7, "int"), ({"a": {"b": None}}, "dict")):
        assert body(await rt.invoke(version, event)) == {"type": kind, "event": event}
    assert (await rt.invoke(version, "nothing")).payload == b"null"


# -- environment variables and context -------------------------------------------------------------
@pytest.mark.asyncio
async def test_environment_holds_lambdas_variables_the_functions_own_and_dummy_credentials(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the developer has in their shell must not reach handlers.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEVELOPERREALKEY1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "developer-secret")
    monkeypatch.setenv("DEVELOPER_ONLY_SETTING", "leaked")
    version = rt.function(
        "import os\ndef handler(event, context):\n    return dict(os.environ)\n",
        name="env-fn",
        memory_mb=256,
        environment={"GREETING": "hello", "TABLE": "orders", "AWS_REGION": "mars-1"},
    )
    env = body(await rt.invoke(version))
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "env-fn",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": REGION,  # Lambda's reserved variables win over the function's own
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/env-fn",
        "LAMBDA_TASK_ROOT": str(rt.code_root / "env-fn"),
        "_HANDLER": "index.handler",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "TZ": ":UTC",
        "GREETING": "hello",
        "TABLE": "orders",
        "AWS_ENDPOINT_URL": ENDPOINT,
        **DUMMY_CREDENTIALS,
    }
    assert {key: env.get(key) for key in expected} == expected
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert "DEVELOPER_ONLY_SETTING" not in env
    assert env["AWS_ACCESS_KEY_ID"] != "AKIADEVELOPERREALKEY1"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == env["AWS_CONFIG_FILE"] == "/dev/null"


@pytest.mark.asyncio
async def test_context_carries_the_invocation_and_function_details(rt: Runtime) -> None:
    version = rt.function(
        """
        import os
        def handler(event, context):
            cc = context.client_context
            return {
                "request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "arn": context.invoked_function_arn,
                "memory": context.memory_limit_in_mb,
                "log_group": context.log_group_name,
                "log_stream": context.log_stream_name,
                "stream_env": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
                "remaining": context.get_remaining_time_in_millis(),
                "custom": cc and cc.custom,
                "cc_env": cc and cc.env,
                "installation": cc and cc.client and cc.client.installation_id,
                "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
                "repr": repr(context).startswith("LambdaContext(["),
            }
        """,
        name="ctx",
        memory_mb=512,
        timeout_s=7,
    )
    arn = f"{version.function_arn}:$LATEST"
    client_context = {"custom": {"tenant": "t1"}, "env": {"platform": "test"}, "client": {"installation_id": "inst-1"}}
    result = await rt.invoke(version, arn=arn, client_context=client_context)
    ctx = body(result)
    assert ctx["request_id"] == result.request_id
    assert (ctx["function_name"], ctx["function_version"], ctx["arn"]) == ("ctx", "$LATEST", arn)
    assert ctx["memory"] == "512"  # a string, as in AWS's Python runtime
    assert ctx["log_group"] == "/aws/lambda/ctx" and ctx["log_stream"] == ctx["stream_env"]
    assert 0 < ctx["remaining"] <= 7000
    assert (ctx["custom"], ctx["cc_env"], ctx["installation"]) == ({"tenant": "t1"}, {"platform": "test"}, "inst-1")
    assert ctx["identity"] == [None, None] and ctx["repr"] is True
    without = body(await rt.invoke(version))
    assert without["custom"] is None and without["arn"] == version.function_arn


# -- timeouts and crashes --------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_timeout_kills_the_environment_and_what_it_started_and_the_next_call_is_cold(rt: Runtime, tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    version = rt.function(
        """
        import os, subprocess, time
        def handler(event, context):
            if event.get("hang"):
                child = subprocess.Popen(["sleep", "120"])
                start = open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[19]
                with open(event["child_file"], "w") as f:
                    f.write(f"{child.pid} {start}")
                time.sleep(5)
            return {"pid": os.getpid()}
        """,
        timeout_s=1,
    )
    env_pid = ProcessId.of(body(await rt.invoke(version))["pid"])
    timed_out = await rt.invoke(version, {"hang": True, "child_file": str(child_file)})
    assert timed_out.function_error == "Unhandled"
    assert timed_out.error_type == "Sandbox.Timedout"
    assert body(timed_out) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {timed_out.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert "Task timed out after 1.00 seconds" in tail(timed_out) and "Status: timeout" in tail(timed_out)
    child_pid, child_start = child_file.read_text().split()
    child = ProcessId(int(child_pid), child_start)
    assert await eventually(lambda: not env_pid.alive)
    assert await eventually(lambda: not child.alive), "the handler's child outlived the timeout"
    after = await rt.invoke(version)
    assert after.cold and after.function_error is None and body(after)["pid"] != env_pid.pid
    fn = rt.metrics.of("fn")
    assert (fn.timeouts, fn.errors, fn.cold_starts) == (1, 1, 2)


@pytest.mark.asyncio
async def test_each_call_of_a_warm_environment_gets_its_whole_timeout_from_its_own_start(rt: Runtime) -> None:
    """An environment's deadline timer serves many calls; one armed for an earlier call must
    neither cut a later call short nor let it outlive its own timeout."""
    version = rt.function(
        """
        import os, time
        def handler(event, context):
            time.sleep(event.get("sleep", 0))
            return {"pid": os.getpid()}
        """,
        timeout_s=1,
    )
    pid = body(await rt.invoke(version))["pid"]
    await asyncio.sleep(0.6)  # that call's deadline is 0.4 s into the next one
    slow = await rt.invoke(version, {"sleep": 0.7})
    assert slow.function_error is None and body(slow)["pid"] == pid
    await asyncio.sleep(1.1)  # no call in flight when the slow call's deadline passes
    await rt.invoke(version)
    await asyncio.sleep(0.6)
    started = time.monotonic()
    timed_out = await rt.invoke(version, {"sleep": 10})
    assert timed_out.error_type == "Sandbox.Timedout"
    assert 1.0 <= time.monotonic() - started < 3.0


@pytest.mark.asyncio
async def test_without_a_pidfd_a_timed_out_busy_handler_is_killed_through_the_fork_server(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a kernel before 5.3 (or with no descriptor left) pidfd_open fails: the environment
    must still be killed at its timeout, by its parent, not merely disconnected while its
    busy loop runs on."""
    version = rt.function(
        """
        import os
        def handler(event, context):
            if event.get("spin"):
                while True:
                    pass
            return {"pid": os.getpid()}
        """,
        timeout_s=1,
    )

    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "pidfd_open is not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    env_pid = ProcessId.of(body(await rt.invoke(version))["pid"])
    timed_out = await rt.invoke(version, {"spin": True})
    assert timed_out.error_type == "Sandbox.Timedout"
    assert await eventually(lambda: not env_pid.alive), "the busy handler outlived its timeout"
    after = await rt.invoke(version)
    assert after.cold and body(after)["pid"] != env_pid.pid


@pytest.mark.parametrize(
    ("crash", "status"),
    [("os._exit(3)", "exit status 3"), ("os.kill(os.getpid(), signal.SIGKILL)", "signal: killed"), ("sys.exit(4)", "exit status 4")],
)
@pytest.mark.asyncio
async def test_crash_in_the_handler_is_an_exit_error_and_the_environment_is_replaced(rt: Runtime, crash: str, status: str) -> None:
    version = rt.function(
        f"""
        import os, signal, sys
        def handler(event, context):
            if event.get("crash"):
                {crash}
            return {{"pid": os.getpid()}}
        """
    )
    before = ProcessId.of(body(await rt.invoke(version))["pid"])
    crashed = await rt.invoke(version, {"crash": True})
    assert crashed.function_error == "Unhandled" and crashed.error_type == "Runtime.ExitError"
    assert body(crashed) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {crashed.request_id} Error: Runtime exited with error: {status}",
    }
    assert "Error Type: Runtime.ExitError" in tail(crashed)
    assert await eventually(lambda: not before.alive)
    after = await rt.invoke(version)
    assert after.function_error is None and after.cold and body(after)["pid"] != before.pid


@pytest.mark.asyncio
async def test_handler_exception_is_a_function_error_and_keeps_the_environment(rt: Runtime) -> None:
    version = rt.function(
        """
        import os
        def handler(event, context):
            if event.get("fail"):
                raise ValueError(f"bad input {event['fail']}")
            return {"pid": os.getpid()}
        """
    )
    pid = body(await rt.invoke(version))["pid"]
    failed = await rt.invoke(version, {"fail": 42})
    error = body(failed)
    assert failed.function_error == "Unhandled" and failed.error_type == "ValueError"
    assert (error["errorType"], error["errorMessage"], error["requestId"]) == ("ValueError", "bad input 42", failed.request_id)
    assert isinstance(error["stackTrace"], list) and error["stackTrace"]
    assert all(isinstance(line, str) for line in error["stackTrace"])
    assert "index.py" in error["stackTrace"][-1] and "runtimes" not in error["stackTrace"][0]
    assert "[ERROR] ValueError: bad input 42" in tail(failed)
    after = await rt.invoke(version)
    assert not after.cold and body(after)["pid"] == pid  # a handled error does not reset the environment


@pytest.mark.asyncio
async def test_unserialisable_result_is_a_marshal_error(rt: Runtime) -> None:
    version = rt.function(
        """
        import os
        from decimal import Decimal
        def handler(event, context):
            if event.get("set"):
                return {"values": {1, 2}}
            return {"pid": os.getpid(), "price": Decimal("1.5"), "count": Decimal("3")}
        """
    )
    ok = body(await rt.invoke(version))
    assert (ok["price"], ok["count"]) == (1.5, 3)  # Decimal marshals as a number, as in AWS's runtime
    failed = await rt.invoke(version, {"set": True})
    assert failed.error_type == "Runtime.MarshalError" and failed.function_error == "Unhandled"
    assert body(failed)["errorMessage"].startswith("Unable to marshal response:")
    assert body(await rt.invoke(version))["pid"] == ok["pid"]


@pytest.mark.asyncio
async def test_response_over_6_mb_is_not_delivered(rt: Runtime) -> None:
    version = rt.function("def handler(event, context):\n    return 'x' * event['n']\n")
    limit = 6 * 1024 * 1024 + 100  # MaxPayloadSize of AWS's Runtime Interface Emulator
    fits = await rt.invoke(version, {"n": limit - 2})  # two quotes make it exactly the limit
    assert fits.function_error is None and len(fits.payload) == limit
    too_big = await rt.invoke(version, {"n": limit - 1})
    assert too_big.function_error == "Unhandled" and too_big.error_type == "Function.ResponseSizeTooLarge"
    assert body(too_big) == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": f"Response payload size exceeded maximum allowed payload size ({limit} bytes).",
    }
    assert (await rt.invoke(version, {"n": 1})).payload == b'"x"'


INIT_FAILURES = [
    pytest.param("raise KeyError('boom at import')\ndef handler(e, c):\n    return 1\n", "index.handler", "KeyError", "'boom at import'", id="exception"),
    pytest.param(
        "import not_a_module_xyz\ndef handler(e, c):\n    return 1\n", "index.handler", "Runtime.ImportModuleError",
        "Unable to import module 'index': No module named 'not_a_module_xyz'", id="import-error",
    ),
    pytest.param("def handler(e, c) return 1\n", "index.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'index'", id="syntax"),
    pytest.param("def other(e, c):\n    return 1\n", "index.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'index'", id="no-handler"),
    pytest.param("def handler(e, c):\n    return 1\n", "index", "Runtime.MalformedHandlerName", "Bad handler 'index'", id="malformed"),
    pytest.param("def handler(e, c):\n    return 1\n", "sys.handler", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys", id="builtin"),
    pytest.param("import sys\nsys.exit(2)\n", "index.handler", "Runtime.ExitError", "Runtime exited with error: exit status 2", id="exit-at-import"),
]


@pytest.mark.parametrize(("source", "handler", "error_type", "message"), INIT_FAILURES)
@pytest.mark.asyncio
async def test_init_failure_is_reported_and_fixed_code_runs_in_a_new_environment(
    rt: Runtime, source: str, handler: str, error_type: str, message: str
) -> None:
    version = rt.function(source, handler=handler)
    failed = await rt.invoke(version)
    assert failed.function_error == "Unhandled" and failed.error_type == error_type
    error = body(failed)
    assert error["errorType"] == error_type and message in error["errorMessage"]
    assert isinstance(error.get("stackTrace", []), list)
    log = tail(failed)
    init_report = re.search(r"^INIT_REPORT Init Duration: (\d+\.\d\d) ms\tPhase: init\tStatus: error\tError Type: (\S+)$", log, re.M)
    assert init_report and float(init_report[1]) > 0 and init_report[2] == error_type
    assert log.index("INIT_REPORT") < log.index("START RequestId")
    assert f"END RequestId: {failed.request_id}" in log
    pool = rt.invoker.pool_for(version)
    assert await eventually(lambda: pool.size == 0), "the failed environment is still counted"
    # The failed environment is gone for good: fixed code is loaded by a fresh one.
    (version.spec.code_dir / "fixed.py").write_text("def handler(event, context):\n    return 'fixed'\n")
    fixed = dataclasses.replace(version, spec=dataclasses.replace(version.spec, handler="fixed.handler"))
    rt.invoker.pool_for(fixed).new_code(fixed)
    recovered = await rt.invoke(fixed)
    assert recovered.function_error is None and recovered.payload == b'"fixed"' and recovered.cold


# -- memory ----------------------------------------------------------------------------------------
MEMORY_HOG = """
import os
def handler(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touch every page so it is really resident
    return {"pid": os.getpid(), "bytes": len(block)}
"""


@pytest.mark.asyncio
async def test_exceeding_memory_size_is_out_of_memory_and_the_environment_is_replaced(rt: Runtime) -> None:
    version = rt.function(MEMORY_HOG, memory_mb=128)
    small = await rt.invoke(version, {"mb": 50})
    assert small.function_error is None and body(small)["bytes"] == 50 * 1024 * 1024
    hog = ProcessId.of(body(small)["pid"])
    failed = await rt.invoke(version, {"mb": 300})
    # Every host kind reports it as Lambda does (README, "Memory").
    assert failed.function_error == "Unhandled" and failed.error_type == "Runtime.OutOfMemory"
    assert body(failed)["errorMessage"] == f"RequestId: {failed.request_id} Error: Runtime exited with error: signal: killed"
    assert await eventually(lambda: not hog.alive)
    again = await rt.invoke(version, {"mb": 50})
    assert again.function_error is None and again.cold


def own_memory_cgroup() -> Path:
    """The cgroup v1 memory group this test process is in (the emulator inherits it)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    raise AssertionError("no cgroup v1 memory line in /proc/self/cgroup")


@pytest.mark.asyncio
async def test_memory_cgroups_are_created_under_the_emulators_own_and_removed_when_the_factory_closes(rt: Runtime) -> None:
    version = rt.function(PID_HANDLER)
    template = body(await rt.invoke(version))["ppid"]
    if not rt.factory.cgroups:
        pytest.skip("no memory cgroups here (needs cgroup v1 memory controller and root)")
    base = own_memory_cgroup() / f"lambda-emulator-{template}"
    # Below our own group, so the environments count against the emulator's memory limit.
    assert base.is_dir(), f"no group {base}"
    assert not Path(f"/sys/fs/cgroup/memory/lambda-emulator-{template}").exists() or own_memory_cgroup() == Path("/sys/fs/cgroup/memory")
    # One group for the environment, one for the template's spare child.
    assert len([p for p in base.iterdir() if p.is_dir()]) == 2
    rt.invoker.close()
    await rt.factory.close()
    assert not base.exists()


# -- logs ------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_handler_output_reaches_the_tail_and_the_emulator_log_in_lambdas_format(rt: Runtime) -> None:
    version = rt.function(
        """
        import logging, sys
        def handler(event, context):
            print("printed line")
            logging.warning("warned about %s", "disk")
            logging.info("not shown at the default level")
            print("to stderr", file=sys.stderr)
            return "ok"
        """,
        name="chatty",
    )
    result = await rt.invoke(version)
    log = tail(result)
    rid = result.request_id
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {rid}" and lines[-1].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "printed line" in lines and "to stderr" in lines
    assert re.search(rf"^\[WARNING\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{rid}\twarned about disk$", log, re.M)
    assert "not shown" not in log
    assert re.search(r"Memory Size: 128 MB\tMax Memory Used: \d+ MB", lines[-1])
    emulator_log = rt.emulator_log()
    assert "[chatty] printed line" in emulator_log and f"[chatty] REPORT RequestId: {rid}" in emulator_log


@pytest.mark.asyncio
async def test_log_tail_is_the_last_4_kb(rt: Runtime) -> None:
    version = rt.function("def handler(event, context):\n    for i in range(500):\n        print(f'line {i:04d} ' + 'x' * 40)\n")
    result = await rt.invoke(version)
    raw = base64.b64decode(result.log_result or "")
    assert 3000 < len(raw) <= 4096
    text = raw.decode("utf-8", "replace")
    assert text.rstrip("\n").splitlines()[-1].startswith(f"REPORT RequestId: {result.request_id}")
    assert "line 0499" in text and "line 0000" not in text


# -- code updates, keep-alive, shutdown ----------------------------------------------------------------
@pytest.mark.asyncio
async def test_new_code_retires_idle_environments_and_the_next_call_loads_it(rt: Runtime) -> None:
    version = rt.function("import os\ndef handler(e, c):\n    return ['v1', os.getpid()]\n")
    old_pid = ProcessId.of(body(await rt.invoke(version))[1])
    # Same length, rewritten at once: a stale .pyc of the same second and size must not win.
    (version.spec.code_dir / "index.py").write_text("import os\ndef handler(e, c):\n    return ['v2', os.getpid()]\n")
    updated = dataclasses.replace(version, code_sha256="changed")
    rt.invoker.pool_for(version).new_code(updated)
    assert await eventually(lambda: not old_pid.alive), "the idle environment of the old code kept running"
    result = await rt.invoke(updated)
    assert result.cold and body(result)[0] == "v2"


@pytest.mark.asyncio
async def test_reaping_idle_environments_stops_their_processes(rt: Runtime) -> None:
    version = rt.function(PID_HANDLER)
    first = body(await rt.invoke(version))
    env = ProcessId.of(first["pid"])
    pool = rt.invoker.pool_for(version)
    assert pool.reap_idle(older_than=time.monotonic() - 3600) == 0  # recently used: kept
    assert pool.reap_idle(older_than=time.monotonic() + 1) == 1
    assert await eventually(lambda: not env.alive)
    assert await eventually(lambda: running_children(first["ppid"]) == [])
    assert running(first["ppid"]) is not None, "the template must outlive its environments"
    again = await rt.invoke(version)
    assert again.cold and body(again)["pid"] != env.pid


@pytest.mark.asyncio
async def test_closing_the_factory_leaves_no_process_behind(rt: Runtime) -> None:
    version = rt.function(
        """
        import os, subprocess, time
        def handler(event, context):
            child = subprocess.Popen(["sleep", "120"])
            return {"pid": os.getpid(), "ppid": os.getppid(), "child": child.pid}
        """
    )
    results = [body(r) for r in await asyncio.gather(rt.invoke(version), rt.invoke(version))]
    processes = [ProcessId.of(results[0]["ppid"])]
    processes += [ProcessId.of(r["pid"]) for r in results] + [ProcessId.of(r["child"]) for r in results]
    assert all(p.alive for p in processes)
    rt.invoker.close()
    await rt.factory.close()
    assert await eventually(lambda: not any(p.alive for p in processes)), [p for p in processes if p.alive]


# -- state machine and interpreters -------------------------------------------------------------------
@pytest.mark.asyncio
async def test_environment_state_machine_refuses_illegal_transitions() -> None:
    env = ExecutionEnvironment("env-1", lambda text: None)
    with pytest.raises(IllegalTransition):
        env.transition(EnvState.BUSY)  # STARTING -> BUSY: Init has not finished
    env.transition(EnvState.READY)
    env.transition(EnvState.BUSY)
    env.transition(EnvState.READY)
    env.transition(EnvState.STOPPING)
    with pytest.raises(IllegalTransition):
        env.transition(EnvState.READY)
    env.transition(EnvState.DEAD)
    assert not env.alive


@pytest.mark.asyncio
async def test_unknown_python_runtime_falls_back_to_our_interpreter_with_one_warning(rt: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="emulator.execution.pool")
    assert rt.factory.python_for(f"python3.{sys.version_info.minor}") == sys.executable
    assert rt.factory.python_for("python3.99") == sys.executable
    assert rt.factory.python_for("python3.99") == sys.executable
    warnings = [r.getMessage() for r in caplog.records if "python3.99" in r.getMessage()]
    assert len(warnings) == 1 and "no python3.99 interpreter" in warnings[0]
    version = rt.function(PID_HANDLER, runtime="python3.99")
    assert body(await rt.invoke(version))["version"] == list(sys.version_info[:2])


@pytest.mark.asyncio
async def test_broken_interpreter_falls_back_once_and_shares_our_template(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="emulator.execution.pool")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    attempts = tmp_path / "attempts"
    fake = bin_dir / "python3.98"
    fake.write_text(f"#!/bin/sh\necho started >> {attempts}\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    first_fn = rt.function(PID_HANDLER, runtime="python3.98")
    second_fn = rt.function(PID_HANDLER, name="second", runtime="python3.98")
    own = rt.function(PID_HANDLER, name="own")
    # Each is a cold start that asks for its runtime's template.
    first, second, third = [body(await rt.invoke(v)) for v in (first_fn, second_fn, own)]
    assert first["version"] == list(sys.version_info[:2])
    assert first["ppid"] == second["ppid"] == third["ppid"], "a fallback started yet another template"
    assert attempts.read_text().count("started") == 1, "the broken interpreter was retried"
    assert any("could not start" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_a_killed_template_is_replaced_and_its_environments_die_with_it(rt: Runtime) -> None:
    version = rt.function(PID_HANDLER)
    first = body(await rt.invoke(version))
    template, env = ProcessId.of(first["ppid"]), ProcessId.of(first["pid"])
    os.kill(template.pid, 9)
    assert await eventually(lambda: not env.alive), "an environment outlived its template"
    # The process is gone; wait until the control plane has read that too (its socket's EOF
    # is handled on this loop), or the next call could still pick the dead environment.
    assert await eventually(lambda: rt.invoker.pool_for(version).size == 0)
    again = await rt.invoke(version)
    assert again.function_error is None and again.cold
    assert body(again)["ppid"] != template.pid and running(body(again)["ppid"]) is not None
