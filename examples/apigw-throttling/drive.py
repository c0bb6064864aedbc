"""Drive the shop API of the apigw-throttling example and show which layer answered what.

    emulator up --template examples/apigw-throttling/template.yaml   # terminal 1
    python examples/apigw-throttling/drive.py                         # terminal 2

Four phases, each a burst of sequential requests through the API's front door (port 3000):
1. cache: the pro customer lists products 50 times; the stage cache answers all but the first;
2. usage plan: the free customer lists another category 20 times; its plan (burst 5) throttles;
3. method limit: the pro customer creates 30 orders; POST /orders' own limit (burst 10) throttles;
4. authorizer: requests without a token, or with one its validation expression rejects.
Then the gateway's own figures from /_emulator/metrics: 429s by throttle layer, cache hits
and misses, authorizer results, and how often each function really ran. Only the standard
library: it is a client like any other.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

FREE_KEY, PRO_KEY = "free-key-0123456789abcdef", "pro-key-0123456789abcdef0"
STAGE = "prod"


def call(api_url: str, method: str, path: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"{api_url}/{STAGE}{path}", method=method, headers=headers,
                                     data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def burst(api_url: str, method: str, path: str, count: int, key: str | None, token: str | None) -> Counter:
    headers = {}
    if key:
        headers["x-api-key"] = key
    if token is not None:
        headers["Authorization"] = token
    return Counter(call(api_url, method, path, headers) for _ in range(count))


def drive(api_url: str) -> dict[str, Counter]:
    return {
        "cache: pro lists products x50": burst(api_url, "GET", "/products?category=tea", 50, PRO_KEY, "Bearer ada"),
        "usage plan: free lists products x20": burst(api_url, "GET", "/products?category=pots", 20, FREE_KEY, "Bearer bob"),
        "method limit: pro creates orders x30": burst(api_url, "POST", "/orders", 30, PRO_KEY, "Bearer ada"),
        "authorizer: no token x3": burst(api_url, "GET", "/products", 3, PRO_KEY, None),
        "authorizer: bad token x3": burst(api_url, "GET", "/products", 3, PRO_KEY, "Basic ada"),
    }


def metrics(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/_emulator/metrics", timeout=10) as response:
        return json.loads(response.read())


def report(result: dict[str, Counter], snapshot: dict[str, Any]) -> str:
    lines = ["requests (status: count)"]
    for phase, statuses in result.items():
        lines.append(f"  {phase:40s} " + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items())))
    gateway = snapshot["api_gateway"]
    for api in gateway["apis"].values():
        stage = api["Stages"].get(STAGE)
        if stage is None:
            continue
        lines.append(f"API {api['Name']}, stage {STAGE}: Count {stage['Count']}, 4XXError {stage['4XXError']}, "
                     f"CacheHitCount {stage['CacheHitCount']}, CacheMissCount {stage['CacheMissCount']}")
        for route, figures in stage["Routes"].items():
            lines.append(f"  {route:18s} 429 by layer {figures['ThrottlesByLayer'] or '{}'}; cache hits {figures['CacheHitCount']} "
                         f"misses {figures['CacheMissCount']}; authorizer {figures['Authorizer']}")
    for plan in gateway["usage_plans"].values():
        for key in plan["Keys"].values():
            if "QuotaUsed" in key:
                lines.append(f"usage plan {plan['Name']}, key {key['Name']}: quota used {key['QuotaUsed']}, "
                             f"remaining {key['QuotaRemaining']}")
    functions = snapshot["functions"]
    lines.append("function invocations: " + ", ".join(
        f"{name} {functions.get(name, {}).get('Invocations', 0)}" for name in ("shop-products", "shop-orders", "shop-authorizer")))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", default="http://127.0.0.1:3000", help="the emulator's --api-port URL")
    parser.add_argument("--endpoint", default="http://127.0.0.1:3001", help="the emulator's endpoint (for its metrics)")
    args = parser.parse_args()
    result = drive(args.api_url.rstrip("/"))
    print(report(result, metrics(args.endpoint.rstrip("/"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
