"""The concurrency ledger: who may run now, and which pool each execution is charged to.

Pools (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html,
https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html):
* provisioned: PC slots of one (function, qualifier), pre-allocated;
* reserved: a function with reserved concurrency R runs on demand within R minus its PC
  (reserved is both a guarantee and a cap);
* unreserved: every other on-demand execution shares
  account_limit - sum(reserved) - sum(PC of functions without reserved).

Our reading of the provisioned-concurrency page (documented because AWS states it only in
prose):
* PC is *allocated*, busy or not. On a reserved function it takes R's room, so on-demand
  (including spillover and `$LATEST`) gets R - sum(PC); when PC adds up to R, `$LATEST`
  is throttled, as the page says.
* On a function without reserved concurrency PC still "counts toward the Regional quota":
  it is subtracted from the unreserved pool that other functions share, and it must leave
  the unreserved minimum, like a reservation does.

Everything is O(1) per call: totals are kept as counters, never summed on demand.
The ledger only counts; the caller creates environments and spends scaling tokens
(emulator.policy.scaling) after a successful admission.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum

from emulator.errors import InvalidParameterValue
from emulator.policy.scaling import scale_count

# Default account concurrency per Region:
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
DEFAULT_ACCOUNT_LIMIT = 1_000
# At least 100 must stay unreserved:
# https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html
DEFAULT_UNRESERVED_MINIMUM = 100
# PC applies to published versions and aliases, not $LATEST:
# https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
UNPUBLISHED_QUALIFIER = "$LATEST"
# ProvisionedConcurrentExecutions has min 1 in the Lambda API model:
# https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json
MIN_PROVISIONED_CONCURRENCY = 1


class ThrottleReason(StrEnum):
    """`Reason` of a TooManyRequestsException (the ThrottleReason enum of the Lambda API model:
    https://docs.aws.amazon.com/botocore/latest/reference/services/lambda/client/exceptions/TooManyRequestsException.html)."""

    CONCURRENT = "ConcurrentInvocationLimitExceeded"
    RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
    FUNCTION_RATE = "FunctionInvocationRateLimitExceeded"
    RESERVED_RATE = "ReservedFunctionInvocationRateLimitExceeded"
    CALLER_RATE = "CallerRateLimitExceeded"
    SNAPSHOT_CREATE = "ConcurrentSnapshotCreateLimitExceeded"


class ConcurrencyConfigError(InvalidParameterValue, ValueError):
    """A rejected concurrency setting: InvalidParameterValueException, HTTP 400 (the Lambda API
    model's PutFunctionConcurrency and PutProvisionedConcurrencyConfig errors).

    The code and status are data on the base class (emulator.errors), so the API layer
    serialises it like every other AWS error; ValueError for callers outside the API.
    """


class UnbalancedReleaseError(RuntimeError):
    """A release with no matching acquisition: a bug in the caller, not a customer error."""


class AdmissionPool(StrEnum):
    """Which pool an admitted execution is charged to."""

    PROVISIONED = "provisioned"
    RESERVED = "reserved"
    UNRESERVED = "unreserved"


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to one admission request, and the receipt to `release` it."""

    function: str
    qualifier: str | None
    reason: ThrottleReason | None  # None: admitted
    pool: AdmissionPool | None = None  # None: throttled
    # Targeted a qualifier with PC, found it all busy, ran on demand instead
    # (metric ProvisionedConcurrencySpilloverInvocations; when all PC is in use the function
    # scales on demand: https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html).
    spillover: bool = False

    @property
    def admitted(self) -> bool:
        return self.reason is None

    @property
    def provisioned(self) -> bool:
        return self.pool is AdmissionPool.PROVISIONED


@dataclass(frozen=True)
class LimitsConfig:
    """Account-level concurrency numbers; defaults are the AWS values (see the constants)."""

    account_limit: int = DEFAULT_ACCOUNT_LIMIT
    unreserved_minimum: int = DEFAULT_UNRESERVED_MINIMUM

    def __post_init__(self) -> None:
        if self.account_limit < 1:
            raise ValueError(f"account_limit must be >= 1, got {self.account_limit!r}")
        if not 0 <= self.unreserved_minimum <= self.account_limit:
            raise ValueError(
                f"unreserved_minimum must be in 0..{self.account_limit}, "
                f"got {self.unreserved_minimum!r}"
            )

    def scaled(self, factor: float) -> LimitsConfig:
        """`--scale-factor 20`: 1,000 → 50 and 100 → 5 (each at least 1)."""
        return replace(
            self,
            account_limit=scale_count(self.account_limit, factor),
            unreserved_minimum=scale_count(self.unreserved_minimum, factor),
        )


class _FunctionSlots:
    """Configuration and counters of one function (mutable, private to the ledger)."""

    __slots__ = (
        "reserved",
        "provisioned",
        "provisioned_total",
        "provisioned_busy",
        "provisioned_in_flight",
        "on_demand_reserved",
        "on_demand_unreserved",
    )

    def __init__(self) -> None:
        self.reserved: int | None = None
        self.provisioned: dict[str, int] = {}  # qualifier -> PC
        self.provisioned_total = 0
        self.provisioned_busy: dict[str, int] = {}  # qualifier -> busy PC slots
        self.provisioned_in_flight = 0  # sum of provisioned_busy
        self.on_demand_reserved = 0
        self.on_demand_unreserved = 0

    @property
    def in_flight(self) -> int:
        return self.provisioned_in_flight + self.on_demand_reserved + self.on_demand_unreserved


def _unreserved_minimum_message(setting: str, minimum: int) -> str:
    # AWS's wording, as it appears verbatim in users' deploy logs (observed; not in AWS's docs).
    # For PC, AWS has also been seen to say "Specified ConcurrentExecutions ...".
    return (
        f"Specified {setting} for function decreases account's "
        f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
    )


class ConcurrencyLedger:
    """Counts in-flight executions per pool and decides admission (reserved, then the account
    pool: the two Reasons of https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html)."""

    def __init__(
        self,
        account_limit: int = DEFAULT_ACCOUNT_LIMIT,
        unreserved_minimum: int = DEFAULT_UNRESERVED_MINIMUM,
    ) -> None:
        limits = LimitsConfig(account_limit, unreserved_minimum)  # validates
        self.account_limit = limits.account_limit
        self.unreserved_minimum = limits.unreserved_minimum
        self._functions: dict[str, _FunctionSlots] = {}
        self._reserved_total = 0
        self._provisioned_total = 0
        self._provisioned_outside_reserved = 0  # PC of functions without reserved
        self._provisioned_in_flight = 0
        self._reserved_in_flight = 0  # on demand, charged to functions' reservations
        self._unreserved_in_flight = 0

    @classmethod
    def from_limits(cls, limits: LimitsConfig) -> ConcurrencyLedger:
        return cls(limits.account_limit, limits.unreserved_minimum)

    def _slots(self, function: str) -> _FunctionSlots:
        slots = self._functions.get(function)
        if slots is None:
            slots = self._functions[function] = _FunctionSlots()
        return slots

    # ---- configuration -------------------------------------------------------------

    @property
    def unreserved_limit(self) -> int:
        """GetAccountSettings `UnreservedConcurrentExecutions` (Lambda API model)."""
        return self.account_limit - self._reserved_total - self._provisioned_outside_reserved

    def reserved(self, function: str) -> int | None:
        slots = self._functions.get(function)
        return None if slots is None else slots.reserved

    def provisioned(self, function: str, qualifier: str) -> int | None:
        slots = self._functions.get(function)
        return None if slots is None else slots.provisioned.get(qualifier)

    def set_reserved(self, function: str, n: int | None) -> None:
        """PutFunctionConcurrency (n) / DeleteFunctionConcurrency (None).

        Executions already running keep the pool they were charged to until released.
        """
        slots = self._slots(function)
        if n is not None:
            if n < 0:
                raise ConcurrencyConfigError(
                    f"1 validation error detected: Value '{n}' at 'reservedConcurrentExecutions'"
                    " failed to satisfy constraint: Member must have value greater than or"
                    " equal to 0"
                )
            if n < slots.provisioned_total:
                # PC cannot exceed reserved (provisioned-concurrency page), so reserved cannot
                # drop below PC.
                raise ConcurrencyConfigError(
                    f"Specified ReservedConcurrentExecutions [{n}] for function is less than"
                    f" its total ProvisionedConcurrentExecutions [{slots.provisioned_total}]."
                )
        old_claim = self._claim(slots.reserved, slots.provisioned_total)
        new_claim = self._claim(n, slots.provisioned_total)
        self._check_unreserved(new_claim - old_claim, "ReservedConcurrentExecutions")
        if slots.reserved is None:
            self._provisioned_outside_reserved -= slots.provisioned_total
        else:
            self._reserved_total -= slots.reserved
        if n is None:
            self._provisioned_outside_reserved += slots.provisioned_total
        else:
            self._reserved_total += n
        slots.reserved = n

    def set_provisioned(self, function: str, qualifier: str, n: int | None) -> None:
        """PutProvisionedConcurrencyConfig (n) / Delete... (None) for one qualifier.

        `qualifier` is the alias or version holding the config; the control plane
        resolves aliases and invokes with that same qualifier. Busy PC slots above a
        lowered value drain as they are released.
        """
        slots = self._slots(function)
        old = slots.provisioned.get(qualifier, 0)
        if n is not None:
            if qualifier == UNPUBLISHED_QUALIFIER:
                raise ConcurrencyConfigError(
                    "Provisioned Concurrency Configs cannot be applied to unpublished"
                    " function versions."
                )
            if n < MIN_PROVISIONED_CONCURRENCY:
                raise ConcurrencyConfigError(
                    f"1 validation error detected: Value '{n}' at"
                    " 'provisionedConcurrentExecutions' failed to satisfy constraint: Member"
                    f" must have value greater than or equal to {MIN_PROVISIONED_CONCURRENCY}"
                )
        new_total = slots.provisioned_total - old + (n or 0)
        if slots.reserved is not None and new_total > slots.reserved:
            # PC cannot exceed reserved concurrency:
            # https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
            # The message is ours: AWS's exact text is not documented.
            raise ConcurrencyConfigError(
                f"Requested total ProvisionedConcurrentExecutions [{new_total}] for function"
                f" exceeds its ReservedConcurrentExecutions [{slots.reserved}]."
            )
        old_claim = self._claim(slots.reserved, slots.provisioned_total)
        new_claim = self._claim(slots.reserved, new_total)
        self._check_unreserved(new_claim - old_claim, "ConcurrentExecutions")
        if n is None:
            slots.provisioned.pop(qualifier, None)
        else:
            slots.provisioned[qualifier] = n
        if slots.reserved is None:
            self._provisioned_outside_reserved += new_total - slots.provisioned_total
        self._provisioned_total += new_total - slots.provisioned_total
        slots.provisioned_total = new_total

    @staticmethod
    def _claim(reserved: int | None, provisioned_total: int) -> int:
        # What one function takes out of the account pool: its reservation, which
        # already contains its PC, or else its PC alone.
        return provisioned_total if reserved is None else reserved

    def _check_unreserved(self, extra_claim: int, setting: str) -> None:
        # Only a growing claim can break the minimum; shrinking one is always allowed.
        if extra_claim > 0 and self.unreserved_limit - extra_claim < self.unreserved_minimum:
            raise ConcurrencyConfigError(
                _unreserved_minimum_message(setting, self.unreserved_minimum)
            )

    # ---- admission -----------------------------------------------------------------

    def admit(self, function: str, qualifier: str | None = None) -> Admission:
        """Take a slot for one invocation of `function` (optionally a PC qualifier).

        A qualifier with free PC gets a provisioned slot; otherwise (no PC, or all busy:
        spillover) the on-demand rules apply.
        """
        slots = self._slots(function)
        spillover = False
        if qualifier is not None and slots.provisioned_total:
            pc = slots.provisioned.get(qualifier, 0)
            if pc:
                busy = slots.provisioned_busy.get(qualifier, 0)
                if busy < pc:
                    slots.provisioned_busy[qualifier] = busy + 1
                    slots.provisioned_in_flight += 1
                    self._provisioned_in_flight += 1
                    return Admission(function, qualifier, None, AdmissionPool.PROVISIONED)
                spillover = True
        pool = self._acquire_on_demand(slots)
        if isinstance(pool, ThrottleReason):
            return Admission(function, qualifier, pool)
        return Admission(function, qualifier, None, pool, spillover)

    def _acquire_on_demand(self, slots: _FunctionSlots) -> AdmissionPool | ThrottleReason:
        if slots.reserved is not None:
            # Reserved concurrency caps the function, PC taking its share of R: reserved 0
            # throttles all (ReservedFunctionConcurrentInvocationLimitExceeded, API_Invoke).
            running = slots.on_demand_reserved + slots.on_demand_unreserved
            if running >= slots.reserved - slots.provisioned_total:
                return ThrottleReason.RESERVED
            slots.on_demand_reserved += 1
            self._reserved_in_flight += 1
            return AdmissionPool.RESERVED
        # The shared pool left after reservations and PC (ConcurrentInvocationLimitExceeded).
        if self._unreserved_in_flight >= self.unreserved_limit:
            return ThrottleReason.CONCURRENT
        slots.on_demand_unreserved += 1
        self._unreserved_in_flight += 1
        return AdmissionPool.UNRESERVED

    def release(self, lease: Admission) -> None:
        """Give back the slot an admission holds (to the pool it was charged to)."""
        if lease.pool is None:
            raise UnbalancedReleaseError(f"a throttled admission of {lease.function!r} holds no slot")
        slots = self._existing(lease.function)
        if lease.pool is AdmissionPool.PROVISIONED:
            qualifier = lease.qualifier or ""  # a provisioned admission always has one
            busy = slots.provisioned_busy.get(qualifier, 0)
            if busy <= 0:
                raise UnbalancedReleaseError(f"no PC slot of {lease.function}:{qualifier} held")
            slots.provisioned_busy[qualifier] = busy - 1
            slots.provisioned_in_flight -= 1
            self._provisioned_in_flight -= 1
            return
        self._release_on_demand(slots, lease.pool)

    def _existing(self, function: str) -> _FunctionSlots:
        slots = self._functions.get(function)
        if slots is None:
            raise UnbalancedReleaseError(f"release of {function!r}, which never acquired")
        return slots

    def _release_on_demand(self, slots: _FunctionSlots, pool: AdmissionPool) -> None:
        if pool is AdmissionPool.RESERVED and slots.on_demand_reserved > 0:
            slots.on_demand_reserved -= 1
            self._reserved_in_flight -= 1
        elif pool is AdmissionPool.UNRESERVED and slots.on_demand_unreserved > 0:
            slots.on_demand_unreserved -= 1
            self._unreserved_in_flight -= 1
        else:
            raise UnbalancedReleaseError("release without a matching on-demand acquisition")

    @contextmanager
    def lease(self, function: str, qualifier: str | None = None) -> Iterator[Admission]:
        """`with ledger.lease(fn) as a:` — released in `finally` when admitted."""
        admission = self.admit(function, qualifier)
        try:
            yield admission
        finally:
            if admission.admitted:
                self.release(admission)

    # ---- readings ------------------------------------------------------------------

    def in_flight(self, function: str) -> int:
        slots = self._functions.get(function)
        return 0 if slots is None else slots.in_flight

    @property
    def unreserved_in_flight(self) -> int:
        """CloudWatch `UnreservedConcurrentExecutions`: on demand, without reservation."""
        return self._unreserved_in_flight

    @property
    def unreserved_available(self) -> int:
        return max(0, self.unreserved_limit - self._unreserved_in_flight)

    @property
    def account_in_flight(self) -> int:
        """CloudWatch `ConcurrentExecutions` summed over all functions."""
        return self._provisioned_in_flight + self._reserved_in_flight + self._unreserved_in_flight

    def provisioned_usage(self) -> dict[str, tuple[int, int]]:
        """Function -> (busy provisioned slots, provisioned concurrency), for the functions
        that have any (the timeline's ProvisionedConcurrencyUtilization)."""
        return {name: (slots.provisioned_in_flight, slots.provisioned_total)
                for name, slots in self._functions.items() if slots.provisioned_total}

    def snapshot(self) -> dict[str, int]:
        """Account-level numbers for metrics; O(1)."""
        return {
            "account_limit": self.account_limit,
            "unreserved_minimum": self.unreserved_minimum,
            "reserved_total": self._reserved_total,
            "provisioned_total": self._provisioned_total,
            "unreserved_limit": self.unreserved_limit,
            "account_in_flight": self.account_in_flight,
            "provisioned_in_flight": self._provisioned_in_flight,
            "reserved_in_flight": self._reserved_in_flight,
            "unreserved_in_flight": self._unreserved_in_flight,
            "unreserved_available": self.unreserved_available,
            # Concurrency unavailable to unreserved on-demand invocations: every
            # reservation and out-of-reservation PC, plus what unreserved functions run.
            "claimed_concurrency": (
                self.account_limit - self.unreserved_limit + self._unreserved_in_flight
            ),
        }
