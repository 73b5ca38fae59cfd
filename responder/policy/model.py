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

    @classmethod
    def reply(cls, rule: str) -> Decision:
        return cls(Action.REPLY, rule)

    @classmethod
    def drop(cls, rule: str) -> Decision:
        return cls(Action.DROP, rule)

    @classmethod
    def defer(cls, rule: str, until: float, priority: int = 0) -> Decision:
        return cls(Action.DEFER, rule, until, priority)

    @property
    def is_reply(self) -> bool:
        return self.action is Action.REPLY


@dataclass(frozen=True, slots=True)
class Released:
    """A deferred message that has come due, with its final (or renewed) decision."""

    message: Message
    decision: Decision
