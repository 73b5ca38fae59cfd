"""The ledger: the atomic promises behind every paid reply.

A reservation succeeds only if, atomically:
  * this message id has no reservation yet (one reply per provider message id),
  * the sender has had fewer than ``sender_limit`` replies within ``sender_window_s``,
  * the total spend plus this cost stays within the total cap, and
  * this UTC hour's spend plus this cost stays within the hourly cap.
Reserved money counts as spent until ``settle(..., billed=False)`` gives it back,
so a cap holds even while replies are still in flight.

The in-memory ledger here serves the simulator and the unit tests. The responder
adds SQLite and PostgreSQL ledgers with the same contract; one test suite
(``tests/ledger_contract.py``) runs against all of them.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

HOUR_S = 3600.0


class ReserveStatus(StrEnum):
    OK = "ok"
    DUPLICATE = "duplicate"
    SENDER_LIMIT = "sender_limit"
    BUDGET_TOTAL = "budget_total"
    BUDGET_HOUR = "budget_hour"


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    message_id: str
    sender: str
    cost_micros: int
    now: float
    sender_limit: int | None = 1
    sender_window_s: float = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class Caps:
    total_micros: int | None = None
    per_hour_micros: int | None = None


def hour_bucket(now: float) -> int:
    """The hour an instant belongs to, for hourly caps: floor(now / 3600)."""
    return math.floor(now / HOUR_S)


@runtime_checkable
class Ledger(Protocol):
    def reserve(self, request: ReserveRequest) -> ReserveStatus: ...

    def settle(self, message_id: str, *, billed: bool) -> None: ...

    def spent_micros(self) -> int: ...

    def spent_in_hour_micros(self, now: float) -> int: ...

    def caps(self) -> Caps: ...

    def set_caps(self, caps: Caps) -> None: ...


class MemoryLedger:
    """Single-process ledger; atomic because the simulator and tests are single-threaded."""

    def __init__(self, caps: Caps | None = None) -> None:
        self._caps = caps or Caps()
        self._reservations: dict[str, tuple[str, int, int]] = {}  # id -> sender, cost, hour
        self._sender_replies: dict[str, deque[float]] = defaultdict(deque)
        self._spent = 0
        self._hourly: dict[int, int] = defaultdict(int)

    def reserve(self, request: ReserveRequest) -> ReserveStatus:
        if request.message_id in self._reservations:
            return ReserveStatus.DUPLICATE
        if request.sender_limit is not None:
            history = self._sender_replies.get(request.sender)
            if history:
                horizon = request.now - request.sender_window_s
                while history and history[0] <= horizon:
                    history.popleft()
                if len(history) >= request.sender_limit:
                    return ReserveStatus.SENDER_LIMIT
        cost = request.cost_micros
        caps = self._caps
        if caps.total_micros is not None and self._spent + cost > caps.total_micros:
            return ReserveStatus.BUDGET_TOTAL
        bucket = hour_bucket(request.now)
        if caps.per_hour_micros is not None and self._hourly[bucket] + cost > caps.per_hour_micros:
            return ReserveStatus.BUDGET_HOUR
        self._reservations[request.message_id] = (request.sender, cost, bucket)
        self._sender_replies[request.sender].append(request.now)
        self._spent += cost
        self._hourly[bucket] += cost
        return ReserveStatus.OK

    def settle(self, message_id: str, *, billed: bool) -> None:
        if billed:
            return
        entry = self._reservations.get(message_id)
        if entry is None:
            return
        sender, cost, bucket = entry
        # Keep the id reserved (never reply twice) but give the money back.
        self._reservations[message_id] = (sender, 0, bucket)
        self._spent -= cost
        self._hourly[bucket] -= cost

    def spent_micros(self) -> int:
        return self._spent

    def spent_in_hour_micros(self, now: float) -> int:
        return self._hourly.get(hour_bucket(now), 0)

    def caps(self) -> Caps:
        return self._caps

    def set_caps(self, caps: Caps) -> None:
        self._caps = caps
