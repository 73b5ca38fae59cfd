"""The responder's synchronous core: store + policy, one thread per process.

Every method here runs on the process's single database thread (``DbThread``),
which is what makes the ``PolicyState`` safe to share between the webhook
handlers, the release timer and the admin API without locks. Cross-process
safety is the database's job (see ``responder.store``).

``accept`` is the whole webhook path after the signature check, in one
transaction: store the message (dedup), ``admit`` it (policy + ledger
reservation), record the decision, queue the reply. If any step fails, nothing
is stored and the webhook answers 503 so Twilio retries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar

from responder.config import Settings
from responder.logs import event
from responder.policy import (
    Action,
    Caps,
    Controls,
    Decision,
    PolicyConfig,
    PolicyState,
    Released,
    admit,
    forget_raiders,
    forget_texts,
    next_deadline,
    release,
    restore_flag,
    tick,
)
from responder.policy.engine import (
    due_held,
    forget_held_ids,
    record_refund,
    settle_held,
    wake_held,
    wake_senders,
)
from responder.policy.money import format_eur
from responder.recovery import ReplayLedger, pace_from_store, rebuild_state
from responder.store import FAILED, Inbound, OutboxItem, SqlStore, StoreError

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])

# Refunds read per query by the policy tick (it reads pages until it has them all).
REFUND_PAGE = 1000
# Folding other processes' messages (``Responder._fold_others``): at most this many rows a
# fold; an id skipped in the sequence (a transaction of another process not committed yet,
# PostgreSQL numbering rows before they commit) is looked for again this long, up to this
# many such ids at once.
FOLD_LIMIT = 5000
GAP_WAIT_S = 30.0
MAX_GAPS = 5000
# why a queued reply was never sent (its outbox row's error)
BLOCKED_BY_OPERATOR = "cancelled: the number was blocked by an operator"
# After the database itself failed, the first wait before the policy's memory is rebuilt
# again, and the longest (each failure doubles it; a success starts it over).
REBUILD_WAIT_S = 0.5
REBUILD_WAIT_MAX_S = 60.0
OPTED_OUT = "cancelled: the recipient opted out"


def allows_more_spend(before: Caps, after: Caps) -> bool:
    """Whether ``after`` allows more spend than ``before`` in total or per hour (None: no
    cap, the most)."""
    def more(old: int | None, new: int | None) -> bool:
        return old is not None and (new is None or new > old)

    return (more(before.total_micros, after.total_micros)
            or more(before.per_hour_micros, after.per_hour_micros))


class DbThread:
    """Runs blocking store/policy calls one at a time, on a dedicated thread or inline.

    Inline (on the event loop thread) suits SQLite: its calls take microseconds, and
    handing each one to a thread costs more than it saves, because the two threads
    then take turns on the GIL (up to ``sys.getswitchinterval()`` per turn).
    PostgreSQL calls wait on the network, so they go to the thread.
    """

    def __init__(self, *, inline: bool = False) -> None:
        self.inline = inline
        self._pool = None if inline else concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="raidsim-db"
        )

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class Batcher:
    """Coalesces concurrent webhook accepts into one database transaction (group commit).

    While one batch is being committed on the DB thread, new arrivals queue up and
    form the next batch. Each webhook still answers only after its own commit.
    """

    def __init__(self, db: DbThread, core: Responder, max_batch: int = 128) -> None:
        self.db = db
        self.core = core
        self.max_batch = max_batch
        self._pending: list[tuple[Inbound, asyncio.Future[Accepted]]] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None

    async def accept(self, inbound: Inbound) -> Accepted:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        self._pending.append((inbound, future))
        if not self._flushing:
            self._flushing = True
            self._task = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:  # bounded: each pass takes at least one queued item
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    results = await self.db.call(self.core.accept_many, [i for i, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._flushing = False


@dataclass(frozen=True, slots=True)
class Accepted:
    """What became of one webhook delivery."""

    duplicate: bool
    decision: Decision | None = None
    queued: bool = False
    cancelled: int = 0  # replies queued to this sender, cancelled by its opt-out


def policy_with_caps(config: PolicyConfig, caps: Caps) -> PolicyConfig:
    """The policy paces against the ledger's caps, whatever its file said."""
    enabled = caps.total_micros is not None or caps.per_hour_micros is not None
    budget = replace(config.budget, enabled=enabled, total_micros=caps.total_micros,
                     per_hour_micros=caps.per_hour_micros)
    return replace(config, budget=budget)


