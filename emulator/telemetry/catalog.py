"""Every series the timeline keeps: CloudWatch's namespace, name, unit and dimensions.

Names are AWS's where AWS has the metric (`aws=True`), with the statistic AWS recommends
for it; the others are the emulator's own additions, named in the same style and listed as
such in docs/timeline.md. Sources:
Lambda: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
SQS: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
Kinesis: https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html
DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
SNS: https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

LAMBDA = "AWS/Lambda"
SQS = "AWS/SQS"
KINESIS = "AWS/Kinesis"
API_GATEWAY = "AWS/ApiGateway"
DYNAMODB = "AWS/DynamoDB"
SNS = "AWS/SNS"
NAMESPACES = (LAMBDA, SQS, KINESIS, API_GATEWAY, DYNAMODB, SNS)


class Kind(Enum):
    COUNTER = "counter"  # events in a second: one sample per second, its value the count
    GAUGE = "gauge"  # a level sampled (the largest sample of a second is kept)
    DISTRIBUTION = "distribution"  # every event a sample: percentiles


@dataclass(frozen=True)
class MetricInfo:
    namespace: str
    name: str
    unit: str  # a CloudWatch StandardUnit
    kind: Kind
    statistic: str  # the statistic AWS recommends (or the natural one for ours)
    aws: bool
    help: str


def _m(namespace: str, name: str, unit: str, kind: Kind, statistic: str, aws: bool, help_text: str) -> MetricInfo:
    return MetricInfo(namespace, name, unit, kind, statistic, aws, help_text)


C, G, D = Kind.COUNTER, Kind.GAUGE, Kind.DISTRIBUTION

# Per function (dimension FunctionName; Throttles, AsyncEventsDropped, DeadLetterDeliveries and
# OnFailureDestinationDeliveries also by Reason, ours), and the account
# (no dimension: summed or merged over functions, as AWS publishes account-level figures).
FUNCTION_METRICS: tuple[MetricInfo, ...] = (
    _m(LAMBDA, "Invocations", "Count", C, "Sum", True, "invocations that ran (successful or not), throttles excluded"),
    _m(LAMBDA, "Errors", "Count", C, "Sum", True, "invocations that ended in a function error"),
    _m(LAMBDA, "Throttles", "Count", C, "Sum", True, "invocation requests throttled (429), by Reason with the Reason dimension"),
    _m(LAMBDA, "Duration", "Milliseconds", D, "Average", True, "time the handler ran"),
    _m(LAMBDA, "InitDuration", "Milliseconds", D, "Average", False, "Init phase of cold starts (the REPORT line's Init Duration)"),
    _m(LAMBDA, "ColdStarts", "Count", C, "Sum", False, "invocations that started a new execution environment"),
    _m(LAMBDA, "ConcurrentExecutions", "Count", G, "Maximum", True, "most executions running at once in the second"),
    _m(LAMBDA, "ProvisionedConcurrencyUtilization", "None", G, "Maximum", True,
       "busy provisioned environments / provisioned concurrency (0-1), over the function's aliases and versions"),
    _m(LAMBDA, "ConcurrencyLimit", "Count", G, "Maximum", False,
       "most executions the function can have: its reserved concurrency, else the unreserved pool"),
    _m(LAMBDA, "AsyncEventsReceived", "Count", C, "Sum", True, "events queued by Invoke (Event)"),
    _m(LAMBDA, "AsyncEventAge", "Milliseconds", D, "Average", True, "time from queueing an event to each attempt to run it"),
    _m(LAMBDA, "AsyncEventsDropped", "Count", C, "Sum", True,
       "events that ended without a successful run, counted also when sent to a destination or DLQ, as AWS "
       "counts them; by Reason: RetriesExhausted, EventAgeExceeded, EventAgeExceededWhileThrottled, "
       "ReservedConcurrencyZero, Reset, Shutdown, EmulatorError"),
    _m(LAMBDA, "DeadLetterErrors", "Count", C, "Sum", True, "failed attempts to send an event to the DLQ"),
    _m(LAMBDA, "DeadLetterDeliveries", "Count", C, "Sum", False, "events delivered to the function's DLQ; by Reason, as AsyncEventsDropped"),
    _m(LAMBDA, "OnFailureDestinationDeliveries", "Count", C, "Sum", False,
       "records delivered to the function's on-failure destination; by Reason, as AsyncEventsDropped"),
    _m(LAMBDA, "DestinationDeliveryFailures", "Count", C, "Sum", True, "failed attempts to send a record to a destination"),
)

ACCOUNT_METRICS: tuple[MetricInfo, ...] = (
    _m(LAMBDA, "ConcurrentExecutions", "Count", G, "Maximum", True, "most executions running at once, all functions"),
    _m(LAMBDA, "ClaimedAccountConcurrency", "Count", G, "Maximum", True,
       "concurrency unavailable to on-demand invocations: reservations, provisioned concurrency and unreserved use"),
    _m(LAMBDA, "UnreservedConcurrentExecutions", "Count", G, "Maximum", True, "executions of functions without a reservation"),
    _m(LAMBDA, "AccountConcurrencyLimit", "Count", G, "Maximum", False, "the account's concurrency limit"),
    _m(LAMBDA, "UnreservedConcurrencyLimit", "Count", G, "Maximum", False, "the unreserved pool: the limit minus reservations"),
)

# Per event source mapping (dimension EventSourceMappingUUID, as AWS's event source mapping
# metrics; IteratorAge also by FunctionName as AWS publishes it, and per shard, ours).
MAPPING_METRICS: tuple[MetricInfo, ...] = (
    _m(LAMBDA, "PolledEventCount", "Count", C, "Sum", True, "events read from the source"),
    _m(LAMBDA, "InvokedEventCount", "Count", C, "Sum", True, "events in batches the function ran with"),
    _m(LAMBDA, "FailedInvokeEventCount", "Count", C, "Sum", True,
       "events in batches that failed: function error, partial failure, throttled until given up"),
    _m(LAMBDA, "DroppedEventCount", "Count", C, "Sum", True, "stream records discarded (age or retries exhausted, no destination)"),
    _m(LAMBDA, "DeletedEventCount", "Count", C, "Sum", True, "SQS messages deleted after processing"),
    _m(LAMBDA, "OnFailureDestinationDeliveredEventCount", "Count", C, "Sum", True, "stream records whose batch was sent on failure"),
    _m(LAMBDA, "FilteredOutEventCount", "Count", C, "Sum", True, "events filtered out by FilterCriteria"),
    _m(LAMBDA, "DeadLetterBoundEventCount", "Count", C, "Sum", False,
       "SQS messages received at their queue's maxReceiveCount and not deleted, so bound for its DLQ, by "
       "Cause: Throttled (the batch never ran), Failed (function error or partial failure), "
       "VisibilityTimeoutExpired (the batch outlived the visibility timeout), Other"),
    _m(LAMBDA, "Pollers", "Count", G, "Maximum", False, "pollers (SQS: concurrent batch workers; Kinesis: lanes)"),
    _m(LAMBDA, "ConcurrentBatches", "Count", G, "Maximum", False, "batches being invoked"),
    _m(LAMBDA, "IteratorAge", "Milliseconds", G, "Maximum", True,
       "stream mappings: age of the newest record of the last batch read (oldest over shards)"),
)

QUEUE_METRICS: tuple[MetricInfo, ...] = (
    _m(SQS, "ApproximateNumberOfMessagesVisible", "Count", G, "Maximum", True, "messages ready to be received"),
    _m(SQS, "ApproximateNumberOfMessagesNotVisible", "Count", G, "Maximum", True, "messages in flight"),
    _m(SQS, "ApproximateNumberOfMessagesDelayed", "Count", G, "Maximum", True, "delayed messages"),
    _m(SQS, "ApproximateAgeOfOldestMessage", "Seconds", G, "Maximum", True, "age of the oldest message in the queue"),
    _m(SQS, "NumberOfMessagesSent", "Count", C, "Sum", True,
       "messages added by a send (messages moved in by a redrive policy are not counted, as on AWS)"),
    _m(SQS, "NumberOfMessagesReceived", "Count", C, "Sum", True, "messages returned by ReceiveMessage"),
    _m(SQS, "NumberOfMessagesDeleted", "Count", C, "Sum", True, "messages deleted"),
    _m(SQS, "NumberOfMessagesMovedToDLQ", "Count", C, "Sum", False, "messages this queue's redrive policy moved to its DLQ"),
    _m(SQS, "ApproximateNumberOfMessagesByReceiveCount", "Count", G, "Maximum", False,
       "messages in the queue by how often they were received (dimension ReceiveCount; the last bucket is 'N+')"),
)

STREAM_METRICS: tuple[MetricInfo, ...] = (
    _m(KINESIS, "IncomingRecords", "Count", C, "Sum", True, "records put"),
    _m(KINESIS, "IncomingBytes", "Bytes", C, "Sum", True, "bytes put (data and partition keys)"),
    _m(KINESIS, "GetRecords.IteratorAgeMilliseconds", "Milliseconds", G, "Maximum", True,
       "age of the last record read by the mappings on the stream (oldest over shards)"),
    _m(KINESIS, "IteratorAgeMilliseconds", "Milliseconds", G, "Maximum", True,
       "the same per shard (dimension ShardId, AWS's shard-level name)"),
)

# Per API stage of the API Gateway front door, and per method or route: REST APIs by ApiName
# and Stage, and ApiName, Stage, Method and Resource
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html),
# HTTP APIs by ApiId and Stage, and ApiId, Stage and Route
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html).
# Sampled from the gateway's counters once a second: latencies are each second's mean.
API_METRICS: tuple[MetricInfo, ...] = (
    _m(API_GATEWAY, "Count", "Count", C, "SampleCount", True, "requests the stage received"),
    _m(API_GATEWAY, "4XXError", "Count", C, "Sum", True, "REST APIs: client errors"),
    _m(API_GATEWAY, "5XXError", "Count", C, "Sum", True, "REST APIs: server errors"),
    _m(API_GATEWAY, "4xx", "Count", C, "Sum", True, "HTTP APIs: client errors"),
    _m(API_GATEWAY, "5xx", "Count", C, "Sum", True, "HTTP APIs: server errors"),
    _m(API_GATEWAY, "Latency", "Milliseconds", G, "Average", True, "request to response, the second's mean"),
    _m(API_GATEWAY, "IntegrationLatency", "Milliseconds", G, "Average", True, "the backend's part, the second's mean"),
    _m(API_GATEWAY, "CacheHitCount", "Count", C, "Sum", True, "REST APIs: requests answered from the stage cache"),
    _m(API_GATEWAY, "CacheMissCount", "Count", C, "Sum", True,
       "REST APIs: requests to cached methods the integration answered"),
    _m(API_GATEWAY, "Throttles", "Count", C, "Sum", False, "requests answered 429, by the throttle Layer that answered"),
)

# Per table (dimension TableName) and global secondary index (TableName and
# GlobalSecondaryIndexName), from the moto child's capacity layer
# (emulator/moto_child/ddb_throughput.py). AWS publishes them per minute; here per second.
# ThrottledRequests is per table only (AWS: TableName and Operation). Provisioned capacity
# is published for provisioned tables only, as on AWS.
TABLE_METRICS: tuple[MetricInfo, ...] = (
    _m(DYNAMODB, "ConsumedReadCapacityUnits", "Count", C, "Sum", True, "read capacity units consumed"),
    _m(DYNAMODB, "ConsumedWriteCapacityUnits", "Count", C, "Sum", True, "write capacity units consumed"),
    _m(DYNAMODB, "ReadThrottleEvents", "Count", C, "Sum", True, "read events refused for lack of capacity"),
    _m(DYNAMODB, "WriteThrottleEvents", "Count", C, "Sum", True, "write events refused for lack of capacity"),
    _m(DYNAMODB, "ThrottledRequests", "Count", C, "Sum", True, "requests with at least one throttled event (per table)"),
    _m(DYNAMODB, "ProvisionedReadCapacityUnits", "Count", G, "Average", True, "provisioned read capacity (auto scaling moves it)"),
    _m(DYNAMODB, "ProvisionedWriteCapacityUnits", "Count", G, "Average", True, "provisioned write capacity (auto scaling moves it)"),
)

# Per topic (dimension TopicName), from the SNS counters of /_emulator/metrics: what the
# moto child counts (publishes, filtering, SQS deliveries) plus the control plane's Lambda
# deliveries (emulator/sns/fanout.py).
TOPIC_METRICS: tuple[MetricInfo, ...] = (
    _m(SNS, "NumberOfMessagesPublished", "Count", C, "Sum", True, "messages published to the topic"),
    _m(SNS, "NumberOfNotificationsDelivered", "Count", C, "Sum", True,
       "messages delivered to subscriptions (Lambda: handed to its async queue; SQS: sent)"),
    _m(SNS, "NumberOfNotificationsFailed", "Count", C, "Sum", True,
       "deliveries given up (Lambda: delivery policy exhausted or a refusal not retried; SQS: the send failed)"),
    _m(SNS, "NumberOfNotificationsFilteredOut", "Count", C, "Sum", True, "messages a subscription's filter policy rejected"),
    _m(SNS, "NumberOfNotificationsFilteredOut-MessageAttributes", "Count", C, "Sum", True,
       "rejected by an attribute-based policy"),
    _m(SNS, "NumberOfNotificationsFilteredOut-MessageBody", "Count", C, "Sum", True, "rejected by a payload-based policy"),
    _m(SNS, "NumberOfNotificationsFilteredOut-InvalidAttributes", "Count", C, "Sum", True,
       "rejected: attributes invalid, or the policy's attributes of the wrong type"),
    _m(SNS, "NumberOfNotificationsFilteredOut-NoMessageAttributes", "Count", C, "Sum", True,
       "rejected: the message has no attributes"),
    _m(SNS, "NumberOfNotificationsFilteredOut-InvalidMessageBody", "Count", C, "Sum", True,
       "rejected: the body is not valid JSON for a payload-based policy"),
    _m(SNS, "NumberOfNotificationsRedrivenToDlq", "Count", C, "Sum", True, "messages sent to a subscription's DLQ"),
    _m(SNS, "NumberOfNotificationsFailedToRedriveToDlq", "Count", C, "Sum", True, "messages that could not reach the DLQ"),
    _m(SNS, "PublishSize", "Bytes", G, "Average", True, "size of the messages published, the second's mean"),
    _m(SNS, "LambdaDeliveryAttemptsRejected", "Count", C, "Sum", False,
       "hand-overs Lambda refused (each retry of SNS's delivery policy counts)"),
)

ALL_METRICS: tuple[MetricInfo, ...] = (FUNCTION_METRICS + ACCOUNT_METRICS + MAPPING_METRICS + QUEUE_METRICS + STREAM_METRICS
                                       + API_METRICS + TABLE_METRICS + TOPIC_METRICS)


def info(namespace: str, name: str) -> MetricInfo | None:
    return _BY_NAME.get((namespace, name))


_BY_NAME: dict[tuple[str, str], MetricInfo] = {}
for _metric in ALL_METRICS:  # a name in two groups (ConcurrentExecutions) has one meaning
    _BY_NAME.setdefault((_metric.namespace, _metric.name), _metric)

# Receive counts at and above this share one bucket, "N+", so the series stay few.
RECEIVE_COUNT_BUCKETS = 10
