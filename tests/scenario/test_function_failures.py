"""Function failures seen through boto3: timeouts, crashes, errors at import, handler
exceptions, marshalling and memory. Each failure answers 200 with FunctionError, and the next
invocation works in a replaced (or, for handled errors, the same) environment
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from core_testkit import ProcessId, call, function_metrics, wait_until
from execution_testkit import LOCAL_EXECUTIONS, settings
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

FRAGILE = """
import os, signal, sys, time
def handler(event, context):
    action = event.get("action")
    if action == "sleep":
        time.sleep(5)
    elif action == "exit":
        os._exit(3)
    elif action == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise ValueError("the value was wrong")
    elif action == "marshal":
        return {"not json": object()}
    elif action == "threads":
        import threading
        done = threading.Event()
        threads = [threading.Thread(target=done.wait) for _ in range(event["threads"])]
        for thread in threads:
            thread.start()
        done.set()
        for thread in threads:
            thread.join()
        return {"threads": len(threads)}
    elif action == "allocate":
        block = bytearray(event["mb"] * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        return {"pid": os.getpid(), "allocated": len(block)}
    return {"pid": os.getpid()}
"""

BROKEN_AT_IMPORT = {
    "importraises": ("raise RuntimeError('config missing')\ndef handler(e, c):\n    return 1\n", "RuntimeError", "config missing"),
    "importmissing": (
        "import module_that_is_not_installed\ndef handler(e, c):\n    return 1\n",
        "Runtime.ImportModuleError",
        "Unable to import module 'index': No module named 'module_that_is_not_installed'",
    ),
    "syntaxerror": ("def handler(e, c)\n    return 1\n", "Runtime.UserCodeSyntaxError", "Syntax error in module 'index'"),
    "nohandler": ("def something_else(e, c):\n    return 1\n", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'index'"),
}


@pytest.fixture(scope="module", params=LOCAL_EXECUTIONS)
def emu(request: pytest.FixtureRequest) -> Iterator[EmulatorHandle]:
    # Every test here runs on each execution backend whose environments are local processes
    # (they look at PIDs): the outcomes are Lambda's, not the backend's. Containers:
    # tests/scenario/test_container_backend.py.
    functions = {
        "fragile": inline_function(FRAGILE, Timeout=1),
        "slowfragile": inline_function(FRAGILE, Timeout=1),
        "hungry": inline_function(FRAGILE, MemorySize=128, Timeout=30),
        "healthy": inline_function("def handler(event, context):\n    return 'fine'\n"),
    }
    functions.update({name: inline_function(source) for name, (source, _, _) in BROKEN_AT_IMPORT.items()})
    with running_emulator(functions, backend="none", **settings(request.param)) as handle:
        yield handle


def test_timeout_answers_sandbox_timedout_and_the_next_call_is_cold(emu: EmulatorHandle, lam: Any) -> None:
    warm = call(lam, "slowfragile")
    env = ProcessId.of(warm.payload["pid"])
    before = function_metrics(emu, "slowfragile")
    timed_out = call(lam, "slowfragile", {"action": "sleep"})
    assert (timed_out.status, timed_out.function_error) == (200, "Unhandled")
    assert timed_out.payload == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {timed_out.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert "Task timed out after 1.00 seconds" in timed_out.log
    assert wait_until(lambda: not env.alive), "the timed-out environment is still running"
    after = call(lam, "slowfragile")
    assert after.function_error is None and after.cold and after.payload["pid"] != env.pid
    metrics = function_metrics(emu, "slowfragile")
    assert metrics["ColdStarts"] - before["ColdStarts"] == 1
    assert metrics["Timeouts"] - before["Timeouts"] == 1 and metrics["Errors"] - before["Errors"] == 1


@pytest.mark.parametrize(
    ("action", "status"),
    [("exit", "exit status 3"), ("sigkill", "signal: killed")],
)
def test_crash_is_runtime_exit_error_and_the_environment_is_replaced(lam: Any, action: str, status: str) -> None:
    env = ProcessId.of(call(lam, "fragile").payload["pid"])
    crashed = call(lam, "fragile", {"action": action})
    assert (crashed.status, crashed.function_error) == (200, "Unhandled")
    assert crashed.payload["errorType"] == "Runtime.ExitError"
    assert crashed.payload["errorMessage"] == f"RequestId: {crashed.request_id} Error: Runtime exited with error: {status}"
    assert wait_until(lambda: not env.alive)
    after = call(lam, "fragile")
    assert after.function_error is None and after.cold and after.payload["pid"] != env.pid


def test_handler_exception_is_reported_with_its_type_message_and_stack(lam: Any) -> None:
    pid = call(lam, "fragile").payload["pid"]
    failed = call(lam, "fragile", {"action": "raise"})
    assert (failed.status, failed.function_error) == (200, "Unhandled")
    error = failed.payload
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "the value was wrong")
    assert error.get("requestId") == failed.request_id
    assert isinstance(error["stackTrace"], list) and any("index.py" in frame for frame in error["stackTrace"])
    assert "[ERROR] ValueError: the value was wrong" in failed.log
    after = call(lam, "fragile")
    assert not after.cold and after.payload["pid"] == pid  # a handled error keeps the environment


def test_unserialisable_result_is_a_marshal_error(lam: Any) -> None:
    failed = call(lam, "fragile", {"action": "marshal"})
    assert failed.function_error == "Unhandled"
    assert failed.payload["errorType"] == "Runtime.MarshalError"
    assert failed.payload["errorMessage"].startswith("Unable to marshal response:")
    assert call(lam, "fragile").function_error is None


@pytest.mark.parametrize("name", sorted(BROKEN_AT_IMPORT))
def test_failure_at_import_is_reported_on_every_attempt_with_a_new_environment(emu: EmulatorHandle, lam: Any, name: str) -> None:
    _, error_type, message = BROKEN_AT_IMPORT[name]
    before = function_metrics(emu, name)["ColdStarts"]
    for _ in range(2):
        failed = call(lam, name)
        assert (failed.status, failed.function_error) == (200, "Unhandled")
        assert failed.payload["errorType"] == error_type
        assert message in failed.payload["errorMessage"]
        assert isinstance(failed.payload.get("stackTrace", []), list)
        assert "INIT_REPORT Init Duration:" in failed.log and f"Error Type: {error_type}" in failed.log
    # Every attempt ran Init again in a fresh environment; the broken one was not kept.
    assert function_metrics(emu, name)["ColdStarts"] - before == 2
    assert call(lam, "healthy").payload == "fine"


def test_allocating_beyond_memory_size_is_out_of_memory_and_the_environment_is_replaced(emu: EmulatorHandle, lam: Any) -> None:
    small = call(lam, "hungry", {"action": "allocate", "mb": 50})
    assert small.function_error is None and small.payload["allocated"] == 50 * 1024 * 1024
    env = ProcessId.of(small.payload["pid"])
    failed = call(lam, "hungry", {"action": "allocate", "mb": 300})
    assert (failed.status, failed.function_error) == (200, "Unhandled")
    assert failed.payload["errorType"] == "Runtime.OutOfMemory"
    assert "Error Type: Runtime.OutOfMemory" in failed.report_line
    max_used = int(failed.report_line.split("Max Memory Used: ")[1].split()[0])
    assert 100 <= max_used <= 128  # what the environment reached, at most its size, as on Lambda
    assert wait_until(lambda: not env.alive)
    again = call(lam, "hungry", {"action": "allocate", "mb": 50})
    assert again.function_error is None and again.cold


def test_threads_do_not_count_against_memory_size(lam: Any) -> None:
    # Lambda allows 1,024 processes or threads per environment; their stacks are address
    # space, not memory used (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
    result = call(lam, "hungry", {"action": "threads", "threads": 20})
    assert result.function_error is None, result.payload
    assert result.payload == {"threads": 20}
