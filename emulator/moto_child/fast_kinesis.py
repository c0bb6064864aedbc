"""Make moto's Kinesis fast at depth, in the moto server's own process.

moto 5.2's Kinesis does O(records in the shard) work on every call: a put copies the
shard's keys to find the last sequence number, a GetRecords walks the shard from its first
record, DescribeStream and ListShards copy every shard's keys (docs/backend.md,
"Kinesis"): PutRecords falls from ~20k to ~7k records/s by 20,000 records. `apply()` runs
in the moto child (emulator/moto_child/__main__.py) before moto serves. It keeps moto as the
store and the API and changes three things:

1. the shard model (emulator/moto_child/kinesis_store.py, kinesis_stream.py): moto's
   `Shard` keeps its records in an append-only, column-wise store with binary search by
   sequence number and arrival time, so a put is O(1) and a read O(log n + page); a
   stream routes keys by binary search over its open shards' hash ranges;
2. moto's record operations (`KinesisBackend.put_records`, `put_record`,
   `get_shard_iterator`, `get_records`, `Stream.get_shard_for_key`, `Stream.put_record`)
   are replaced by ones on that store;
3. a short path for PutRecords, PutRecord, GetShardIterator and GetRecords in the JSON
   protocol (emulator/moto_child/kinesis_wire.py): moto's Flask routing and generic
   serializer cost more than the work itself.

Keep-alive for these JSON calls comes from emulator/moto_child/keep_alive.py (applied with
the fast SQS model). moto's internals change between releases, so `apply()` patches only
the versions in VERIFIED_MOTO_VERSIONS; on any other it leaves moto alone with a warning.

Where moto and AWS differ, this model follows AWS where it matters to a scale test
(docs/backend.md, "Kinesis"; tests/component/test_moto_kinesis_fast.py):

- sequence numbers are 56-digit decimal strings that increase within a shard and are
  unique in the stream, as AWS's (the example event in
  https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html; "unique to all records in
  the stream", https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html);
  moto's are 1, 2, 3 per shard, which sort wrongly as strings ("10" < "9");
- GetRecords returns at most 10,000 records and 10 MiB, and Limit defaults to 10,000
  (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html); moto
  returns the whole shard when no Limit is given and accepts any Limit. Over 10,000 is an
  InvalidArgumentException, as the API reference says;
- MillisBehindLatest is how far behind current time the reader is (the API reference's
  words): the age of the first record the page left unread, at least 1 while one is left,
  and 0 only when nothing is left to read; moto gives the arrival gap between the last
  record returned and the newest (0 when they arrived in the same millisecond), and 0 for
  an empty page;
- shard iterators expire 5 minutes after they are issued, with ExpiredIteratorException
  (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html);
  moto's never expire. A token we did not issue is an InvalidArgumentException (moto: a 500);
- records older than the stream's retention period (24 hours by default,
  https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html) are
  trimmed and freed; moto keeps every record forever;
- a shard's StartingSequenceNumber is fixed when the shard is created (AWS,
  https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SequenceNumberRange.html);
  moto reports its oldest record's, or "0";
- keys route among open shards only, both ends of a hash-key range included; moto may route
  to a closed parent after a split, and an ExplicitHashKey equal to a range's end fails with a 500;
- GetRecords on a closed shard read to its end returns no NextShardIterator (AWS); moto
  always returns one;
- arrival times have millisecond precision (AWS) and never decrease within a shard;
- PutRecords checks every record before storing any (moto stores the records before the
  first bad partition key); a record without Data is a ValidationException and Data that is
  not base64 a SerializationException (moto stores them, or fails with a 500);
- the stream's IncomingBytes / IncomingRecords metrics are one CloudWatch data point per
  stream per minute, as AWS reports them
  (https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html); moto adds
  two data points per put call and keeps them forever (a leak under a steady flow).

Left as moto has them: write throughput limits are not enforced (AWS: 1 MB/s or 1,000
records/s per shard, https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html),
so PutRecords never reports per-record failures (FailedRecordCount is 0) and never answers
ProvisionedThroughputExceededException; resharding moves records into the child shards
with new sequence numbers (AWS keeps them readable in the closed parent); moto's own
Lambda event source mappings on a stream are not run (the emulator never registers them:
its pollers own the mappings).
"""

from __future__ import annotations

import logging

from emulator.moto_child.versions import VERIFIED_MOTO_VERSIONS, is_verified

log = logging.getLogger("emulator.moto.kinesis")


def apply() -> bool:
    """Patch moto's Kinesis in this process; False, with a warning, on an unverified version."""
    import moto

    if not is_verified(moto.__version__):
        log.warning("moto %s is not a version the fast Kinesis model was verified with (%s): running moto's own Kinesis",
                    moto.__version__, ", ".join(VERIFIED_MOTO_VERSIONS))
        return False
    from moto.kinesis import models
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from emulator.moto_child import kinesis_stream, kinesis_wire

    if getattr(models, "_emulator_fast_kinesis", False):
        return True
    # Build everything first, then assign: a failure leaves moto untouched.
    backend_methods = kinesis_stream.backend_methods()
    stream_methods = kinesis_stream.stream_methods()
    dispatch = kinesis_wire.dispatcher_call(DomainDispatcherApplication.__call__)

    models.Shard = kinesis_stream.FastShard  # Stream.init_shards, split and merge build shards through this name
    for name, method in backend_methods.items():
        setattr(models.KinesisBackend, name, method)
    for name, method in stream_methods.items():
        setattr(models.Stream, name, method)
    DomainDispatcherApplication.__call__ = dispatch
    models._emulator_fast_kinesis = True
    return True
