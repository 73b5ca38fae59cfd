"""A refunded reply (the provider surely did not send it) does not count toward the
sender limit: in the policy's memory, in the simulator, and after a responder restart.

Before this was fixed, every genuine sender whose reply failed during an outage was
dropped as ``sender_limit`` for 30 days and never answered. The ledger side of the
promise is in ``tests/test_store_contract.py``; the live service's in
``tests/test_responder_app.py``. Also here, with several processes on one database: what
one of them records (a refund, a block, a raid flag), the others act on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ledger_contract import NOW, StoreFactory

from responder.policy import (
    Action,
    Controls,
    MemoryLedger,
    Message,
    PolicyConfig,
    PolicyState,
    admit,
    restore_flag,
)
from responder.policy.config import SenderLimit
from responder.policy.engine import record_refund
from responder.policy.ledger import ReserveRequest
from responder.recovery import rebuild_state
from responder.store import FAILED, SENT, Inbound, OutboxItem, SqlStore, open_store
from sim.model import RaidModel
from sim.provider import Fault, ProviderModel
from sim.trace import TraceRecord

if TYPE_CHECKING:
    from responder.service import Responder

TO = "+33644649021"
ALICE = "+33612345678"
BOB = "+33698765432"
BODY = "Salut, on s'est vus samedi au bar"


def msg(mid: str, sender: str, t: float) -> Message:
    return Message(mid, sender, TO, BODY, t)


def decided(state: PolicyState, ledger: MemoryLedger, mid: str, sender: str,
            t: float) -> tuple[Action, str]:
    decision = admit(state, ledger, msg(mid, sender, t), now=t)
    return decision.action, decision.rule


# -- the policy ---------------------------------------------------------------------------


def test_a_refunded_reply_frees_its_sender_only() -> None:
    """After ``record_refund`` the sender may be answered again; another sender's reply
    still counts, and the refunded message itself is never decided twice."""
    state, ledger = PolicyState(), MemoryLedger()
    cost = state.reply_cost_micros
    assert decided(state, ledger, "SM1", ALICE, 0.0) == (Action.REPLY, "first_contact")
    assert decided(state, ledger, "SM2", BOB, 1.0) == (Action.REPLY, "first_contact")
    assert decided(state, ledger, "SM3", ALICE, 60.0) == (Action.DROP, "sender_limit")
    ledger.settle("SM1", billed=False, now=100.0)
    record_refund(state, "SM1", cost, sender=ALICE)
    assert state.spent_micros == cost  # Bob's reply only
    assert state.senders[ALICE].replies == ()
    assert decided(state, ledger, "SM1", ALICE, 200.0) == (Action.DROP, "duplicate_id")
    assert decided(state, ledger, "SM4", ALICE, 300.0) == (Action.REPLY, "first_contact")
    assert decided(state, ledger, "SM5", BOB, 300.0) == (Action.DROP, "sender_limit")
    assert decided(state, ledger, "SM6", ALICE, 400.0) == (Action.DROP, "sender_limit")


def test_record_refund_removes_exactly_that_reply() -> None:
    """With two replies allowed, refunding the first removes the first, not the latest
    nor both; refunding again, or an id the policy never replied to, changes nothing."""
    config = replace(PolicyConfig(), sender_limit=SenderLimit(replies=2))
    state, ledger = PolicyState(config), MemoryLedger()
    assert decided(state, ledger, "SM1", ALICE, 0.0)[0] is Action.REPLY
    assert decided(state, ledger, "SM2", ALICE, 10.0)[0] is Action.REPLY
    alice = state.senders[ALICE]
    assert (alice.replies, alice.reply_ids) == ((0.0, 10.0), ("SM1", "SM2"))
    for _ in range(2):
        record_refund(state, "SM1", 0, sender=ALICE)
    record_refund(state, "SM9", 0, sender=ALICE)
    record_refund(state, "SM2", 0, sender=BOB)  # wrong sender: not Bob's reply
    record_refund(state, "SM2", 0, sender="+33600000000")  # a sender the policy never saw
    assert (alice.replies, alice.reply_ids) == ((10.0,), ("SM2",))
    ledger.settle("SM1", billed=False)
    assert decided(state, ledger, "SM3", ALICE, 20.0)[0] is Action.REPLY
    assert decided(state, ledger, "SM4", ALICE, 30.0) == (Action.DROP, "sender_limit")


def test_replies_leave_the_window_with_their_ids() -> None:
    """Times and ids age out together, so a later refund still finds the right reply."""
    config = replace(PolicyConfig(), sender_limit=SenderLimit(replies=2, window_s=100.0))
    state, ledger = PolicyState(config), MemoryLedger()
    decided(state, ledger, "SM1", ALICE, 0.0)
    decided(state, ledger, "SM2", ALICE, 90.0)
    assert decided(state, ledger, "SM3", ALICE, 150.0)[0] is Action.REPLY  # SM1 aged out
    alice = state.senders[ALICE]
    assert (alice.replies, alice.reply_ids) == ((90.0, 150.0), ("SM2", "SM3"))
    record_refund(state, "SM3", 0, sender=ALICE)
    assert (alice.replies, alice.reply_ids) == ((90.0,), ("SM2",))


# -- the simulator ----------------------------------------------------------------------


def test_a_sender_whose_reply_failed_in_an_outage_is_answered_later() -> None:
    """The reported defect: an outage [100 s, 1100 s); one legit sender writes at 150 s
    (all 8 attempts fail to connect: refunded) and again at 2000 s: answered then."""
    provider = ProviderModel(latency_median_s=2.0, latency_p95_s=2.0, error_rate=0.0,
                             rate_limit_rate=0.0, timeout_rate=0.0, reject_rate=0.0)
    records = [TraceRecord(t, ALICE, TO, BODY, "legit", f"SM{i}")
               for i, t in enumerate((150.0, 2000.0))]
    sim = RaidModel(PolicyConfig(), provider=provider,
                    faults=(Fault("outage", 100.0, 1100.0, 1.0),), record_decisions=True)
    outcome = sim.run(records)
    assert outcome.decisions == [("SM0", "reply", "first_contact"),
                                 ("SM1", "reply", "first_contact")]
    m = sim.metrics
    assert m.provider_errors["connect_error"] == 8 and m.rejected == 1
    assert m.billed_micros == PolicyConfig().reply_cost_micros  # the second reply only
    assert m.legit_latencies == [0.0]  # sent as soon as it came, at 2000 s
    assert sim.ledger.spent_micros() == PolicyConfig().reply_cost_micros
    assert sim.state.senders[ALICE].reply_ids == ("SM1",)


# -- a restart of the responder ---------------------------------------------------------


def _reply(store: SqlStore, state: PolicyState, sid: str, sender: str, t: float) -> None:
    """What the webhook path stores for a message answered at ``t``."""
    assert store.insert_inbound(Inbound(sid, sender, TO, BODY, t))
    decision = admit(state, store, msg(sid, sender, t), now=t)
    store.record_decision(sid, decision, now=t, first=True)
    assert decision.is_reply, decision
    assert store.enqueue_reply(sid, sender, TO, "reply", state.reply_cost_micros, now=t)


@pytest.mark.parametrize("refund_at", [NOW + 30.0, None])
def test_a_restart_does_not_bring_a_refunded_reply_back(store: SqlStore,
                                                        refund_at: float | None) -> None:
    """The policy rebuilt from the store knows Alice's reply was refunded (at its time, or
    at its reservation's when the time is unknown) and Bob's was not."""
    config = PolicyConfig()
    live = PolicyState(config)
    _reply(store, live, "SM1", ALICE, NOW)
    _reply(store, live, "SM2", BOB, NOW + 1.0)
    store.settle("SM1", billed=False, now=refund_at)
    record_refund(live, "SM1", live.reply_cost_micros, sender=ALICE)
    state, replayed = rebuild_state(store, config, Controls(), now=NOW + 60.0)
    assert replayed == 2
    assert (state.senders[ALICE].replies, state.senders[ALICE].reply_ids) == ((), ())
    assert state.senders[BOB].reply_ids == live.senders[BOB].reply_ids == ("SM2",)
    assert state.spent_micros == store.spent_micros() == config.reply_cost_micros
    later = NOW + 120.0
    assert admit(state, store, msg("SM3", ALICE, later), now=later).rule == "first_contact"
    assert admit(state, store, msg("SM4", BOB, later), now=later).rule == "sender_limit"


def test_a_refund_is_replayed_at_its_time(store: SqlStore) -> None:
    """Alice's message between her reply and its refund was dropped as sender_limit live;
    the replay gives the refund at the same point, so it rebuilds the same memory and Alice's
    message after the refund (answered live) is answered in the replay too."""
    config = PolicyConfig()
    live = PolicyState(config)
    _reply(store, live, "SM1", ALICE, NOW)
    assert store.insert_inbound(Inbound("SM2", ALICE, TO, BODY, NOW + 10.0))
    dropped = admit(live, store, msg("SM2", ALICE, NOW + 10.0), now=NOW + 10.0)
    store.record_decision("SM2", dropped, now=NOW + 10.0, first=True)
    assert dropped.rule == "sender_limit"
    store.settle("SM1", billed=False, now=NOW + 20.0)
    record_refund(live, "SM1", live.reply_cost_micros, sender=ALICE)
    _reply(store, live, "SM3", ALICE, NOW + 30.0)
    state, _ = rebuild_state(store, config, Controls(), now=NOW + 60.0)
    alice = state.senders[ALICE]
    assert (alice.replies, alice.reply_ids) == ((NOW + 30.0,), ("SM3",))
    assert alice.flag is None and alice.count == live.senders[ALICE].count == 3


def test_a_refund_another_process_recorded_frees_the_sender_here(
    tmp_path: Path, store_url: str,
) -> None:
    """Any instance's outbox may settle a reply another instance admitted. The refund
    freed the sender only in the memory of the process that recorded it: the instance
    that admitted the reply dropped the sender's next message as ``sender_limit`` (for
    30 days, until it restarted). Its policy tick now reads the refunds of every process."""
    from responder_support import PLAIN_POLICY, base_env

    from responder.config import load_settings
    from responder.service import Responder

    policy = tmp_path / "plain.toml"
    policy.write_text(PLAIN_POLICY)
    settings = load_settings(base_env(RAIDSIM_DATABASE_URL=store_url,
                                      RAIDSIM_POLICY_FILE=str(policy)))
    a_store, b_store = open_store(store_url), open_store(store_url)
    a, b = Responder(settings, a_store), Responder(settings, b_store)
    try:
        a.start(now=NOW)
        b.start(now=NOW)
        first = a.accept(Inbound("SM1", ALICE, TO, BODY, NOW + 1.0), now=NOW + 1.0)
        assert first.decision is not None and first.decision.is_reply
        [item] = b_store.claim_outbox(now=NOW + 2.0, limit=5, owner="b", lease_s=30)
        b_store.finish_outbox(item.id, FAILED, now=NOW + 3.0, error="21610")
        b.refund(item, now=NOW + 3.0)  # B's outbox: the provider refused it for good
        a.refresh(now=NOW + 4.0)  # A's policy tick
        again = a.accept(Inbound("SM2", ALICE, TO, BODY, NOW + 5.0), now=NOW + 5.0)
        assert again.decision is not None
        assert (again.decision.action, again.decision.rule) == (Action.REPLY, "first_contact")
        # the refund is not read again: SM2 counts
        a.refresh(now=NOW + 6.0)
        third = a.accept(Inbound("SM3", ALICE, TO, BODY, NOW + 7.0), now=NOW + 7.0)
        assert third.decision is not None and third.decision.rule == "sender_limit"
    finally:
        a_store.close()
        b_store.close()


@contextmanager
def _instances(tmp_path: Path, store_url: str, count: int) -> Iterator[list[Responder]]:
    """``count`` started responders sharing the database at ``store_url`` (processes),
    their stores closed on exit."""
    from responder_support import PLAIN_POLICY, base_env, responders

    from responder.config import load_settings

    policy = tmp_path / "plain.toml"
    policy.write_text(PLAIN_POLICY)
    settings = load_settings(base_env(RAIDSIM_DATABASE_URL=store_url,
                                      RAIDSIM_POLICY_FILE=str(policy)))
    with responders(settings, store_url, count, NOW) as cores:
        yield cores


def _refund_next(core: Responder, *, now: float) -> OutboxItem:
    """``core``'s outbox claims the next reply, the provider refuses it for good: refunded,
    at ``now`` by ``core``'s clock."""
    [item] = core.store.claim_outbox(now=NOW + 60.0, limit=1, owner="w", lease_s=30)
    core.store.finish_outbox(item.id, FAILED, now=now, error="21610")
    core.refund(item, now=now)
    return item


