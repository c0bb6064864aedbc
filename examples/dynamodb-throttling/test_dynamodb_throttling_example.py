"""The dynamodb-throttling example as a test: a provisioned table throttles a write-heavy
function for as long as the load lasts, auto scaling closes the throttle window, on-demand
never throttles.

Time runs 30× faster (`time_scale=30`): two seconds are a minute of DynamoDB's time, so
auto scaling's two-minute alarm acts within seconds; the load (writes per real second) is
what the handlers do in real time: 100 writes/s per table, 3.3 units per emulated second,
against 1 WCU (30 writes per real second). Auto scaling raises the capacity 1 → 2 → 3 → 5,
a step every two emulated minutes, and 5 is enough.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drive_dynamodb_throttling import AUTOSCALED, ON_DEMAND, PROVISIONED, report, run, verdict

TEMPLATE = Path(__file__).parent / "template.yaml"

pytestmark = pytest.mark.scenario


def test_auto_scaling_and_on_demand_close_the_throttle_window(lambda_emulator_factory):
    emu = lambda_emulator_factory(TEMPLATE, time_scale=30, log_invocations=False)
    timeline = run(emu.lambda_client, emu.metrics, seconds=18, rate=100, batch=10)
    print(report(timeline))
    shown = verdict(timeline)
    assert shown == {"provisioned throttles to the end": True, "auto scaling closed the throttle window": True,
                     "on-demand never throttled": True}, report(timeline)
    tables = emu.metrics()["dynamodb"]["tables"]
    assert tables[PROVISIONED]["ProvisionedWriteCapacityUnits"] == 1
    assert tables[AUTOSCALED]["ProvisionedWriteCapacityUnits"] > 1
    assert tables[ON_DEMAND]["WriteThrottleEvents"] == 0
    activities = emu.metrics()["dynamodb"]["scaling_activities"]
    raised = [a for a in activities if a["ResourceId"] == f"table/{AUTOSCALED}" and a["StatusCode"] == "Successful"]
    assert raised and all(a["To"] > a["From"] for a in raised)
    # Nothing written is lost: the table holds exactly what the function was told was written.
    ddb = emu.client("dynamodb")
    written = sum(second.written[AUTOSCALED] for second in timeline)
    count = ddb.scan(TableName=AUTOSCALED, Select="COUNT")
    total = count["Count"]
    while "LastEvaluatedKey" in count:
        count = ddb.scan(TableName=AUTOSCALED, Select="COUNT", ExclusiveStartKey=count["LastEvaluatedKey"])
        total += count["Count"]
    assert total >= written
