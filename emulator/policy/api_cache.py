"""API Gateway's stage cache and its authorizers' result cache: entries that live for a TTL, in a
store bounded in bytes (least recently used first out). Pure: `now` (emulated monotonic
seconds) comes in as an argument from the injected clock.

REST API caching (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-caching.html):
"The default TTL value for API caching is 300 seconds. The maximum TTL value is 3600
seconds. TTL=0 means caching is disabled"; a response over 1 MB is not cached; the cluster's
capacity is one of eight sizes, 0.5 GB to 237 GB. Lambda authorizers cache their results by
identity for `authorizerResultTtlInSeconds`, 300 by default, at most 3,600, 0 disables
(https://docs.aws.amazon.com/apigateway/latest/api/API_CreateAuthorizer.html).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Hashable, TypeVar

CACHE_TTL_DEFAULT_S = 300
CACHE_TTL_MAX_S = 3_600
AUTHORIZER_TTL_DEFAULT_S = 300
AUTHORIZER_TTL_MAX_S = 3_600
MAX_CACHED_RESPONSE_BYTES = 1_048_576
# CacheClusterSize values, in GB (https://docs.aws.amazon.com/apigateway/latest/api/API_CreateStage.html#apigw-CreateStage-request-cacheClusterSize).
CACHE_CLUSTER_SIZES = ("0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237")
DEFAULT_CACHE_CLUSTER_SIZE = "0.5"

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    expires: float
    size: int


class TtlCache(Generic[V]):
    """Entries by key until `expires`; at most `capacity` bytes (each entry's `size` as the
    caller counts it). Putting over capacity evicts the least recently used entries first."""

    __slots__ = ("capacity", "used", "evictions", "_entries")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"a cache needs a capacity of 0 or more bytes, got {capacity!r}")
        self.capacity = capacity
        self.used = 0
        self.evictions = 0
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float) -> V | None:
        """The live entry's value (and it becomes the most recently used), else None; an
        expired entry is dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: Hashable, value: V, size: int, ttl_s: float, now: float) -> bool:
        """Store for `ttl_s` seconds; False (nothing stored) when the TTL is 0 or the entry is
        larger than the whole cache."""
        if ttl_s <= 0 or size > self.capacity:
            return False
        if key in self._entries:
            self._drop(key)
        while self.used + size > self.capacity and self._entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evictions += 1
        self._entries[key] = _Entry(value, now + ttl_s, size)
        self.used += size
        return True

    def invalidate(self, key: Hashable) -> bool:
        if key not in self._entries:
            return False
        self._drop(key)
        return True

    def flush(self) -> None:
        self._entries.clear()
        self.used = 0

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self.used -= entry.size


def cluster_capacity_bytes(cluster_size: str, cap_mb: int) -> int:
    """The bytes a stage's cache may hold here: the cluster's size, at most `cap_mb` (an
    emulator keeps the cache in its own memory; README 'Choices')."""
    cluster = int(float(cluster_size) * 1024 ** 3)
    return min(cluster, cap_mb * 1024 * 1024)
