"""DynamoDB capacity as the control plane sees it: per-table metrics and auto scaling.

The moto child accounts every table's capacity and throttles (emulator/moto_child/ddb_capacity_layer.py)
and keeps cumulative counters, which it shows at `GET /_emulator/dynamodb-capacity`. Once
per emulated minute this shell reads them and turns them into what CloudWatch would hold:
one data point per table, global index and metric for the minute
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html),
shown in `/_emulator/metrics` under `dynamodb`; and it feeds those data points to the
template's target-tracking policies (emulator/policy/dynamodb_autoscaling.py), calling
UpdateTable when one decides, as Application Auto Scaling does. Everything runs on the
emulator's clock, so `--time-scale 60` makes a minute of data points a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.backend.client import UNREACHABLE, BackendClient, BackendError
from emulator.backend.dynamodb_scaling_targets import scaling_policies, table_and_index
from emulator.policy.dynamodb_autoscaling import (
    PERIOD_S,
    Datapoint,
    ScalerState,
    TargetTracking,
    after_scaling,
    decide,
    record,
)

if TYPE_CHECKING:
    from emulator.clock import Clock
    from emulator.template.specs import AppSpec

log = logging.getLogger("emulator.backend.dynamodb")

CAPACITY_PATH = "/_emulator/dynamodb-capacity"
# The counters the moto child keeps per table and per global index (CloudWatch's names).
COUNTERS = ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "ReadThrottleEvents", "WriteThrottleEvents")
TABLE_COUNTERS = (*COUNTERS, "ThrottledRequests")
# Never sample more often than this in real time (a very large --time-scale).
MIN_SAMPLE_INTERVAL_S = 0.05
MAX_ACTIVITIES = 100


@dataclass
class Scaler:
    policy: TargetTracking
    table: str
    index: str | None
    kind: str  # "Read" | "Write"
    state: ScalerState = field(default_factory=ScalerState)


@dataclass
class DynamoDBCapacity:
    backend: BackendClient
    clock: "Clock"
    app: "AppSpec"
    region: str
    account_id: str
    scalers: list[Scaler] = field(default_factory=list)
    last: dict[str, dict[str, Any]] = field(default_factory=dict)  # table ARN -> the previous sample
    last_minute: dict[str, dict[str, Any]] = field(default_factory=dict)  # table ARN -> the last minute's sums
    activities: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_ACTIVITIES))
    unavailable: bool = False
    _sampled_at: float | None = None

    def __post_init__(self) -> None:
        self.scalers = self._scalers()

    def _scalers(self) -> list[Scaler]:
        found = []
        for policy in scaling_policies(self.app):
            table, index = table_and_index(policy.resource_id) or ("", None)
            kind = "Read" if policy.dimension.endswith("ReadCapacityUnits") else "Write"
            found.append(Scaler(policy, table, index, kind))
        return found

    def reset(self) -> None:
        self.scalers = self._scalers()
        self.last.clear()
        self.last_minute.clear()
        self.activities.clear()
        self._sampled_at = None

    # -- reading the child --------------------------------------------------------------------
    async def _tables(self) -> list[dict[str, Any]] | None:
        try:
            answer = await self.backend.get_json(CAPACITY_PATH)
        except BackendError as error:
            if not self.unavailable:
                self.unavailable = True
                log.info("the AWS backend shows no DynamoDB capacity (%s): DynamoDB metrics and auto scaling are off "
                         "(they need the emulator's own moto backend)", error.status)
            return None
        except UNREACHABLE:
            return None
        self.unavailable = False
        return list(answer.get("tables") or []) if isinstance(answer, dict) else None

    def _name(self, table: dict[str, Any]) -> str:
        if table.get("Region") == self.region and table.get("Account") == self.account_id:
            return str(table["TableName"])
        return str(table.get("TableArn"))

    # -- the metrics ---------------------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        tables = await self._tables()
        if tables is None:
            return {"available": False}
        shown: dict[str, Any] = {}
        for table in tables:
            minute = self.last_minute.get(table["TableArn"], {})
            entry = {key: table.get(key) for key in ("BillingMode", "ProvisionedReadCapacityUnits",
                                                      "ProvisionedWriteCapacityUnits", *TABLE_COUNTERS)}
            entry["LastMinute"] = {key: minute.get(key, 0) for key in TABLE_COUNTERS}
            entry["GlobalSecondaryIndexes"] = {
                name: {**index, "LastMinute": {key: minute.get(f"{name}/{key}", 0) for key in COUNTERS}}
                for name, index in (table.get("GlobalSecondaryIndexes") or {}).items()
            }
            shown[self._name(table)] = entry
        return {"tables": shown, "scaling_activities": list(self.activities)}

    # -- once a minute ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Sample now (the baseline; capacity outside a scalable target's range is brought
        inside it), then once a minute."""
        await self.sample()
        next_at = self.clock.now() + PERIOD_S
        while True:
            delay = max(self.clock.to_real(next_at - self.clock.now()), MIN_SAMPLE_INTERVAL_S)
            await asyncio.sleep(delay)
            next_at = max(next_at + PERIOD_S, self.clock.now())
            await self.sample()

    async def sample(self) -> None:
        """Take one minute's data points and let the scaling policies act on them."""
        tables = await self._tables()
        if tables is None:
            return
        now = self.clock.now()
        elapsed = PERIOD_S if self._sampled_at is None else max(now - self._sampled_at, 1e-9)
        self._sampled_at = now
        by_name = {}
        for table in tables:
            arn = table["TableArn"]
            previous = self.last.get(arn)
            self.last[arn] = table
            by_name[self._name(table)] = table
            if previous is None:
                continue  # the first sample of a table is its baseline
            self.last_minute[arn] = self._minute(previous, table, elapsed)
        for scaler in self.scalers:
            table = by_name.get(scaler.table)
            if table is not None:
                await self._scale(scaler, table, self.last_minute.get(table["TableArn"]), now)

    @staticmethod
    def _minute(previous: dict[str, Any], current: dict[str, Any], elapsed: float) -> dict[str, Any]:
        """Per-minute sums between two samples (a counter that went down: the backend restarted)."""
        factor = PERIOD_S / elapsed

        def delta(before: dict[str, Any], after: dict[str, Any], key: str) -> float:
            change = float(after.get(key) or 0) - float(before.get(key) or 0)
            return max(change, 0.0) * factor

        minute = {key: delta(previous, current, key) for key in TABLE_COUNTERS}
        for name, index in (current.get("GlobalSecondaryIndexes") or {}).items():
            before = (previous.get("GlobalSecondaryIndexes") or {}).get(name, {})
            minute.update({f"{name}/{key}": delta(before, index, key) for key in COUNTERS})
        return minute

    async def _scale(self, scaler: Scaler, table: dict[str, Any], minute: dict[str, Any] | None, now: float) -> None:
        prefix = f"{scaler.index}/" if scaler.index else ""
        holder = (table.get("GlobalSecondaryIndexes") or {}).get(scaler.index, {}) if scaler.index else table
        current = int(holder.get(f"Provisioned{scaler.kind}CapacityUnits") or 0)
        if table.get("BillingMode") == "PAY_PER_REQUEST" or current <= 0:
            return  # on-demand capacity is not auto scaled
        if minute is not None:  # None: the baseline sample, no data point yet
            consumed = float(minute.get(f"{prefix}Consumed{scaler.kind}CapacityUnits", 0.0))
            scaler.state = record(scaler.state, Datapoint(consumed, current))
        decision = decide(scaler.policy, scaler.state, current, now)
        if decision.capacity is None or decision.capacity == current:
            return
        activity = {"Time": _iso(self.clock.wall()), "ResourceId": scaler.policy.resource_id,
                    "ScalableDimension": scaler.policy.dimension, "From": current, "To": decision.capacity,
                    "Cause": decision.reason}
        try:
            await self.backend.dynamodb("UpdateTable", _update(scaler, holder, decision.capacity))
        except BackendError as error:
            # e.g. LimitExceededException: DynamoDB's daily limit on decreases. Tried again next minute.
            self.activities.append({**activity, "StatusCode": "Failed", "StatusMessage": f"{error.code}: {error.message}"})
            log.info("auto scaling %s %s from %d to %d failed: %s", scaler.policy.resource_id, scaler.policy.dimension,
                     current, decision.capacity, error.message)
            return
        except UNREACHABLE:
            return
        self.activities.append({**activity, "StatusCode": "Successful"})
        log.info("auto scaling %s %s: %d -> %d (%s)", scaler.policy.resource_id, scaler.policy.dimension, current,
                 decision.capacity, decision.reason)
        scaler.state = after_scaling(scaler.state, current, decision.capacity, now)


def _update(scaler: Scaler, holder: dict[str, Any], capacity: int) -> dict[str, Any]:
    throughput = {"ReadCapacityUnits": int(holder.get("ProvisionedReadCapacityUnits") or 1),
                  "WriteCapacityUnits": int(holder.get("ProvisionedWriteCapacityUnits") or 1)}
    throughput[f"{scaler.kind}CapacityUnits"] = capacity
    if scaler.index:
        return {"TableName": scaler.table, "GlobalSecondaryIndexUpdates": [
            {"Update": {"IndexName": scaler.index, "ProvisionedThroughput": throughput}}]}
    return {"TableName": scaler.table, "ProvisionedThroughput": throughput}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
