"""PutItem through moto's server application in-process, with the emulator's DynamoDB model
and its capacity layer on or off: what the layer costs, without HTTP or the scheduler.

    python bench/moto_dynamodb_inprocess.py --capacity on|off --calls N

Applies emulator/moto_child/fast_dynamodb.py (and the SQS/Kinesis models, as the moto child
does), creates an on-demand table with a stream, and times N PutItem calls of a ~140-byte
item through moto's WSGI application after a warm-up; prints {"p50_us", "p99_us"} as JSON.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--capacity", choices=("on", "off"), required=True)
    parser.add_argument("--calls", type=int, default=3_000)
    args = parser.parse_args()

    from emulator.moto_child.fast_dynamodb import apply as apply_dynamodb
    from emulator.moto_child.fast_kinesis import apply as apply_kinesis
    from emulator.moto_child.fast_sqs import apply as apply_sqs

    apply_sqs()
    apply_kinesis()
    apply_dynamodb(1.0, args.capacity == "on")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import EnvironBuilder

    app = DomainDispatcherApplication(create_backend_app)
    headers = {"Content-Type": "application/x-amz-json-1.0",
               "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20240101/us-east-1/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=0"}

    def environ(action: str, body: dict) -> dict:
        return EnvironBuilder(method="POST", path="/", data=json.dumps(body),
                              headers={**headers, "X-Amz-Target": f"DynamoDB_20120810.{action}"}).get_environ()

    def call(env: dict) -> None:
        b"".join(app(env, lambda *a: None))

    call(environ("CreateTable", {
        "TableName": "t", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}))
    warmup = 500
    envs = [environ("PutItem", {"TableName": "t", "Item": {"pk": {"S": f"k{i}"}, "data": {"S": "x" * 100},
                                                          "n": {"N": "42"}}}) for i in range(args.calls + warmup)]
    for env in envs[:warmup]:
        call(env)
    times = []
    for env in envs[warmup:]:
        began = time.perf_counter()
        call(env)
        times.append((time.perf_counter() - began) * 1e6)
    times.sort()
    print(json.dumps({"p50_us": times[len(times) // 2], "p99_us": times[int(len(times) * 0.99)]}))


if __name__ == "__main__":
    main()
