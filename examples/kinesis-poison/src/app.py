"""Order consumer: adds up the amounts of the orders on the stream.

A record that is not a JSON order makes `json.loads` raise, so the whole batch fails:
that is the poison record.
"""

import base64
import json


def handler(event, context):
    total = 0
    for record in event["Records"]:
        order = json.loads(base64.b64decode(record["kinesis"]["data"]))
        total += order["amount"]
    print(f"{context.function_name}: {len(event['Records'])} orders, {total} cents")
    return {"orders": len(event["Records"]), "total": total}
