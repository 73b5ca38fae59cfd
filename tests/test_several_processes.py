"""Several responder processes on one database decide as one memory would.

Each process decides the share of the webhooks a load balancer gives it. Its policy's
memory (surge baseline, templates, phrases, number blocks, senders) used to hold that
share only: with three processes, each saw a third of a raid and its templates got hot
three times later. On the 2017 raid's two days (Sunday and Monday), three processes
spent EUR 502.56 (1,509 replies to raiders) where one spends EUR 391.68 (816). Each
process now folds into its memory the messages the others stored
(``Responder._fold_others``). ``python tests/test_several_processes.py`` prints the
figures.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from ledger_contract import NOW, store_url  # noqa: F401  (fixture)
from responder_support import PLAIN_POLICY, base_env
from responder_support import responders as processes

from responder.config import Settings, load_settings
from responder.service import GAP_WAIT_S
from responder.store import Inbound
from sim.scenario import load_scenario
from sim.traffic import iter_generate

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400.0
TO = "+33644649021"
TICK_S = 30.0


def plain(tmp_path: Path, url: str, extra: str = "") -> Settings:
    policy = tmp_path / "plain.toml"
    policy.write_text(PLAIN_POLICY + extra)
    return load_settings(base_env(RAIDSIM_DATABASE_URL=url, RAIDSIM_POLICY_FILE=str(policy)))


def serve(url: str, count: int, days: tuple[float, float]) -> tuple[int, int, int]:
    """The 2017 raid's traffic between ``days`` (from its first day's midnight) through
    ``count`` processes, each webhook to one of them at random, each process's policy
    clock ticking every ``TICK_S`` (every second in ``raidsim serve``; longer here, for the
    round trips of three processes' ticks: a message is decided on a memory folded to
    date in any case): (spend in micro-euros, replies to raiders, replies to people)."""
    scenario = load_scenario(ROOT / "scenarios" / "anti-relous-2017.toml")
    records = [r for r in iter_generate(scenario, scenario.seed)
               if days[0] * DAY <= r.t < days[1] * DAY]
    settings = replace(load_settings(base_env(RAIDSIM_DATABASE_URL=url)),
                       policy=scenario.policy)
    pick = random.Random(7)
    with processes(settings, url, count, records[0].t) as cores:
        ticked = records[0].t
        for record in records:
            t = record.t
            if t - ticked >= TICK_S:
                for core in cores:
                    deadline = core.next_deadline()
                    if deadline is not None and deadline <= t:
                        core.release_due(now=t)
                    core.refresh(now=t)
                ticked = t
            core = cores[pick.randrange(count)]
            core.accept(Inbound(record.message_id, record.sender, record.to, record.body, t),
                        now=t)
        end = records[-1].t + 3 * DAY  # every held reply decided
        for core in cores:
            core.release_due(now=end)
        store = cores[0].store  # (no outbox runs here: nothing is refunded)
        raid = {r.message_id for r in records if r.label == "raid"}
        replied = store.reserved_ids([r.message_id for r in records])
        return (store.spent_micros(), len(replied & raid), len(replied - raid))


@pytest.mark.parametrize(("store_url", "days"), [
    pytest.param("sqlite", (5.0, 7.0), id="sqlite-sunday-monday"),  # the whole raid
    # Monday afternoon alone (the 16:00 wave, the news surge), from an empty memory: the
    # round trips of three processes' ticks make the whole raid slow on PostgreSQL
    pytest.param("postgres", (6.5, 7.0), marks=pytest.mark.postgres,
                 id="postgres-monday-afternoon"),
], indirect=["store_url"])
def test_three_processes_defend_the_2017_raid_as_one_does(
    tmp_path: Path, store_url: str, days: tuple[float, float],  # noqa: F811
) -> None:
    """The 2017 raid through three processes: the same people answered, and no more
    spent on raiders, as through one process. Before, three spent EUR 502.56 against
    391.68 on Sunday and Monday (1,509 replies to raiders against 816), 43 % more on
    Monday afternoon alone."""
    one = serve(f"sqlite:///{tmp_path / 'one.db'}", 1, days)
    three = serve(store_url, 3, days)
    assert three[2] == one[2]
    assert three[0] <= one[0] * 1.01 and three[1] <= one[1] * 1.02, (one, three)


@pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_a_row_that_commits_after_a_later_one_is_folded_when_it_does(
    tmp_path: Path, store_url: str,  # noqa: F811
) -> None:
    """PostgreSQL numbers a row when it is written, not when its transaction commits:
    process A's message gets row 1 and commits after process B's got row 2. C folds
    row 2 first, and must still fold row 1 once it appears (the id skipped is looked
    for again), not step past it for good."""
    settings = plain(tmp_path, store_url)
    with processes(settings, store_url, 3, NOW) as (a, b, c):
        with a.store.transaction():  # (A's row alone: a reply would lock the budget row)
            a.store.insert_inbound(Inbound("SMa", "+33611000001", TO, "Bonjour", NOW + 1.0))
            b.accept(Inbound("SMb", "+33611000002", TO, "Bonjour", NOW + 2.0), now=NOW + 2.0)
            c.refresh(now=NOW + 3.0)
            assert set(c.state.senders) == {"+33611000002"}
            assert c.inbound_tail.gaps == {1: NOW + 3.0}
        c.refresh(now=NOW + 4.0)
        assert set(c.state.senders) == {"+33611000001", "+33611000002"}
        assert c.inbound_tail.gaps == {} and c.inbound_tail.last == 2
        assert c.state.seen_ids.keys() == {"SMa", "SMb"}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_id_that_never_appears_is_given_up_after_a_while(tmp_path: Path,
                                                            store_url: str) -> None:  # noqa: F811
    """An id may never appear (a PostgreSQL ``ON CONFLICT`` duplicate uses one up, a
    rolled-back batch others): it is looked for ``GAP_WAIT_S``, then forgotten."""
    settings = plain(tmp_path, store_url)
    with processes(settings, store_url, 2, NOW) as (a, b):
        a.accept(Inbound("SMa", "+33611000001", TO, "Bonjour", NOW + 1.0), now=NOW + 1.0)
        with a.store.transaction():  # a row numbered 4: 2 and 3 are never used
            a.store._execute("INSERT INTO inbound (id, message_sid, source, sender, recipient,"
                             " body, received_at) VALUES (4, 'SMd', 'twilio', '+33611000004',"
                             " ?, 'Salut', ?)", (TO, NOW + 2.0))
        b.refresh(now=NOW + 3.0)
        assert b.inbound_tail.last == 4 and b.inbound_tail.gaps == {2: NOW + 3.0, 3: NOW + 3.0}
        assert {"+33611000001", "+33611000004"} <= set(b.state.senders)
        b.refresh(now=NOW + 3.0 + GAP_WAIT_S / 2)
        assert set(b.inbound_tail.gaps) == {2, 3}
        b.refresh(now=NOW + 4.0 + GAP_WAIT_S)
        assert b.inbound_tail.gaps == {}


def test_a_reply_another_process_holds_is_held_here_too_and_settled_once(
    tmp_path: Path, store_url: str,  # noqa: F811
) -> None:
    """Under an hourly cap of one reply, A answers Alice and holds Bob's reply. B, which
    folds both, holds Bob too: Bob writing again to B is ``already_held``, as one process
    would decide. The first process to release Bob's reply settles it, the other forgets
    it: one reply."""
    settings = plain(tmp_path, store_url, '[budget]\nper_hour_eur = "0.16"\n')
    alice, bob = "+33611000001", "+33611000002"
    with processes(settings, store_url, 2, NOW) as (a, b):
        assert a.accept(Inbound("SM1", alice, TO, "Bonjour", NOW + 1.0),
                        now=NOW + 1.0).decision.rule == "first_contact"  # type: ignore[union-attr]
        held = a.accept(Inbound("SM2", bob, TO, "Bonjour", NOW + 2.0), now=NOW + 2.0)
        assert held.decision.rule == "budget_hour"  # type: ignore[union-attr]
        again = b.accept(Inbound("SM3", bob, TO, "Allô ?", NOW + 3.0), now=NOW + 3.0)
        assert again.decision.rule == "already_held"  # type: ignore[union-attr]
        assert b.state.senders[bob].held
        # each holds it until room comes, from the time it saw the message (B folded it
        # a second later)
        due = b.next_deadline()
        assert due is not None and due >= (a.next_deadline() or 0.0)
        released, queued = b.release_due(now=due)
        assert [(r.message.message_id, r.decision.rule) for r in released] == [
            ("SM2", "released")] and queued == 1
        assert a.release_due(now=due) == ([], 0) and a.next_deadline() is None
        assert a.store.reserved_ids(["SM1", "SM2", "SM3"]) == {"SM1", "SM2"}


def test_a_folded_message_of_a_forgotten_raider_is_a_raiders(tmp_path: Path,
                                                             store_url: str) -> None:  # noqa: F811
    """A forgot a raider long silent (its flag is in the store); the raider writes to B,
    which drops it as ``flagged_sender``. When A folds that message, the sender is a
    raider there too, not a new sender."""
    from responder.policy import Decision, restore_flag

    settings = plain(tmp_path, store_url)
    raider, day = "+33611000666", 86400.0
    with processes(settings, store_url, 2, NOW) as (a, b):
        a.store.insert_inbound(Inbound("SMraid", raider, TO, "lol", NOW))
        a.store.record_decision("SMraid", Decision.drop("raid_template"), now=NOW, first=True)
        a.own.add("SMraid")  # A's own message: A decided it
        restore_flag(a.state, raider, at=NOW)
        a.refresh(now=NOW + 1.0)
        assert a.forget_raiders(now=NOW + 31 * day) == 1
        back = b.accept(Inbound("SM2", raider, TO, "re", NOW + 31 * day), now=NOW + 31 * day)
        assert back.decision.rule == "flagged_sender"  # type: ignore[union-attr]
        a.refresh(now=NOW + 31 * day + 1.0)
        assert a.state.senders[raider].flag is not None


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_fold_that_fails_halfway_rebuilds_rather_than_misses(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """The fold reads the rows' ids, then their texts: a database error in between leaves
    rows read past but not folded. The memory is then rebuilt from the store before it
    decides again, as after a failed write, so those messages are not missed for good."""
    settings = plain(tmp_path, store_url)
    with processes(settings, store_url, 2, NOW) as (a, b):
        a.accept(Inbound("SM1", "+33611000001", TO, "Bonjour", NOW + 1.0), now=NOW + 1.0)

        def broken(ids: object) -> object:
            raise OSError("connection lost")

        monkeypatch.setattr(b.store, "inbound_by_ids", broken)
        with pytest.raises(OSError):
            b.refresh(now=NOW + 2.0)
        monkeypatch.undo()
        assert b.stale
        b.accept(Inbound("SM2", "+33611000002", TO, "Bonjour", NOW + 3.0), now=NOW + 3.0)
        assert {"+33611000001", "+33611000002"} <= set(b.state.senders)


if __name__ == "__main__":  # the figures docs/responder.md ("Several processes") quotes
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for days, name in (((5.0, 7.0), "Sunday and Monday (the raid's two days)"),
                       ((6.5, 7.0), "Monday afternoon alone, from an empty memory")):
        print(name)
        for count in (1, 3):
            with tempfile.TemporaryDirectory() as folder:
                spent, raid, people = serve(f"sqlite:///{folder}/raidsim.db", count, days)
            print(f"  {count} process{'es' if count > 1 else ''}: EUR {spent / 1e6:,.2f},"
                  f" {raid:,} replies to raiders, {people:,} to people", flush=True)


def test_another_processs_release_reaches_this_memory(tmp_path: Path,
                                                      store_url: str) -> None:  # noqa: F811
    """A releases Bob's held reply first. B, which held it too, learns the outcome on its
    next fold, as one process remembers its own release: Bob is no longer held there,
    and his reply counts toward his limit, so his next message to B is ``sender_limit``
    (not ``already_held`` until B's own release finds it settled)."""
    settings = plain(tmp_path, store_url, '[budget]\nper_hour_eur = "0.16"\n')
    alice, bob = "+33611000001", "+33611000002"
    with processes(settings, store_url, 2, NOW) as (a, b):
        a.accept(Inbound("SM1", alice, TO, "Bonjour", NOW + 1.0), now=NOW + 1.0)
        a.accept(Inbound("SM2", bob, TO, "Bonjour", NOW + 2.0), now=NOW + 2.0)
        b.refresh(now=NOW + 3.0)
        assert b.state.senders[bob].held
        due = a.next_deadline()
        assert due is not None
        released, _ = a.release_due(now=due)
        assert [(r.message.message_id, r.decision.rule) for r in released] == [
            ("SM2", "released")]
        b.refresh(now=due + 1.0)
        assert not b.state.senders[bob].held and b.next_deadline() is None
        later = b.accept(Inbound("SM3", bob, TO, "Merci", due + 2.0), now=due + 2.0)
        assert later.decision.rule == "sender_limit"  # type: ignore[union-attr]
        assert a.store.reserved_ids(["SM1", "SM2", "SM3"]) == {"SM1", "SM2"}