def _answer(core: Responder, sid: str, sender: str, t: float) -> tuple[Action, str]:
    accepted = core.accept(Inbound(sid, sender, TO, BODY, t), now=t)
    assert accepted.decision is not None
    return accepted.decision.action, accepted.decision.rule


def test_a_reply_to_a_number_blocked_after_it_was_queued_is_cancelled_when_claimed(
    tmp_path: Path, store_url: str,
) -> None:
    """A block added while a reply to that number waits in the outbox (by another
    process, or just after the admin call's own sweep) cancels it when a sender claims
    it: never sent, refunded in the ledger and in the claiming process's memory. The
    other replies of the claim go."""
    with _instances(tmp_path, store_url, 2) as (admitter, other):
        cost = admitter.state.reply_cost_micros
        assert _answer(admitter, "SM1", ALICE, NOW + 1.0) == (Action.REPLY, "first_contact")
        assert _answer(admitter, "SM2", BOB, NOW + 2.0) == (Action.REPLY, "first_contact")
        other.store.add_number_rule("block", ALICE[:8], now=NOW + 3.0)
        sent, cancelled = admitter.claim(now=NOW + 4.0, limit=5, owner="w", lease_s=30)
        assert [i.message_sid for i in sent] == ["SM2"]
        assert [i.message_sid for i in cancelled] == ["SM1"]
        assert admitter.store.spent_micros() == cost
        assert admitter.state.senders[ALICE].replies == ()
        rows = {r["message_sid"]: r for r in admitter.store.outbox_rows()}
        assert (rows["SM1"]["status"], rows["SM2"]["status"]) == ("failed", "sending")
        assert rows["SM1"]["error"].startswith("cancelled")
        assert admitter.claim(now=NOW + 5.0, limit=5, owner="w", lease_s=30) == ([], [])


