"""The defence policy: pure, synchronous, deterministic. See ``engine.py`` for the theory."""

from responder.policy.config import PolicyConfig
from responder.policy.engine import (
    RAID_RULES,
    RULES,
    Controls,
    PolicyState,
    TextSketches,
    admit,
    decide,
    forget_held,
    forget_texts,
    held_messages,
    next_deadline,
    record_refusal,
    record_reply,
    release,
    release_due,
    restore_held,
    tick,
)
from responder.policy.ledger import Caps, Ledger, MemoryLedger, ReserveRequest, ReserveStatus
from responder.policy.model import Action, Decision, Message, Released

__all__ = [
    "RAID_RULES",
    "RULES",
    "Action",
    "Caps",
    "Controls",
    "Decision",
    "Ledger",
    "MemoryLedger",
    "Message",
    "PolicyConfig",
    "PolicyState",
    "Released",
    "ReserveRequest",
    "ReserveStatus",
    "TextSketches",
    "admit",
    "decide",
    "forget_held",
    "forget_texts",
    "held_messages",
    "next_deadline",
    "record_refusal",
    "record_reply",
    "release",
    "release_due",
    "restore_held",
    "tick",
]