class Tail:
    """How far a process has read a table every process appends to, by row id: the last
    id read, and the ids skipped before it, each with when it was first missed (a
    PostgreSQL transaction numbers its rows when it writes them, and may commit after a
    later one: such a row appears late; a row id used up and never committed, by a
    rollback or an ``ON CONFLICT`` duplicate, never appears). A skipped id is looked for
    again for ``GAP_WAIT_S``, at most ``MAX_GAPS`` of them at once."""

    def __init__(self, last: int = 0) -> None:
        self.last = last
        self.gaps: dict[int, float] = {}

    def wanted(self, now: float) -> list[int]:
        """The skipped ids still worth looking for."""
        for stale in [k for k, at in self.gaps.items() if at < now - GAP_WAIT_S]:
            del self.gaps[stale]
        return list(self.gaps)

    def take(self, row_id: int, now: float) -> None:
        """Row ``row_id`` was read (rows are taken in id order)."""
        if self.gaps.pop(row_id, None) is None and row_id > self.last:
            for skipped in range(max(self.last + 1, row_id - MAX_GAPS), row_id):
                self.gaps[skipped] = now
            self.last = row_id
        while len(self.gaps) > MAX_GAPS:  # the oldest first (insertion order)
            del self.gaps[next(iter(self.gaps))]

    def others(self, rows: list[R], own: set[str], now: float) -> list[R]:
        """Take ``rows`` ((row id, message sid, ...) each, in id order) and return those
        another process wrote; ``own`` holds the sids of this one's not yet passed, and
        loses those it passes."""
        found = []
        for row in rows:
            self.take(row[0], now)
            if row[1] in own:
                own.discard(row[1])
            else:
                found.append(row)
        return found