def test_a_sender_one_process_flagged_is_not_answered_by_another(
    tmp_path: Path, store_url: str,
) -> None:
    """Each process's policy remembers what it saw: a raider flagged by one process was a
    stranger to the next one it reached, and was answered there (a paid reply). A process
    now learns, from the store, the flags others recorded for the senders it decides (in
    a batch, alone, or as a held reply comes due), as one process would have them; the
    allow list still overrides a flag, and other senders are answered as before."""
    from responder.policy import Decision
    from responder.policy.engine import restore_held

    carol, dave = "+33611223344", "+33655667788"
    with _instances(tmp_path, store_url, 2) as (flagger, other):
        # a reply the other process holds for Dave (a surge hold, as its policy decided)
        held = Message("SMheld", dave, TO, BODY, NOW)
        other.store.insert_inbound(Inbound("SMheld", dave, TO, BODY, NOW))
        other.store.record_decision("SMheld", Decision.defer("surge_hold", NOW + 10.0),
                                    now=NOW, first=True)
        restore_held(other.state, held, until=NOW + 10.0, rule="surge_hold")
        # the flagger's decisions, as its policy recorded them (the plain policy runs no
        # raid rule here)
        for k, number in enumerate((ALICE, carol, dave)):
            flagger.store.insert_inbound(Inbound(f"SMraid{k}", number, TO, "lol", NOW + 1.0))
            flagger.store.record_decision(f"SMraid{k}", Decision.drop("raid_template"),
                                          now=NOW + 1.0, first=True)
        [batch] = other.accept_many([Inbound("SM1", ALICE, TO, BODY, NOW + 2.0)])
        assert batch.decision is not None  # type: ignore[union-attr]
        assert batch.decision.rule == "flagged_sender"  # type: ignore[union-attr]
        assert _answer(other, "SM2", carol, NOW + 3.0) == (Action.DROP, "flagged_sender")
        assert _answer(other, "SM3", BOB, NOW + 4.0) == (Action.REPLY, "first_contact")
        released, queued = other.release_due(now=NOW + 10.0)
        assert [(r.message.message_id, r.decision.rule) for r in released] == [
            ("SMheld", "flagged_sender")] and queued == 0
        other.store.add_number_rule("allow", ALICE, now=NOW + 11.0)
        assert _answer(other, "SM4", ALICE, NOW + 12.0) == (Action.REPLY, "allowlist")
        assert other.store.spent_micros() == 2 * other.state.reply_cost_micros


