"""Rebuild the policy's memory after a restart, from what the store remembers.

The policy is deterministic, so replaying the stored inbound messages in order,
at their original times, through ``admit``/``release`` rebuilds its memory:
rate baselines, hot templates, number blocks, opt-outs, sender history. The
ledger is not asked again: a ``ReplayLedger`` answers every reservation exactly
as the real ledger did (OK for the ids it reserved, a refusal otherwise), so the
replay neither spends nor changes anything in the database.

A refunded reservation (the provider surely did not send the reply) stops counting
toward its sender's limit at the time it was refunded: the replay gives the policy
that refund at that same point (``record_refund``), so the sender is not dropped as
``sender_limit`` after a restart any more than before it.

The store stays the authority on which replies are held: after the replay the
held queue is reconciled with the ``held`` rows.

A sender judged a raider stays one: those a raid rule judged before the replay's horizon
and who write within it are flagged again before it starts (``restore_flag``), from the
decisions stored with their messages; the replay flags the later ones itself, and the
responder looks up the others' flags in the store when they write again.

Retention erases old bodies, but an opt-out (or opt-in) must be remembered for good:
such a message whose text is gone replays with the policy's keyword for the decision
it got (``opt_out``/``opt_in``, stored beside it), so the sender stays opted out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from responder.policy import (
    Caps,
    Controls,
    PolicyConfig,
    PolicyState,
    ReserveRequest,
    ReserveStatus,
    admit,
    forget_held,
    held_messages,
    next_deadline,
    release,
    restore_flag,
    restore_held,
)
from responder.policy.engine import number_since, record_refund, seed_spend
from responder.store import HeldRow, SqlStore


class ReplayLedger:
    """A read-only ledger that repeats past answers: OK exactly for ``reserved`` ids."""

    def __init__(self, reserved: Iterable[str]) -> None:
        self._reserved = set(reserved)
        self._answered: set[str] = set()

    def reserve(self, request: ReserveRequest) -> ReserveStatus:
        if request.message_id in self._reserved and request.message_id not in self._answered:
            self._answered.add(request.message_id)
            return ReserveStatus.OK
        return ReserveStatus.DUPLICATE

    def settle(self, message_id: str, *, billed: bool, now: float | None = None) -> None:
        return None

    def spent_micros(self) -> int:
        return 0

    def spent_in_hour_micros(self, now: float) -> int:
        return 0

    def caps(self) -> Caps:
        return Caps()

    def set_caps(self, caps: Caps) -> None:
        return None


def replay_horizon_s(config: PolicyConfig) -> float:
    """How far back the policy's memory reaches, for the settings in ``config``."""
    return max(
        config.surge.max_hold_s,
        3 * config.surge.baseline_halflife_s,
        3 * config.habit.halflife_s,
        config.number_blocks.window_s,
        4 * config.templates.halflife_s,
        config.repeats.window_s,
    )


def rebuild_state(
    store: SqlStore, config: PolicyConfig, controls: Controls, *, now: float
) -> tuple[PolicyState, int]:
    """A PolicyState as it would be had this process seen the stored traffic; and its size."""
    # Replay without the kill switch, whose drops would hide the traffic from the policy.
    replay_controls = Controls(False, set(controls.blocked), set(controls.allowed))
    state = PolicyState(config, replay_controls)
    first = store.first_received_at()
    if first is not None:  # the number's first day, not the replay's, is the habit's
        number_since(state, first)
    since = now - replay_horizon_s(config)
    rows = store.replay_messages(since)
    # A sender judged a raider stays one. Those judged before the replay that write within
    # it are judged again up front, so the replay drops their messages as the running
    # process did (the replay flags the others as it goes). The rest are not loaded:
    # the responder looks a sender's flags up in the store before it decides
    # (``Responder._learn_flags``), so memory holds the raiders of the horizon, not of
    # every raid the number ever had.
    for number, at in store.flagged_among(sorted({message.sender for message, _ in rows})):
        if at < since:
            restore_flag(state, number, at=at)
    reserved = store.reserved_ids([m.message_id for m, _ in rows])
    ledger = ReplayLedger(reserved)
    # (refunded at, message id, sender), oldest last: popped as the replay passes them
    refunds = [(t, mid, sender) for mid, sender, t in store.refunds(sorted(reserved))]
    refunds.reverse()

    def refund_before(at: float) -> None:
        # strictly before: a reply refunded at the very time it was reserved (an injected
        # clock) is recorded first, then refunded
        while refunds and refunds[-1][0] < at:
            _, mid, sender = refunds.pop()
            record_refund(state, mid, 0, sender=sender)  # money: seed_spend, below

    keywords = {"opt_out": config.senders.opt_out_keywords,
                "opt_in": config.senders.opt_in_keywords}
    for message, rule in rows:
        erased_as = keywords.get(rule or "") if not message.body else None
        if erased_as:  # its text erased by retention: replay the decision it got
            message = replace(message, body=erased_as[0])
        at = message.received_at
        for _ in range(len(rows) + 1):  # bounded: each call pops every due item
            deadline = next_deadline(state)
            if deadline is None or deadline > at:
                break
            refund_before(deadline)
            release(state, ledger, now=deadline)
        refund_before(at)
        admit(state, ledger, message, now=at)
    refund_before(float("inf"))
    _reconcile_held(state, store.held())
    state.controls = controls
    pace_from_store(state, store, now=now)
    return state, len(rows)


def pace_from_store(state: PolicyState, store: SqlStore, *, now: float) -> None:
    """Budget pacing from the ledger: its total spend and, under an hourly cap, the hour's
    reservations (read only then: the cap bounds how many there are; without one they
    would grow with the traffic)."""
    hourly = state.config.budget.per_hour_micros is not None
    seed_spend(state, total_micros=store.spent_micros(),
               last_hour=store.spend_in_hour(now) if hourly else ())


def _reconcile_held(state: PolicyState, held_rows: list[HeldRow]) -> None:
    """Make the policy's held queue match the store's ``held`` rows."""
    wanted = {row.message.message_id: row for row in held_rows}
    present = set()
    for message in held_messages(state):
        if message.message_id in wanted:
            present.add(message.message_id)
        else:
            forget_held(state, message.message_id)
    for sid, row in wanted.items():
        if sid not in present:
            restore_held(state, row.message, until=row.until, priority=row.priority,
                         rule=row.rule)
