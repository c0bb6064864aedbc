"""Order handlers: each subscriber of the `orders` topic counts what it was sent.

SNS invokes the direct subscribers with one SNS record per event; the refund worker reads
its SQS queue, whose bodies are the orders themselves (raw message delivery).
"""

import json


def handler(event, context):
    orders = []
    for record in event["Records"]:
        if "Sns" in record:
            orders.append(json.loads(record["Sns"]["Message"]))
        else:
            orders.append(json.loads(record["body"]))
    print(f"{context.function_name}: {len(orders)} order(s): {[o['order'] for o in orders]}")
    return {"orders": len(orders)}