def test_a_restart_loads_the_old_flags_of_the_horizons_senders_only(
    tmp_path: Path, store_url: str,
) -> None:
    """A restart replays its horizon (3 days here). A raider flagged before it who wrote
    within it is flagged before the replay, so the replay drops its messages as the live
    process did; one who did not is not loaded (the memory would otherwise hold every
    raider the number ever had), and is judged a raider from the store when it writes."""
    from responder.policy import Decision

    carol = "+33611223344"
    with _instances(tmp_path, store_url, 1) as (first,):
        store = first.store
        for sid, number, t, rule in (("SMa", ALICE, NOW - 10 * 86400.0, "raid_template"),
                                     ("SMb", carol, NOW - 10 * 86400.0, "raid_template"),
                                     ("SMc", ALICE, NOW - 86400.0, "flagged_sender")):
            store.insert_inbound(Inbound(sid, number, TO, "lol", t))
            store.record_decision(sid, Decision.drop(rule), now=t, first=True)
    with _instances(tmp_path, store_url, 1) as (restarted,):
        assert restarted.state.senders[ALICE].flag is not None
        assert carol not in restarted.state.senders
        assert _answer(restarted, "SM1", carol, NOW + 1.0) == (Action.DROP, "flagged_sender")
        assert _answer(restarted, "SM2", BOB, NOW + 2.0) == (Action.REPLY, "first_contact")


