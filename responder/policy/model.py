"""The values the policy takes and returns: frozen, comparable, cheap."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound SMS as the policy sees it. ``received_at`` is in the driver's clock (seconds)."""

    message_id: str
    sender: str
    to: str
    body: str
    received_at: float


class Action(StrEnum):
    REPLY = "reply"
    DEFER = "defer"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one message, and the rule that decided it.

    ``until`` and ``priority`` are set for DEFER: the driver asks again via
    ``release_due`` once ``next_deadline`` has come; lower priority goes first.
    """

    action: Action
    rule: str
    until: float | None = None
    priority: int = 0

    # REPLY and DROP decisions carry nothing but their rule, and a Decision is frozen:
    # one shared instance per rule spares a frozen-dataclass construction per message.

    @classmethod
    def reply(cls, rule: str) -> Decision:
        decision = _REPLIES.get(rule)
        if decision is None:
            decision = _REPLIES[rule] = cls(Action.REPLY, rule)
        return decision

    @classmethod
    def drop(cls, rule: str) -> Decision:
        decision = _DROPS.get(rule)
        if decision is None:
            decision = _DROPS[rule] = cls(Action.DROP, rule)
        return decision

    @classmethod
    def defer(cls, rule: str, until: float, priority: int = 0) -> Decision:
        return cls(Action.DEFER, rule, until, priority)

    @property
    def is_reply(self) -> bool:
        return self.action is Action.REPLY


_REPLIES: dict[str, Decision] = {}
_DROPS: dict[str, Decision] = {}


@dataclass(frozen=True, slots=True)
class Released:
    """A deferred message that has come due, with its final (or renewed) decision."""

    message: Message
    decision: Decision
