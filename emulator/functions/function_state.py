"""A function's `State` and `LastUpdateStatus`, as explicit state machines.

https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html: a created function is
`Pending` until its resources are ready, then `Active` (or `Failed`); an update makes
`LastUpdateStatus` `InProgress` until it is done, then `Successful` (or `Failed`).
Meanwhile invocations run on the previous configuration, and a second update is refused.
The messages are Lambda's (users' error output).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from emulator.errors import ResourceConflict


class FunctionState(str, enum.Enum):
    PENDING = "Pending"
    ACTIVE = "Active"
    FAILED = "Failed"

    def __str__(self) -> str:
        return self.value


class UpdateStatus(str, enum.Enum):
    SUCCESSFUL = "Successful"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"

    def __str__(self) -> str:
        return self.value


_STATE_MOVES = {
    FunctionState.PENDING: frozenset({FunctionState.ACTIVE, FunctionState.FAILED}),
    FunctionState.ACTIVE: frozenset(),
    FunctionState.FAILED: frozenset(),
}
_UPDATE_MOVES = {
    UpdateStatus.SUCCESSFUL: frozenset({UpdateStatus.IN_PROGRESS}),
    UpdateStatus.FAILED: frozenset({UpdateStatus.IN_PROGRESS}),
    UpdateStatus.IN_PROGRESS: frozenset({UpdateStatus.SUCCESSFUL, UpdateStatus.FAILED}),
}


class IllegalLifecycleMove(RuntimeError):
    pass


@dataclass
class Lifecycle:
    """State and LastUpdateStatus of one function, with the reasons Lambda shows."""

    state: FunctionState = FunctionState.ACTIVE
    update: UpdateStatus = UpdateStatus.SUCCESSFUL
    state_reason: str | None = None
    state_reason_code: str | None = None
    update_reason: str | None = None
    update_reason_code: str | None = None

    def move_state(self, new: FunctionState, reason: str | None = None, code: str | None = None) -> None:
        if new not in _STATE_MOVES[self.state]:
            raise IllegalLifecycleMove(f"function state {self.state} -> {new}")
        self.state, self.state_reason, self.state_reason_code = new, reason, code

    def move_update(self, new: UpdateStatus, reason: str | None = None, code: str | None = None) -> None:
        if new not in _UPDATE_MOVES[self.update]:
            raise IllegalLifecycleMove(f"last update status {self.update} -> {new}")
        self.update, self.update_reason, self.update_reason_code = new, reason, code

    def check_invocable(self) -> None:
        if self.state is not FunctionState.ACTIVE:
            raise ResourceConflict("The operation cannot be performed at this time. The function is currently in the "
                                   f"following state: {self.state}")

    def check_updatable(self, function_arn: str) -> None:
        if self.state is FunctionState.PENDING or self.update is UpdateStatus.IN_PROGRESS:
            raise ResourceConflict("The operation cannot be performed at this time. An update is in progress for "
                                   f"resource: {function_arn}")

    def shape(self) -> dict[str, str]:
        """The FunctionConfiguration fields (the reasons only when there are some)."""
        out = {"State": self.state.value, "LastUpdateStatus": self.update.value}
        for key, value in (("StateReason", self.state_reason), ("StateReasonCode", self.state_reason_code),
                           ("LastUpdateStatusReason", self.update_reason),
                           ("LastUpdateStatusReasonCode", self.update_reason_code)):
            if value:
                out[key] = value
        return out