def test_a_raider_long_silent_leaves_memory_and_is_still_dropped_when_it_writes(
    tmp_path: Path, store_url: str,
) -> None:
    """The policy's pruning keeps every flagged sender, so a responder running for months
    held every raider the number ever had. The hourly ``forget_raiders`` drops those
    silent for the sender window (30 days); the store keeps their flags, and one that
    writes again is still dropped as ``flagged_sender``, at no cost."""
    from responder.policy import Decision

    day = 86400.0
    with _instances(tmp_path, store_url, 1) as (core,):
        core.store.insert_inbound(Inbound("SMraid", ALICE, TO, "lol", NOW))
        core.store.record_decision("SMraid", Decision.drop("raid_template"), now=NOW,
                                   first=True)
        restore_flag(core.state, ALICE, at=NOW)  # as the decision flagged it in memory
        assert _answer(core, "SM1", BOB, NOW + 1.0) == (Action.REPLY, "first_contact")
        assert core.forget_raiders(now=NOW + 29 * day) == 0
        assert core.state.senders[ALICE].flag is not None
        assert core.forget_raiders(now=NOW + 31 * day) == 1
        assert ALICE not in core.state.senders and BOB in core.state.senders
        assert _answer(core, "SM2", ALICE, NOW + 31 * day) == (Action.DROP, "flagged_sender")
        assert core.store.spent_micros() == core.state.reply_cost_micros  # Bob's reply only


