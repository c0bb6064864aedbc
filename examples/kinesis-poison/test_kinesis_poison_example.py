"""The kinesis-poison example as a test: the bug and the fix side by side.

Time runs 10× faster (`time_scale=10`), so Lambda's once-a-second polls and retries take
0.1 s; the handlers run in real time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from drive_kinesis_poison import consumer_stats, poison_reports, put_orders

TEMPLATE = Path(__file__).parent / "template.yaml"
ORDERS, POISON_AT = 30, 12
WAIT_S = 30.0


def test_the_poison_record_blocks_the_default_consumer_and_not_the_fixed_one(lambda_emulator_factory):
    emu = lambda_emulator_factory(TEMPLATE, time_scale=10)

    def wait_for(condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The consumers' stats once `condition` holds for them (bounded, polled)."""
        deadline = time.monotonic() + WAIT_S
        while not condition(stats := consumer_stats(emu.metrics())):
            assert time.monotonic() < deadline, f"not reached within {WAIT_S} s: {stats}"
            time.sleep(0.05)
        return stats

    sent = put_orders(emu.client("kinesis"), ORDERS, POISON_AT)

    stats = wait_for(lambda s: s["fixed-consumer"]["processed"] == ORDERS - 1 and s["buggy-consumer"]["retries"] >= 5)
    fixed, buggy = stats["fixed-consumer"], stats["buggy-consumer"]

    # The bug: the batch holding the poison record is retried again and again; only the
    # batch before it went through, and the shard's iterator age keeps growing.
    assert buggy["processed"] == 10  # BatchSize 10: orders 0-9
    assert buggy["errors"] == buggy["retries"]  # every failure is retried: no limit
    # Three retries later the shard is still stuck: nothing more processed, the age grew.
    later = wait_for(lambda s: s["buggy-consumer"]["retries"] >= buggy["retries"] + 3)["buggy-consumer"]
    assert later["processed"] == 10 and later["iterator_age_ms"] > buggy["iterator_age_ms"]

    # The fix: bisect isolated the record, two retries, then its position went to the queue.
    assert fixed["bisections"] >= 3 and fixed["on_failure"] == 1
    [report] = poison_reports(emu.client("sqs"))
    assert report["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = report["KinesisBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == sent[POISON_AT]["SequenceNumber"]


def test_the_load_scenario_fails_on_the_buggy_consumers_iterator_age(tmp_path: Path) -> None:
    """`emulator load load.yaml`: the fixed consumer's threshold passes, the buggy one's fails."""
    from emulator.load import runner
    from emulator.load.scenario import from_file

    scenario = from_file(Path(__file__).parent / "load.yaml", {})
    result = runner.run(scenario, out_dir=tmp_path, display=False)
    assert [(o.threshold.text, o.ok) for o in result.outcomes] == [
        ("max(IteratorAge{FunctionName=fixed-consumer}) < 5s", True),
        ("max(IteratorAge{FunctionName=buggy-consumer}) < 5s", False),
    ]
    assert result.report["client"]["totals"]["sent"] == 10
    assert result.report["cost"]["lines"] and result.report["advice"]
