"""The shop's handlers: a product list (slow enough that a cache matters), order creation, and a
TOKEN authorizer that lets any `Bearer <name>` in (and names the caller in the context)."""

import json
import time


def products(event, context):
    time.sleep(0.02)  # a database query
    category = (event.get("queryStringParameters") or {}).get("category", "all")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"category": category, "products": ["kettle", "teapot"], "servedBy": context.aws_request_id})}


def orders(event, context):
    user = event["requestContext"]["authorizer"]["user"]
    return {"statusCode": 201, "body": json.dumps({"order": context.aws_request_id, "user": user})}


def authorize(event, context):
    user = event["authorizationToken"].split(" ", 1)[1]
    base = event["methodArn"].split("/", 1)[0]
    return {"principalId": user, "context": {"user": user},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": base + "/*"}]}}