def test_a_refund_stamped_by_a_clock_far_ahead_hides_no_later_refund(
    tmp_path: Path, store_url: str,
) -> None:
    """An instance whose clock ran an hour ahead refunded Alice's reply; then one with a
    right clock refunded Bob's. The policy tick read refunds by time, from the latest it
    had seen less a minute: after the first, it never saw the second, and Bob was dropped
    as sender_limit for 30 days. Refunds are now read by number, whatever their time."""
    with _instances(tmp_path, store_url, 3) as (admitter, ahead, right):
        assert _answer(admitter, "SM1", ALICE, NOW + 1.0)[0] is Action.REPLY
        assert _answer(admitter, "SM2", BOB, NOW + 1.5)[0] is Action.REPLY
        assert _refund_next(ahead, now=NOW + 3600.0 + 3.0).message_sid == "SM1"
        admitter.refresh(now=NOW + 4.0)
        assert _refund_next(right, now=NOW + 5.0).message_sid == "SM2"
        admitter.refresh(now=NOW + 6.0)
        assert _answer(admitter, "SM3", ALICE, NOW + 7.0) == (Action.REPLY, "first_contact")
        assert _answer(admitter, "SM4", BOB, NOW + 7.0) == (Action.REPLY, "first_contact")


def test_a_refund_an_older_process_wrote_reaches_the_upgraded_ones(
    tmp_path: Path, store_url: str,
) -> None:
    """During a rolling upgrade to migration 0007, a process still running the older code
    refunds a reply without a number; the upgraded processes read refunds by number, so
    they kept dropping that sender as sender_limit until they restarted. Their policy tick
    now numbers such a refund (under the budget lock), and every process reads it."""
    with _instances(tmp_path, store_url, 2) as (admitter, other):
        assert _answer(admitter, "SM1", ALICE, NOW + 1.0)[0] is Action.REPLY
        assert _answer(admitter, "SM2", BOB, NOW + 1.5)[0] is Action.REPLY
        old = other.store  # what settle did before 0007: refunded, no number
        with old.transaction():
            old._execute("UPDATE reservations SET cost_micros = 0, refunded = 1,"
                         " refunded_at = ? WHERE message_id = ?", (NOW + 3.0, "SM1"))
        before = old.last_refund_seq()
        admitter.refresh(now=NOW + 4.0)  # numbers it, then reads it
        assert _answer(admitter, "SM3", ALICE, NOW + 5.0) == (Action.REPLY, "first_contact")
        assert old.last_refund_seq() == before + 1
        assert old.refunds_after(before) == [(before + 1, "SM1", ALICE)]
        other.refresh(now=NOW + 6.0)  # numbered once: the other process reads the same
        assert other.store.number_refunds() == 0
        assert _answer(other, "SM4", BOB, NOW + 7.0) == (Action.DROP, "sender_limit")


