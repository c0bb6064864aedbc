"""An app's settings as the advisor and the cost estimate read them: plain values, built from
a template by `app_facts.py` (inside the emulator, or by `emulator check`) and sent as JSON
to clients (`GET /_emulator/app`), which rebuild them here with `from_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
DEFAULT_ACCOUNT_CONCURRENCY = 1000
DEFAULT_UNRESERVED_MINIMUM = 100
# AWS::SQS::Queue VisibilityTimeout defaults to 30 s:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queue.html
DEFAULT_VISIBILITY_TIMEOUT_S = 30
# MaximumEventAgeInSeconds defaults to 6 hours:
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
DEFAULT_MAXIMUM_EVENT_AGE_S = 21_600


@dataclass(frozen=True)
class FunctionFacts:
    name: str
    memory_mb: int = 128
    timeout_s: int = 3
    reserved_concurrency: int | None = None
    architecture: str = "x86_64"
    maximum_event_age_s: int = DEFAULT_MAXIMUM_EVENT_AGE_S


@dataclass(frozen=True)
class QueueFacts:
    name: str
    visibility_timeout_s: int = DEFAULT_VISIBILITY_TIMEOUT_S
    fifo: bool = False
    dead_letter_queue: str | None = None  # the redrive policy's target, by name
    max_receive_count: int | None = None


@dataclass(frozen=True)
class StreamFacts:
    name: str
    shards: int = 1
    on_demand: bool = False


@dataclass(frozen=True)
class MappingFacts:
    function: str
    source_kind: str  # "sqs", "kinesis", "dynamodb"
    source_name: str
    batch_size: int | None = None
    maximum_concurrency: int | None = None
    batching_window_s: int = 0


@dataclass(frozen=True)
class ApiFacts:
    name: str
    kind: str  # "REST" or "HTTP"
    cache_size_gb: float | None = None  # a REST stage's cache cluster, when enabled


@dataclass(frozen=True)
class TableFacts:
    name: str
    on_demand: bool = True
    read_capacity: int = 0
    write_capacity: int = 0


@dataclass(frozen=True)
class AppFacts:
    region: str = "us-east-1"
    account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY
    unreserved_minimum: int = DEFAULT_UNRESERVED_MINIMUM
    functions: Mapping[str, FunctionFacts] = field(default_factory=dict)
    queues: Mapping[str, QueueFacts] = field(default_factory=dict)
    streams: Mapping[str, StreamFacts] = field(default_factory=dict)
    mappings: tuple[MappingFacts, ...] = ()
    apis: tuple[ApiFacts, ...] = ()
    tables: Mapping[str, TableFacts] = field(default_factory=dict)

    @property
    def unreserved_pool(self) -> int:
        """The account limit minus every reservation (what functions without one share)."""
        reserved = sum(f.reserved_concurrency or 0 for f in self.functions.values())
        return max(0, self.account_concurrency - reserved)

    def concurrency_limit(self, function: str) -> int:
        spec = self.functions.get(function)
        if spec is not None and spec.reserved_concurrency is not None:
            return spec.reserved_concurrency
        return self.unreserved_pool

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region, "account_concurrency": self.account_concurrency,
            "unreserved_minimum": self.unreserved_minimum,
            "functions": {k: asdict(v) for k, v in self.functions.items()},
            "queues": {k: asdict(v) for k, v in self.queues.items()},
            "streams": {k: asdict(v) for k, v in self.streams.items()},
            "mappings": [asdict(m) for m in self.mappings],
            "apis": [asdict(a) for a in self.apis],
            "tables": {k: asdict(v) for k, v in self.tables.items()},
        }


def from_json(data: Mapping[str, Any]) -> AppFacts:
    return AppFacts(
        region=str(data.get("region", "us-east-1")),
        account_concurrency=int(data.get("account_concurrency", DEFAULT_ACCOUNT_CONCURRENCY)),
        unreserved_minimum=int(data.get("unreserved_minimum", DEFAULT_UNRESERVED_MINIMUM)),
        functions={k: FunctionFacts(**v) for k, v in (data.get("functions") or {}).items()},
        queues={k: QueueFacts(**v) for k, v in (data.get("queues") or {}).items()},
        streams={k: StreamFacts(**v) for k, v in (data.get("streams") or {}).items()},
        mappings=tuple(MappingFacts(**m) for m in data.get("mappings") or ()),
        apis=tuple(ApiFacts(**a) for a in data.get("apis") or ()),
        tables={k: TableFacts(**v) for k, v in (data.get("tables") or {}).items()},
    )