class Responder:
    def __init__(self, settings: Settings, store: SqlStore) -> None:
        self.settings = settings
        self.store = store
        self.base_config = settings.policy
        self.state = PolicyState(self.base_config, Controls())
        self.controls_version = -1
        self.replayed = 0
        # The policy's memory is updated before the transaction that records the same
        # decisions commits; when that transaction fails, the memory keeps what the
        # database forgot (a reservation, a reply, a held message). It is then rebuilt
        # from the store, as at start-up, before it decides anything else.
        self.stale = False
        # While the database itself fails (a full disk, a lost connection), a rebuild is
        # tried at most once per ``_rebuild_wait`` seconds (doubling up to a minute), and
        # the webhooks meanwhile get 503 at once: rebuilt for every failing webhook, the
        # memory of 40,000 messages (a second each) held the event loop for minutes.
        self._rebuild_after = 0.0
        self._rebuild_wait = REBUILD_WAIT_S
        # Refunds recorded by any process numbered after this one are not yet in the
        # policy's memory (``refresh`` picks them up; ``_rebuild`` replays the earlier ones).
        self.refunds_seen = 0
        # Other processes' messages and releases folded into this memory
        # (``_fold_others``): how far each table was read, and the sids of the rows this
        # process wrote there that the fold has not passed yet.
        self.inbound_tail, self.decision_tail = Tail(), Tail()
        self.own: set[str] = set()
        self.own_released: set[str] = set()
        # told how many were folded, by kind ("message", "release"): the app's metrics
        self.count_folded: Callable[[str, int], None] | None = None

    # -- start-up ----------------------------------------------------------------

    def start(self, *, now: float, migrate: bool = True) -> None:
        """Migrate, install caps, expire dead leases, rebuild the policy's memory."""
        if migrate:
            self.store.migrate(now=now)
        problem = self.store.schema_problem()
        if problem is not None:
            raise StoreError(problem)
        configured = self.settings.caps

        def eur(micros: int | None) -> str | None:
            return None if micros is None else format_eur(micros)

        before, used = self.store.caps(), self.store.has_reservations()
        if self.store.apply_config_caps(configured):
            if before != configured and (used or before != Caps()):
                # The caps are the database's, shared by every instance: this start put
                # its configuration's in place of those another start installed (the last
                # start wins). Say so: an old instance restarting with an old, higher cap
                # would otherwise raise the cap of the whole fleet without a word.
                event("config_caps_replaced", level=logging.WARNING,
                      total_eur=eur(configured.total_micros),
                      per_hour_eur=eur(configured.per_hour_micros),
                      previous_total_eur=eur(before.total_micros),
                      previous_per_hour_eur=eur(before.per_hour_micros),
                      raised=allows_more_spend(before, configured),
                      hint="every instance shares the caps, and each start installs its "
                      "configuration's; give every instance the same RAIDSIM_BUDGET_EUR, or "
                      "set the caps with PUT /admin/budget, which no restart undoes")
        else:
            effective = self.store.caps()
            if effective != configured:
                # RAIDSIM_BUDGET_EUR (or the policy's [budget]) changed and the service
                # restarted, but caps an operator set through the admin API stick: say so,
                # or the operator believes the new cap is in force.
                event("config_caps_ignored", level=logging.WARNING,
                      configured_total_eur=eur(configured.total_micros),
                      configured_per_hour_eur=eur(configured.per_hour_micros),
                      total_eur=eur(effective.total_micros),
                      per_hour_eur=eur(effective.per_hour_micros),
                      hint="caps set through the admin API stick across restarts: change "
                      "them with PUT /admin/budget")
        self.store.expire_leases(now=now)
        self._rebuild(now=now)

    def _rebuild(self, *, now: float) -> None:
        """The policy's memory from the stored traffic (start-up, or after a failed write)."""
        controls = self._load_controls()
        config = policy_with_caps(self.base_config, self.store.caps())
        seen = self.store.last_refund_seq()  # read first: a later one is picked up on refresh
        # read first too: a message stored during the replay is folded later (and one the
        # replay saw as well is a duplicate id to the policy, which counts it once)
        self.inbound_tail = Tail(self.store.last_inbound_id())
        self.decision_tail = Tail(self.store.last_decision_id())
        self.own, self.own_released = set(), set()
        self.state, self.replayed = rebuild_state(self.store, config, controls, now=now)
        self.refunds_seen = seen
        self.stale = False

    def _fresh(self, *, now: float) -> None:
        """Rebuild the policy's memory if a failed transaction left it ahead of the store;
        while the database fails, not more often than ``_rebuild_wait`` (StoreError: the
        caller answers 503, and the provider retries)."""
        if not self.stale:
            return
        wait = self._rebuild_after - time.monotonic()
        if wait > 0:
            raise StoreError(f"the database failed; the policy's memory is rebuilt once it "
                             f"answers (next try in {wait:.1f} s)")
        try:
            self._rebuild(now=now)
        except BaseException as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        """A transaction failed: the memory may be ahead of the store. A failure of the
        database itself (not of one message) also spaces out the rebuilds."""
        self.stale = True
        if self.store.unavailable(exc):
            self._rebuild_after = time.monotonic() + self._rebuild_wait
            self._rebuild_wait = min(self._rebuild_wait * 2, REBUILD_WAIT_MAX_S)

    def _succeeded(self) -> None:
        self._rebuild_wait = REBUILD_WAIT_S

    def _sync_controls(self, *, now: float, force: bool = False) -> bool:
        """Reload the kill switch, lists and caps if any process changed them; True if so.

        Checked before each batch is decided, not only on the policy tick: a drop for the
        kill switch or the total cap is final, so an instance must not make it on a value
        another instance's operator already changed (one small SELECT per batch)."""
        if not force and self.store.controls_version() == self.controls_version:
            return False
        was_killed = self.state.controls.kill_switch
        hourly = self.state.config.budget.per_hour_micros
        was_allowed = self.state.controls.allowed
        self.state.controls = self._load_controls()
        allowed = self.state.controls.allowed - was_allowed
        if allowed:
            # Newly allow-listed senders skip the surge hold: their held replies are
            # decided now, not at their next look (up to an observe window later).
            wake_senders(self.state, allowed, now=now)
        self.state.config = policy_with_caps(self.base_config, self.store.caps())
        if was_killed and not self.state.controls.kill_switch:
            # Replies held while the switch was on wait for it to go off, not for their
            # next look (up to an observe window later): they are due now.
            wake_held(self.state, "kill_switch", now=now)
        raised = self.state.config.budget.per_hour_micros
        if hourly is not None and (raised is None or raised > hourly):
            # Replies held for the hourly cap waited for room under the old one (up to an
            # hour): decided again now, under the new one (held again if still over it).
            wake_held(self.state, "budget_hour", now=now)
        return True

    def _load_controls(self) -> Controls:
        row = self.store.controls()
        self.controls_version = row.version
        return Controls(row.kill_switch, set(row.blocked), set(row.allowed))

    # -- the webhook path ---------------------------------------------------------

    def accept(self, inbound: Inbound, *, now: float) -> Accepted:
        self._fresh(now=now)
        try:
            with self.store.transaction():
                self._sync_controls(now=now)
                self._fold_others(now=now)
                accepted = self._accept(inbound, now)
        except BaseException as exc:
            self._failed(exc)
            raise
        self._succeeded()
        return accepted

    def accept_many(self, batch: list[Inbound]) -> list[Accepted | Exception]:
        """Group commit: many messages in one transaction.

        If anything in the batch fails, the whole transaction rolls back and each
        message is tried again in a transaction of its own, so one bad message
        fails alone (its webhook answers 503 and Twilio retries it).
        """
        self._fresh(now=batch[0].received_at)
        try:
            with self.store.transaction():
                self._sync_controls(now=batch[0].received_at)
                self._fold_others(now=batch[0].received_at)
                # Rows are locked in message-id order, whatever the arrival order: two
                # instances given the same webhooks (Twilio retrying against another
                # one) in other orders would otherwise each wait for the other's row,
                # a deadlock PostgreSQL breaks by failing a batch. Decided in arrival order.
                new = [False] * len(batch)
                for k in sorted(range(len(batch)), key=lambda k: batch[k].message_sid):
                    new[k] = self.store.insert_inbound(batch[k])
                    if new[k]:
                        self.own.add(batch[k].message_sid)
                self._learn_flags(inbound.sender for inbound in batch)
                accepted = [self._accept(inbound, inbound.received_at, inserted=fresh)
                            for inbound, fresh in zip(batch, new, strict=True)]
        except Exception as exc:
            self._failed(exc)
            if len(batch) == 1:
                raise
            if self.store.unavailable(exc):
                # the database, not one message: each alone would fail the same way
                return [exc] * len(batch)
        else:
            self._succeeded()
            return list(accepted)
        results: list[Accepted | Exception] = []
        for inbound in batch:
            try:
                results.append(self.accept(inbound, now=inbound.received_at))
            except Exception as exc:
                results.append(exc)
        return results

    def _accept(self, inbound: Inbound, now: float, *, inserted: bool | None = None
                ) -> Accepted:
        """Decide one message and persist it; ``inserted``: its inbound row was already
        written (True) or was a duplicate (False) by the caller, else it is written here."""
        store = self.store
        if inserted is None:
            inserted = store.insert_inbound(inbound)
            if inserted:
                self.own.add(inbound.message_sid)
            self._learn_flags((inbound.sender,))
        if not inserted:
            return Accepted(duplicate=True)
        decision = admit(self.state, store, inbound.message(), now=now)
        store.record_decision(inbound.message_sid, decision, now=now, first=True)
        queued = False
        if decision.is_reply:
            queued = self._enqueue(inbound.message_sid, inbound.sender, inbound.recipient,
                                   now=now)
        cancelled = 0
        if decision.rule == "opt_out":
            # A reply still queued to someone who just wrote STOP (or ARRET, which Twilio's
            # default opt-out does not catch) must not reach them: cancelled and refunded.
            # (The policy's memory is ahead of this transaction, as for the decision: a
            # failed commit rebuilds it.)
            items = store.cancel_pending_to([inbound.sender], now=now, error=OPTED_OUT,
                                            exact=True)
            self._refunded(items)
            cancelled = len(items)
        return Accepted(duplicate=False, decision=decision, queued=queued, cancelled=cancelled)

    def _learn_flags(self, numbers: Iterable[str], before: dict[str, float] | None = None
                     ) -> None:
        """Judge raiders here the senders another process judged raiders (its decisions are
        in the store; this policy's memory holds only what this process saw): as one
        process would, a sender flagged once is dropped as ``flagged_sender`` on every
        instance, not answered by the next one it reaches. With one process, a no-op: its
        memory already has every flag it recorded. With ``before``, only a flag earned
        before that sender's time there."""
        senders = self.state.senders
        unknown = sorted({number for number in numbers
                          if (sender := senders.get(number)) is None or sender.flag is None})
        if unknown:
            for number, at in self.store.flagged_among(unknown):
                if before is None or at < before[number]:
                    restore_flag(self.state, number, at=at)

    def _fold_others(self, *, now: float) -> int:
        """Fold into this policy's memory the messages other processes stored since the
        last fold, then their releases of held replies; how many messages.

        Each process decides the share of the traffic it receives, but its memory (surge
        baseline, templates, phrases, number blocks, senders) must be the whole number's:
        with three processes behind a load balancer, each saw a third of a raid, and its
        templates got hot three times later (tests/test_several_processes.py: the 2017
        raid's two days cost 28 % more than through one). The store is the log every
        process writes: each message another one stored is admitted here at ``now``
        against a ledger that repeats the reservations made for it (``ReplayLedger``, as a
        restart does), so it is counted once and nothing is spent or written. Its
        decision stands (the other process recorded it). A reply this memory holds stays
        held here too, as after a restart: its sender's next message is ``already_held``
        on every process, and the first process to release it settles it
        (``release_due``); the others learn its outcome from the decisions log
        (``settle_held``). With one process, a no-op: every row is its own.

        Row ids give the order (``Tail``: an id skipped is looked for again a while)."""
        store, tail = self.store, self.inbound_tail
        others = [row_id for row_id, _ in tail.others(
            store.inbound_ids_after(tail.last, tail.wanted(now), limit=FOLD_LIMIT),
            self.own, now)]
        folded = self._fold_messages(others, now=now) if others else 0
        # then their releases of held replies (each of a message stored before it)
        tail = self.decision_tail
        settled = [(sid, number, decision) for _, sid, number, decision in tail.others(
            store.decisions_after(tail.last, tail.wanted(now), limit=FOLD_LIMIT),
            self.own_released, now) if decision.action is not Action.DEFER]
        if settled:
            settle_held(self.state, settled, now=now)
        if self.count_folded is not None:
            if folded:
                self.count_folded("message", folded)
            if settled:
                self.count_folded("release", len(settled))
        return folded

    def _fold_messages(self, others: list[int], *, now: float) -> int:
        store = self.store
        messages = store.inbound_by_ids(others)
        # A raider this memory forgot (``forget_raiders``) is one here too, as where it was
        # decided, not a new sender in the surge's count. Only a flag earned before its
        # first message here: the one a folded message earned is this memory's to earn,
        # by counting that message's text first (flagged up front, its text would go
        # uncounted: three processes answered 50 % more raiders on Monday afternoon).
        first: dict[str, float] = {}
        for message in messages:
            first.setdefault(message.sender, message.received_at)
        self._learn_flags(first, before=first)
        reserved = sorted(store.reserved_ids([m.message_id for m in messages]))
        # a reply already refunded is given back at once, as a restart's replay does:
        # ``refresh`` may have read that refund before this memory knew the reply
        refunded = {mid: sender for mid, sender, _ in store.refunds(reserved)}
        ledger = ReplayLedger(reserved)
        for message in messages:
            admit(self.state, ledger, message, now=now)
            mid = message.message_id
            if mid in refunded:
                record_refund(self.state, mid, 0, sender=refunded[mid])  # money: seed_spend
        return len(messages)

    def _enqueue(self, message_sid: str, sender: str, our_number: str, *, now: float) -> bool:
        # Replies only ever go to the sender of the inbound message.
        return self.store.enqueue_reply(
            message_sid,
            sender,
            self.settings.from_number or our_number,
            self.state.config.reply_text,
            self.state.reply_cost_micros,
            now=now,
        )

    # -- held replies ---------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return next_deadline(self.state)

    def tick(self, *, now: float) -> None:
        """Let the policy's time pass without a message (decides nothing)."""
        tick(self.state, now=now)

    def release_due(self, *, now: float) -> tuple[list[Released], int]:
        """Decide due held replies again; persist the outcome; (released, queued)."""
        queued = 0
        self._fresh(now=now)
        try:
            with self.store.transaction():
                self._sync_controls(now=now)
                self._fold_others(now=now)
                due = due_held(self.state, now=now)
                if due:
                    # Every process holds every held message (reloaded at its start,
                    # folded since): another may have settled one of these already. Its
                    # decision stands (this one would overwrite it, with duplicate_id
                    # when it was a reply). The rows stay locked until this commits, so
                    # two never both decide.
                    ids = [message.message_id for message in due]
                    settled = set(ids) - self.store.lock_held(ids)
                    if settled:
                        forget_held_ids(self.state, settled)
                    self._learn_flags(message.sender for message in due
                                      if message.message_id not in settled)
                released = release(self.state, self.store, now=now)
                for item in released:
                    message = item.message
                    self.store.record_decision(message.message_id, item.decision, now=now)
                    if item.decision.action is not Action.DEFER:
                        self.own_released.add(message.message_id)
                    if item.decision.is_reply and self._enqueue(
                        message.message_id, message.sender, message.to, now=now
                    ):
                        queued += 1
        except BaseException as exc:
            self._failed(exc)
            raise
        return released, queued

    # -- operator controls -------------------------------------------------------------

    def refresh(self, *, now: float, force: bool = False) -> bool:
        """Pick up controls and caps changed by any process; sync budget pacing. True if changed."""
        changed = self._sync_controls(now=now, force=force)
        if not self.stale:  # (a stale memory is rebuilt from the store before it decides)
            try:  # before the refunds: one may be of these replies
                self._fold_others(now=now)
            except BaseException:
                # read past but not folded (a database error between its reads): rebuilt
                # from the store, as after a failed write, rather than missed for good
                self.stale = True
                raise
        # Any process's outbox may settle a reply this process admitted: a refund recorded
        # by another one must free the sender in this memory too, or it is dropped as
        # sender_limit here (for the limit's window, 30 days) until a restart. Each refund
        # is read once, by its number (not its time: the refunding process's clock); this
        # process's own, already applied here, are read too and change nothing more.
        self.store.number_refunds()  # those an older process wrote (a rolling upgrade)
        while True:
            page = self.store.refunds_after(self.refunds_seen, limit=REFUND_PAGE)
            for seq, message_id, sender in page:
                record_refund(self.state, message_id, 0, sender=sender)  # money: seed_spend
                self.refunds_seen = seq
            if len(page) < REFUND_PAGE:
                break
        pace_from_store(self.state, self.store, now=now)
        return changed

    def forget_raiders(self, *, now: float) -> int:
        """Drop from memory the raiders silent for the sender window (30 days by default);
        how many. Their flags stay in the store, and ``_learn_flags`` gives a flag back
        before that sender's next message is decided: memory holds the recent raiders,
        not every raider the number ever had."""
        return forget_raiders(self.state, now=now)

    # -- retention ----------------------------------------------------------------------

    def purge(self, *, before: float) -> tuple[int, int]:
        """Erase the bodies of messages received before ``before``, in the store and in the
        policy's memory: (bodies erased, distinct texts forgotten)."""
        erased = self.store.purge_bodies(before)
        return erased, forget_texts(self.state, before=before)

    # -- outbox outcomes ----------------------------------------------------------------

    def claim(self, *, now: float, limit: int, owner: str, lease_s: float
              ) -> tuple[list[OutboxItem], list[OutboxItem]]:
        """Lease due replies to ``owner`` (``SqlStore.claim_outbox``): (those to send, those
        cancelled). A reply to a number blocked since it was queued is cancelled instead
        of sent, and refunded: blocking a raid's numbers stops the replies already queued
        to them. So is a reply to a number that opted out since: an opt-out cancels the
        queued replies at once, but not one a sender had claimed (a process killed before
        the call, a reply sent back to the queue by a 429 or by the look-up). The controls
        are read first if any process changed them."""
        with self.store.transaction():
            self._sync_controls(now=now)
            items = self.store.claim_outbox(now=now, limit=limit, owner=owner, lease_s=lease_s)
            controls = self.state.controls
            blocked = [item for item in items if controls.is_blocked(item.recipient)]
            opted_out = self.store.opted_out_among(
                item.recipient for item in items if item not in blocked)
            cancelled = blocked + [item for item in items if item.recipient in opted_out]
            for item in cancelled:
                self.store.finish_outbox(item.id, FAILED, now=now, error=(
                    BLOCKED_BY_OPERATOR if item in blocked else OPTED_OUT))
                self.store.settle(item.message_sid, billed=False, now=now)
        if not cancelled:
            return items, []
        self._refunded(cancelled)
        return [item for item in items if item not in cancelled], cancelled

    def cancel_replies_to(self, patterns: Sequence[str], *, now: float,
                          limit: int | None = None) -> list[OutboxItem]:
        """Cancel and refund the queued replies (not yet claimed by a sender) to the numbers
        ``patterns`` match, the ``limit`` oldest if given: an operator just blocked them."""
        items = self.store.cancel_pending_to(patterns, now=now, error=BLOCKED_BY_OPERATOR,
                                             limit=limit)  # its own transaction, committed
        self._refunded(items)
        return items

    def _refunded(self, items: list[OutboxItem]) -> None:
        """Committed refunds of ``items`` reach the policy's pacing and sender limits."""
        for item in items:
            record_refund(self.state, item.message_sid, item.cost_micros, sender=item.recipient)

    def refund(self, item: OutboxItem, *, now: float | None = None) -> None:
        """A reply that surely was not sent: give its money back to the ledger and the pacing,
        and stop counting it toward its sender's limit in both (it never reached them)."""
        with self.store.transaction():
            self.store.settle(item.message_sid, billed=False, now=now)
        # Replies only ever go to the inbound message's sender: the recipient is the sender.
        record_refund(self.state, item.message_sid, item.cost_micros, sender=item.recipient)