def test_the_policy_tick_reads_each_refund_once(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each tick read the last minute of refunds again (60 x N rows a tick when the
    provider refuses N replies a second). Now a tick reads only the refunds numbered after
    the last it saw: each one once, over pages when there are many."""
    import responder.service

    monkeypatch.setattr(responder.service, "REFUND_PAGE", 2, raising=False)
    with _instances(tmp_path, store_url, 2) as (admitter, other):
        read: list[str] = []
        real_all = admitter.store._all

        def counting_all(sql: str, params: Sequence[Any] = ()) -> list[Any]:
            rows = real_all(sql, params)
            if "FROM reservations" in sql:  # the refunds a tick reads
                read.extend(str(value) for row in rows for value in row if value in sids)
            return rows

        sids = [f"SM{k}" for k in range(1, 6)]
        monkeypatch.setattr(admitter.store, "_all", counting_all)
        senders = [f"+336100000{k:02d}" for k in range(len(sids))]
        for k, (sid, sender) in enumerate(zip(sids, senders, strict=True)):
            assert _answer(admitter, sid, sender, NOW + 1.0 + k)[0] is Action.REPLY
        _refund_next(other, now=NOW + 10.0)
        admitter.refresh(now=NOW + 11.0)
        assert read == ["SM1"]
        admitter.refresh(now=NOW + 12.0)
        assert read == ["SM1"]  # not again
        for t in (13.0, 13.0, 14.0, 15.0):  # more than a page
            _refund_next(other, now=NOW + t)
        admitter.refresh(now=NOW + 16.0)  # one tick reads every page
        assert read == sids
        admitter.refresh(now=NOW + 17.0)
        assert read == sids
        for k, sender in enumerate(senders):
            assert _answer(admitter, f"SM{k}b", sender, NOW + 20.0)[1] == "first_contact"


# -- migration 0003 on a database that already had refunds -------------------------------


def test_migration_0003_marks_the_refunds_made_before_it(store_url: str) -> None:
    """A reply refunded before 0003 (its outbox row 'failed', its cost set to 0) stops
    counting for its sender once migrated, refunded at the time the outbox recorded; a free
    reply (cost 0, sent) still counts: cost 0 is not what marks a refund."""
    old = open_store(store_url)
    try:
        old._migrations = [m for m in old._migrations if m.version <= 2]
        assert old.migrate(now=NOW) == [1, 2]
        for sid, sender in (("SM1", ALICE), ("SM2", BOB)):
            old._execute(
                "INSERT INTO reservations (message_id, sender, cost_micros, hour, reserved_at)"
                " VALUES (?, ?, 0, 0, ?)", (sid, sender, NOW))
            assert old.enqueue_reply(sid, sender, TO, "reply", 0, now=NOW)
        [first, second] = old.claim_outbox(now=NOW, limit=2, owner="w", lease_s=60.0)
        old.finish_outbox(first.id, FAILED, now=NOW + 40.0)
        old.finish_outbox(second.id, SENT, now=NOW + 41.0)
    finally:
        old.close()
    store = open_store(store_url)
    try:
        assert store.migrate(now=NOW) == list(range(3, store.latest_version + 1))
        assert store.refunds(["SM1", "SM2", "SM9"]) == [("SM1", ALICE, NOW + 40.0)]
        assert store.reservation_count() == 1
        limit = PolicyConfig().sender_limit
        for sid, sender, expected in (("SM3", ALICE, "ok"), ("SM4", BOB, "sender_limit")):
            status = store.reserve(_request(sid, sender, limit))
            assert str(status) == expected
    finally:
        store.close()


def _request(sid: str, sender: str, limit: SenderLimit) -> ReserveRequest:
    return ReserveRequest(sid, sender, 160_000, NOW + 60.0, sender_limit=limit.replies,
                          sender_window_s=limit.window_s)


# -- refund numbers (migration 0007) -----------------------------------------------------


def test_migration_0007_numbers_the_refunds_made_before_it(store_url: str) -> None:
    """Refunds recorded at version 6 are numbered in the order they were recorded (by
    time, then message id; one of unknown time at its reservation's), the counter starts
    after them, and a reply not refunded gets no number."""
    old = open_store(store_url)
    try:
        old._migrations = [m for m in old._migrations if m.version <= 6]
        assert old.migrate(now=NOW) == [1, 2, 3, 4, 5, 6]
        for sid, sender, reserved_at, refunded, refunded_at in (
            ("SM1", ALICE, NOW, 1, NOW + 50.0),
            ("SM2", BOB, NOW + 1.0, 1, NOW + 20.0),
            ("SM3", ALICE, NOW + 2.0, 0, None),
            ("SM4", BOB, NOW + 3.0, 1, NOW + 20.0),  # the same time as SM2: after it
            ("SM5", ALICE, NOW + 30.0, 1, None),  # refunded before 0003: time unknown
        ):
            old._execute(
                "INSERT INTO reservations (message_id, sender, cost_micros, hour, reserved_at,"
                " refunded, refunded_at) VALUES (?, ?, 0, 0, ?, ?, ?)",
                (sid, sender, reserved_at, refunded, refunded_at))
    finally:
        old.close()
    store = open_store(store_url)
    try:
        assert store.migrate(now=NOW) == list(range(7, store.latest_version + 1))
        assert store.refunds_after(0) == [(1, "SM2", BOB), (2, "SM4", BOB),
                                          (3, "SM5", ALICE), (4, "SM1", ALICE)]
        assert store.last_refund_seq() == 4
        assert store.refunds_after(2) == [(3, "SM5", ALICE), (4, "SM1", ALICE)]
        store.settle("SM3", billed=False, now=NOW + 60.0)
        assert store.last_refund_seq() == 5
        assert store.refunds_after(4) == [(5, "SM3", ALICE)]
        store.settle("SM3", billed=False, now=NOW + 61.0)  # settled once: no new number
        assert store.last_refund_seq() == 5
        assert store.refunds_after(0, limit=2) == [(1, "SM2", BOB), (2, "SM4", BOB)]
    finally:
        store.close()


def _reserved(store: SqlStore, count: int) -> list[str]:
    sids = [f"SM{k:03d}" for k in range(count)]
    for k, sid in enumerate(sids):
        request = ReserveRequest(sid, f"+336200{k:05d}", 160_000, NOW + k)
        assert str(store.reserve(request)) == "ok"
    return sids


def test_concurrent_refunds_are_numbered_once_each_and_read_without_a_gap(
    store_factory: StoreFactory,
) -> None:
    """Four connections (processes) refund at once while a fifth reads the refunds after
    the last number it saw, again and again: no two refunds share a number, and a reader
    never sees a number before every lower one (it would skip that one for good)."""
    writers, per_writer = 4, 25
    sids = _reserved(store_factory(), writers * per_writer)
    stores = [store_factory() for _ in range(writers)]
    reader = store_factory()
    barrier = threading.Barrier(writers + 1)
    done = threading.Event()
    errors: list[BaseException] = []

    def refund(index: int) -> None:
        try:
            barrier.wait()
            for sid in sids[index::writers]:
                stores[index].settle(sid, billed=False, now=NOW + 100.0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    seen: list[tuple[int, str, str]] = []
    try:
        barrier.wait()
        while not done.is_set():
            if not any(t.is_alive() for t in threads):
                done.set()  # one more read after the last refund committed
            page = reader.refunds_after(seen[-1][0] if seen else 0)
            numbers = [seq for seq, _, _ in page]
            first = seen[-1][0] + 1 if seen else 1
            assert numbers == list(range(first, first + len(page))), (first, numbers)
            seen.extend(page)
    finally:  # the stores are closed after the test: not while a writer uses one
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    assert [seq for seq, _, _ in seen] == list(range(1, len(sids) + 1))
    assert sorted(sid for _, sid, _ in seen) == sids
    assert reader.last_refund_seq() == len(sids)


def test_a_refund_waiting_for_the_lock_is_numbered_after_the_one_holding_it(
    store_factory: StoreFactory,
) -> None:
    """A refund not yet committed holds the budget lock with its number: another one waits
    for it (it cannot take the next number and commit first), and a reader sees neither
    until the first commits. A number visible before a lower one still to commit (as a
    PostgreSQL sequence gives them) would be skipped by every reader."""
    first, second, reader = store_factory(), store_factory(), store_factory()
    _reserved(first, 2)
    waiting = threading.Thread(
        target=lambda: second.settle("SM001", billed=False, now=NOW + 10.0))
    try:
        with first.transaction():
            first.settle("SM000", billed=False, now=NOW + 20.0)
            waiting.start()
            waiting.join(timeout=0.5)
            assert waiting.is_alive()  # waits for the lock
            assert reader.refunds_after(0) == []
            assert reader.last_refund_seq() == 0
    finally:  # the lock is released: the waiting refund goes on, and ends
        if waiting.ident is not None:
            waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert reader.refunds_after(0) == [(1, "SM000", "+33620000000"),
                                       (2, "SM001", "+33620000001")]


def test_the_rebuilt_policy_knows_when_its_number_started(store: SqlStore) -> None:
    """The replay covers the last few days only, but the habit's first day (learnt from
    without question) is the number's, not the replay window's: rebuilt after a week, the
    policy still refuses an hour whose reusers jump, as it did before the restart."""
    assert store.first_received_at() is None
    config = PolicyConfig()
    live = PolicyState(config)
    started = NOW - 7 * 86400.0
    _reply(store, live, "SM1", ALICE, started)
    _reply(store, live, "SM2", BOB, NOW)
    assert store.first_received_at() == started
    state, replayed = rebuild_state(store, config, Controls(), now=NOW + 60.0)
    assert replayed == 1  # Alice's week-old message is past the replay horizon
    assert state.habit_since == started - started % 3600.0
    assert state.habit_since == live.habit_since
