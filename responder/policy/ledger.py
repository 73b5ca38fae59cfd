"""The ledger: the atomic promises behind every paid reply.

A reservation succeeds only if, atomically:
  * this message id has no reservation yet (one reply per provider message id),
  * the sender has had fewer than ``sender_limit`` replies within ``sender_window_s``,
  * the total spend plus this cost stays within the total cap, and
  * the spend of the last 60 minutes (a sliding window, so no burst straddling a
    clock hour can spend the hourly cap twice) plus this cost stays within the hourly cap.
Reserved money counts as spent until ``settle(..., billed=False)`` gives it back,
so a cap holds even while replies are still in flight. A reply settled unbilled (the
provider surely did not send it) also stops counting toward its sender's limit, so the
sender can be answered later; its id stays reserved (never a second reply to it).

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
    """The clock hour an instant belongs to: floor(now / 3600)."""
    return math.floor(now / HOUR_S)


class RollingSpend:
    """Amounts reserved within the last ``span`` seconds: the window (now - span, now]."""

    def __init__(self, span: float = HOUR_S) -> None:
        self.span = span
        self._entries: deque[tuple[float, str]] = deque()
        self._amounts: dict[str, int] = {}
        self._total = 0

    def _evict(self, now: float) -> None:
        horizon = now - self.span
        entries = self._entries
        while entries and entries[0][0] <= horizon:
            _, key = entries.popleft()
            self._total -= self._amounts.pop(key, 0)

    def spent(self, now: float) -> int:
        self._evict(now)
        return self._total

    def add(self, now: float, key: str, amount: int) -> None:
        self._evict(now)
        if key in self._amounts:
            self._total -= self._amounts[key]
        self._entries.append((now, key))
        self._amounts[key] = self._amounts.get(key, 0) + amount
        self._total += amount

    def refund(self, key: str, amount: int) -> None:
        if key in self._amounts:
            refunded = min(amount, self._amounts[key])
            self._amounts[key] -= refunded
            self._total -= refunded

    def room_at(self, now: float, cap: int, amount: int) -> float:
        """The earliest time at or after ``now`` when ``amount`` fits under ``cap``."""
        self._evict(now)
        total = self._total
        if total + amount <= cap:
            return now
        for t, key in self._entries:
            total -= self._amounts.get(key, 0)
            if total + amount <= cap:
                return t + self.span
        return now + self.span


@runtime_checkable
class Ledger(Protocol):
    def reserve(self, request: ReserveRequest) -> ReserveStatus: ...

    def settle(self, message_id: str, *, billed: bool, now: float | None = None) -> None:
        """The provider's verdict on a reserved reply. Unbilled (``billed=False``, at
        ``now`` when known): give its money back and stop counting it for the sender
        limit, but keep its id reserved. Idempotent; unknown ids are ignored."""
        ...

    def spent_micros(self) -> int: ...

    def spent_in_hour_micros(self, now: float) -> int: ...

    def caps(self) -> Caps: ...

    def set_caps(self, caps: Caps) -> None: ...


class MemoryLedger:
    """Single-process ledger; atomic because the simulator and tests are single-threaded."""

    def __init__(self, caps: Caps | None = None) -> None:
        self._caps = caps or Caps()
        # id -> sender, cost, reserved at, refunded
        self._reservations: dict[str, tuple[str, int, float, bool]] = {}
        self._sender_replies: dict[str, deque[float]] = defaultdict(deque)
        self._spent = 0
        self._hourly = RollingSpend()

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
        hourly = self._hourly
        hour_cap = caps.per_hour_micros
        if hour_cap is not None and hourly.spent(request.now) + cost > hour_cap:
            return ReserveStatus.BUDGET_HOUR
        self._reservations[request.message_id] = (request.sender, cost, request.now, False)
        self._sender_replies[request.sender].append(request.now)
        self._spent += cost
        hourly.add(request.now, request.message_id, cost)
        return ReserveStatus.OK

    def settle(self, message_id: str, *, billed: bool, now: float | None = None) -> None:
        if billed:
            return
        entry = self._reservations.get(message_id)
        if entry is None or entry[3]:
            return
        sender, cost, reserved_at, _ = entry
        # Keep the id reserved (never reply twice) but give the money back, and free the
        # sender's limit: the reply never reached them.
        self._reservations[message_id] = (sender, 0, reserved_at, True)
        self._spent -= cost
        self._hourly.refund(message_id, cost)
        history = self._sender_replies.get(sender)
        if history and reserved_at in history:  # else already out of the window
            history.remove(reserved_at)

    def spent_micros(self) -> int:
        return self._spent

    def spent_in_hour_micros(self, now: float) -> int:
        """Spend reserved in the last 60 minutes, (now - 3600, now]."""
        return self._hourly.spent(now)

    def caps(self) -> Caps:
        return self._caps

    def set_caps(self, caps: Caps) -> None:
        self._caps = caps
