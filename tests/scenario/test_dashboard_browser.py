"""The live dashboard and report.html in a real headless Chromium (driven by Playwright, using
the system's Chromium: Debian's `chromium` package): the page loads against a running
emulator with traffic, its charts draw the run's exact counts, and nothing is logged to the
console as an error. Skips, saying why, where there is no browser."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from core_testkit import GATED_OK_SOURCE, Gate, wait_until
from emulator.load import runner
from emulator.load.scenario import build
from emulator.pytest_plugin import EmulatorHandle, inline_function, running_emulator

pytestmark = pytest.mark.scenario

RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
PAGE_TIMEOUT_MS = 30_000
RUN_TIMEOUT_S = 120


def chromium() -> str | None:
    """EMULATOR_TEST_CHROMIUM, else a Chromium on PATH."""
    explicit = os.environ.get("EMULATOR_TEST_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium; or set EMULATOR_TEST_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as driver:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    template = {"Gated": inline_function(GATED_OK_SOURCE, FunctionName="gated", ReservedConcurrentExecutions=2, Timeout=60)}
    with running_emulator(template, log_invocations=False) as handle:
        yield handle


class Console:
    """Errors a page logs or throws."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))


def drawn_pixels(page: Any, panel_id: str) -> int:
    """Pixels of the panel's canvas that are not blank: the chart drew something."""
    return page.evaluate("""(id) => {
        const canvas = document.querySelector(`[data-panel="${id}"] canvas`);
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let drawn = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) drawn++;
        return drawn;
    }""", panel_id)


def gated_run(emulator: EmulatorHandle, tmp_path: Path) -> tuple[Gate, threading.Thread, list[runner.LoadResult]]:
    """20 requests at reserved concurrency 2, held at a gate: exactly 18 throttled, 2 running."""
    gate = Gate(tmp_path / "gate")
    sc = build({"target": {"function": "gated", "payload": {"gate": gate.path}}, "phases": [{"rate": 200, "duration": 0.1}]},
               Path.cwd())
    results: list[runner.LoadResult] = []
    worker = threading.Thread(target=lambda: results.append(runner.run(sc, out_dir=tmp_path / "out", endpoint=emulator.url,
                                                                        display=False)))
    worker.start()
    return gate, worker, results


def test_the_dashboard_draws_a_live_run(browser: Any, emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.reset()
    gate, worker, results = gated_run(emulator, tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console = Console(page)
    try:
        assert wait_until(lambda: gate.arrived() == 2 and
                          emulator.metrics()["functions"].get("gated", {}).get("Throttles") == 18, timeout_s=60)
        page.goto(f"{emulator.url}/_emulator/dashboard", timeout=PAGE_TIMEOUT_MS)
        # While the two invocations are held: the throttles are all in, concurrency at its limit.
        page.wait_for_function("""() => {
            const s = window.emulatorDashboard && window.emulatorDashboard.board.state();
            const t = s && s["function:gated:throttles"], c = s && s["function:gated:concurrency"];
            return t && t.lines["%s"].total === 18 && c && c.lines.ConcurrentExecutions.max === 2;
        }""" % RESERVED, timeout=PAGE_TIMEOUT_MS)
        gate.open()
        worker.join(RUN_TIMEOUT_S)
        # Then the two invocations finish and show, one update later.
        page.wait_for_function("""() => {
            const s = window.emulatorDashboard.board.state()["function:gated:invocations"];
            return s && s.lines.Invocations.total === 2;
        }""", timeout=PAGE_TIMEOUT_MS)
        state = page.evaluate("window.emulatorDashboard.board.state()")
        assert state["function:gated:concurrency"]["lines"]["ConcurrencyLimit"]["max"] == 2
        assert state["account:account:throttles"]["lines"][RESERVED]["total"] == 18
        assert state["function:gated:throttles"]["points"] >= 60  # the whole window, one point a second
        # The text under the chart says the same, and the canvas has drawn lines.
        total = page.get_attribute(f'[data-panel="function:gated:throttles"] .total[data-label="{RESERVED}"]', "data-total")
        assert total == "18"
        assert drawn_pixels(page, "function:gated:throttles") > 500
        assert page.locator("section.group h2").first.inner_text() == "Account"
        assert page.locator("#status").get_attribute("class") == "status live"
        assert console.errors == []
    finally:
        gate.open()
        worker.join(RUN_TIMEOUT_S)
        page.close()
    [result] = results
    # The report of the same run, opened from the file with no network at all.
    offline = browser.new_context(offline=True)
    report = offline.new_page()
    console = Console(report)
    try:
        report.goto((result.out_dir / "report.html").as_uri(), timeout=PAGE_TIMEOUT_MS)
        report.wait_for_function("() => window.emulatorReport !== undefined", timeout=PAGE_TIMEOUT_MS)
        drawn = report.evaluate("window.emulatorReport.board.state()")
        assert drawn["client:load:offered"]["lines"]["throttled"]["total"] == 18
        assert drawn["function:gated:throttles"]["lines"][RESERVED]["total"] == 18
        assert drawn["function:gated:invocations"]["lines"]["Invocations"]["total"] == 2
        assert drawn_pixels(report, "client:load:offered") > 500
        assert console.errors == []
    finally:
        offline.close()


def test_a_bad_since_is_an_aws_shaped_error(emulator: EmulatorHandle) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{emulator.url}/_emulator/dashboard/panels?since=soon", timeout=10)
    assert caught.value.code == 400 and caught.value.headers["x-amzn-ErrorType"].startswith("InvalidParameterValue")
    with caught.value:
        assert b"epoch seconds" in caught.value.read()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{emulator.url}/_emulator/dashboard/static/..%2Fserver.py", timeout=10)
    with missing.value:
        assert missing.value.code == 404
    with urllib.request.urlopen(f"{emulator.url}/_emulator/dashboard/static/uPlot.LICENSE", timeout=10) as licence:
        assert b"MIT License" in licence.read()
