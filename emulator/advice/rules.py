"""The limits advisor: AWS's scaling rules checked against an app's settings (before a run)
and against what a run showed (after it). Each finding names the AWS page its rule comes
from. Pure: facts and observations in, findings out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from emulator.advice.facts import AppFacts, MappingFacts
from emulator.advice.observed import Observed

WARNING, INFO = "warning", "info"

# "concurrency = (average requests per second) * (average request duration in seconds)":
CONCURRENCY_URL = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html"
# SQS mappings start with five concurrent batches (and scale from there); set at least 5
# reserved concurrency; a visibility timeout of at least 6 x the function timeout; a
# maxReceiveCount of at least 5:
SQS_URL = "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html"
SQS_SCALING_URL = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"
SQS_INITIAL_BATCHES = 5
SQS_MINIMUM_RESERVED = 5
VISIBILITY_TIMEOUT_FACTOR = 6
SQS_MINIMUM_MAX_RECEIVE_COUNT = 5
# Each shard takes writes of up to 1 MiB/s and 1,000 records/s:
KINESIS_LIMITS_URL = "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"
SHARD_BYTES_PER_S = 1024 * 1024
SHARD_RECORDS_PER_S = 1000
QUOTAS_URL = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
API_THROTTLING_URL = "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html"
ASYNC_URL = "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html"
# An async event older than this share of its MaximumEventAgeInSeconds is close to being dropped.
EVENT_AGE_WARNING_SHARE = 0.5
ACCOUNT_POOL_REASON = "ConcurrentInvocationLimitExceeded"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "warning" or "info"
    subject: str  # "function orders", "queue orders", "stream clicks", "account"
    message: str
    source_url: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.severity.upper():7} {self.subject}: {self.message} [{self.rule}: {self.source_url}]"


def advise(facts: AppFacts, observed: Observed | None = None) -> list[Finding]:
    """The settings' findings, then (with `observed`) the run's; warnings first."""
    found = check_settings(facts) + (check_run(facts, observed) if observed is not None else [])
    return sorted(found, key=lambda f: (f.severity != WARNING, f.subject, f.rule))


def has_warnings(findings: list[Finding]) -> bool:
    return any(f.severity == WARNING for f in findings)


# -- before a run: the settings alone ----------------------------------------------------------
def check_settings(facts: AppFacts) -> list[Finding]:
    found: list[Finding] = []
    for mapping in facts.mappings:
        if mapping.source_kind == "sqs":
            found += _sqs_mapping(facts, mapping)
    return found


def _sqs_mapping(facts: AppFacts, mapping: MappingFacts) -> list[Finding]:
    found = []
    fn = facts.functions.get(mapping.function)
    queue = facts.queues.get(mapping.source_name)
    subject = f"function {mapping.function}"
    reserved = fn.reserved_concurrency if fn is not None else None
    if reserved is not None and reserved < SQS_MINIMUM_RESERVED and mapping.maximum_concurrency is None:
        found.append(Finding(
            "sqs-reserved-concurrency", WARNING, subject,
            f"reads queue {mapping.source_name} with reserved concurrency {reserved}: the mapping starts with "
            f"{SQS_INITIAL_BATCHES} concurrent batches, so up to {SQS_INITIAL_BATCHES - min(reserved, SQS_INITIAL_BATCHES)} "
            f"of them are throttled and go back to the queue; reserve at least {SQS_MINIMUM_RESERVED}, or set "
            f"ScalingConfig.MaximumConcurrency to {max(2, reserved)}", SQS_URL))
    if reserved is not None and mapping.maximum_concurrency is not None and mapping.maximum_concurrency > reserved:
        found.append(Finding(
            "sqs-overpull", WARNING, subject,
            f"ScalingConfig.MaximumConcurrency {mapping.maximum_concurrency} is above its reserved concurrency "
            f"{reserved}: the mapping pulls batches it cannot run, they are throttled and their receive counts "
            f"rise (overpull); set MaximumConcurrency to at most {reserved}", SQS_SCALING_URL))
    elif reserved is not None and mapping.maximum_concurrency is None and reserved >= SQS_MINIMUM_RESERVED:
        found.append(Finding(
            "sqs-overpull", INFO, subject,
            f"reserved concurrency {reserved} and no ScalingConfig.MaximumConcurrency on its queue "
            f"{mapping.source_name}: under a backlog the mapping scales past {reserved} batches and the rest are "
            f"throttled; MaximumConcurrency {reserved} makes it read only what the function can take", SQS_SCALING_URL))
    if queue is not None and fn is not None:
        needed = VISIBILITY_TIMEOUT_FACTOR * fn.timeout_s + mapping.batching_window_s
        if queue.visibility_timeout_s < needed:
            found.append(Finding(
                "sqs-visibility-timeout", WARNING, f"queue {queue.name}",
                f"visibility timeout {queue.visibility_timeout_s} s is under {VISIBILITY_TIMEOUT_FACTOR} x the timeout of "
                f"{fn.name} ({fn.timeout_s} s){' + its batching window' if mapping.batching_window_s else ''} = {needed} s: "
                f"a batch that is throttled or retried can become visible again while it is still being handled",
                SQS_URL))
    if queue is not None and queue.max_receive_count is not None and queue.max_receive_count < SQS_MINIMUM_MAX_RECEIVE_COUNT:
        found.append(Finding(
            "sqs-max-receive-count", WARNING, f"queue {queue.name}",
            f"maxReceiveCount {queue.max_receive_count} (under {SQS_MINIMUM_MAX_RECEIVE_COUNT}): every throttled "
            f"batch counts as a receive, so throttles alone can move valid messages to {queue.dead_letter_queue}",
            SQS_URL))
    return found


# -- after a run: what happened ----------------------------------------------------------------
def check_run(facts: AppFacts, observed: Observed) -> list[Finding]:
    found: list[Finding] = []
    seconds = max(observed.seconds, 1.0)
    for name, fn in sorted(observed.functions.items()):
        average = fn.average_duration_ms
        if average is None:
            continue
        limit = facts.concurrency_limit(name)
        rate = (fn.invocations + fn.throttles) / seconds
        predicted = rate * average / 1000.0
        peak_predicted = fn.busiest_second * average / 1000.0
        throttled = f"; {fn.throttles} throttled" if fn.throttles else ""
        severity = WARNING if peak_predicted >= limit or fn.throttles else INFO
        found.append(Finding(
            "concurrency-estimate", severity, f"function {name}",
            f"{rate:.1f} requests/s x {average:.1f} ms average = {predicted:.1f} concurrent on average, "
            f"{peak_predicted:.1f} in the busiest second ({fn.busiest_second} requests); observed peak "
            f"{fn.peak_concurrency:.0f}, limit {limit}{throttled}", CONCURRENCY_URL))
        spec = facts.functions.get(name)
        if fn.async_age_max_ms is not None and spec is not None:
            limit_ms = spec.maximum_event_age_s * 1000.0
            if fn.async_age_max_ms >= EVENT_AGE_WARNING_SHARE * limit_ms:
                found.append(Finding(
                    "async-event-age", WARNING, f"function {name}",
                    f"an async event waited {fn.async_age_max_ms / 1000:.1f} s, over half of its "
                    f"MaximumEventAgeInSeconds ({spec.maximum_event_age_s} s): older events are dropped "
                    f"(or sent to the on-failure destination)", ASYNC_URL))
    found += _account(observed)
    found += _queues(facts, observed)
    found += _streams(facts, observed)
    for name, api in sorted(observed.apis.items()):
        if api.throttles_by_layer:
            layers = ", ".join(f"{layer} {count}" for layer, count in sorted(api.throttles_by_layer.items()))
            found.append(Finding("api-throttling", WARNING, f"API {name}",
                                 f"{sum(api.throttles_by_layer.values())} requests answered 429 by the gateway ({layers})",
                                 API_THROTTLING_URL))
    return found


def _account(observed: Observed) -> list[Finding]:
    pool_throttles = observed.account_throttles_by_reason.get(ACCOUNT_POOL_REASON, 0)
    exhausted = observed.unreserved_limit is not None and observed.unreserved_peak >= observed.unreserved_limit > 0
    if not pool_throttles and not exhausted:
        return []
    limit = f"{observed.unreserved_limit:.0f}" if observed.unreserved_limit is not None else "?"
    return [Finding("unreserved-pool", WARNING, "account",
                    f"the unreserved concurrency pool ran out: peak {observed.unreserved_peak:.0f} of {limit}, "
                    f"{pool_throttles} throttles with Reason {ACCOUNT_POOL_REASON}", QUOTAS_URL)]


def _queues(facts: AppFacts, observed: Observed) -> list[Finding]:
    found = []
    for mapping in facts.mappings:
        if mapping.source_kind != "sqs":
            continue
        queue = observed.queues.get(mapping.source_name)
        fn = observed.functions.get(mapping.function)
        if queue is None or not queue.moved_to_dlq or fn is None or not fn.throttles:
            continue
        found.append(Finding(
            "sqs-throttles-to-dlq", WARNING, f"queue {mapping.source_name}",
            f"{queue.moved_to_dlq} messages moved to the dead-letter queue while {mapping.function} was throttled "
            f"{fn.throttles} times: throttled batches count as receives", SQS_SCALING_URL))
    return found


def _streams(facts: AppFacts, observed: Observed) -> list[Finding]:
    found = []
    for name, stream in sorted(observed.streams.items()):
        spec = facts.streams.get(name)
        if spec is None or spec.on_demand:
            continue
        shards = max(1, spec.shards)
        per_shard_bytes = stream.peak_bytes_per_s / shards
        per_shard_records = stream.peak_records_per_s / shards
        if per_shard_bytes > SHARD_BYTES_PER_S or per_shard_records > SHARD_RECORDS_PER_S:
            found.append(Finding(
                "kinesis-shard-throughput", WARNING, f"stream {name}",
                f"written at {per_shard_bytes / 1024 / 1024:.2f} MiB/s and {per_shard_records:.0f} records/s per shard "
                f"in its busiest second (averaged over {shards} shard(s)): a shard takes 1 MiB/s and 1,000 records/s, "
                f"AWS would answer ProvisionedThroughputExceededException", KINESIS_LIMITS_URL))
    return found
