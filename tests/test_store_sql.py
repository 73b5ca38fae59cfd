"""The SQL store beyond the ledger: inbound dedup, outbox leases, controls, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ledger_contract import NOW, StoreFactory

from responder.policy.model import Decision
from responder.store import (
    FAILED,
    PENDING,
    SENT,
    UNKNOWN,
    Inbound,
    SqlStore,
    StoreError,
    open_store,
)


def inbound(sid: str, token: str | None = None, sender: str = "+33600000001") -> Inbound:
    return Inbound(sid, sender, "+33644649021", "Salut", NOW, idempotency_token=token)


def test_migrations_are_idempotent(store: SqlStore) -> None:
    """Migrating twice applies nothing the second time and leaves the store ready."""
    assert store.migrate(now=NOW) == []
    assert store.schema_version() == store.latest_version >= 1
    assert store.ready()


def test_fresh_database_is_not_ready(store_url: str) -> None:
    """An unmigrated database is reachable but not ready."""
    fresh = open_store(store_url)
    try:
        assert fresh.schema_version() == 0
        assert not fresh.ready()
        assert fresh.migrate(now=NOW) == list(range(1, fresh.latest_version + 1))
        assert fresh.ready()
    finally:
        fresh.close()


def test_inbound_dedup_on_sid_and_token(store: SqlStore) -> None:
    """The same MessageSid or the same idempotency token is stored once."""
    assert store.insert_inbound(inbound("SM1", token="tok-1"))
    assert not store.insert_inbound(inbound("SM1", token="tok-2"))
    assert not store.insert_inbound(inbound("SM2", token="tok-1"))
    assert store.insert_inbound(inbound("SM3"))
    assert store.insert_inbound(inbound("SM4"))  # several messages without a token
    assert store.inbound_count() == 3


def test_failed_transaction_leaves_nothing(store: SqlStore) -> None:
    """A transaction that raises stores nothing."""
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_inbound(inbound("SM1"))
        raise RuntimeError("boom")
    assert store.inbound_count() == 0


def test_decisions_and_held(store: SqlStore) -> None:
    """A deferred decision marks the message held until it is decided again."""
    store.insert_inbound(inbound("SM1"))
    store.record_decision("SM1", Decision.defer("surge_hold", NOW + 60, 3), now=NOW)
    [held] = store.held()
    assert (held.message.message_id, held.until, held.priority) == ("SM1", NOW + 60, 3)
    assert held.rule == "surge_hold"  # a restart restores it held for that reason
    store.record_decision("SM1", Decision.reply("released"), now=NOW + 60)
    assert store.held() == []
    assert store.decision_of("SM1") == ("reply", "released")


def test_a_release_waits_for_another_process_settling_the_same_held_message(
    store_factory: StoreFactory,
) -> None:
    """``lock_held`` says which messages are still held and keeps them locked until the
    transaction ends: a second process releasing the same message waits for the first,
    then finds it settled (it decided nothing, and overwrites nothing)."""
    import threading

    first, second = store_factory(), store_factory()
    for sid in ("SM1", "SM2"):
        first.insert_inbound(inbound(sid, sender=f"+3360000000{sid[-1]}"))
        first.record_decision(sid, Decision.defer("surge_hold", NOW + 60, 0), now=NOW)
    seen: list[set[str]] = []
    with first.transaction():
        assert first.lock_held(["SM2", "SM1", "SM9"]) == {"SM1", "SM2"}

        def release_too() -> None:
            with second.transaction():
                seen.append(second.lock_held(["SM1", "SM2"]))

        thread = threading.Thread(target=release_too)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive() and not seen  # waits for the first release to end
        first.record_decision("SM1", Decision.reply("released"), now=NOW + 60)
    thread.join(timeout=10)
    assert seen == [{"SM2"}]


def test_outbox_once_per_message(store: SqlStore) -> None:
    """One inbound message queues at most one reply."""
    assert store.enqueue_reply("SM1", "+33600000001", "+33644649021", "hi", 160_000, now=NOW)
    assert not store.enqueue_reply("SM1", "+33600000001", "+33644649021", "hi", 160_000, now=NOW)
    assert store.outbox_counts()[PENDING] == 1


def test_claims_are_exclusive_across_connections(store_factory: StoreFactory) -> None:
    """Two workers never claim the same reply."""
    first, second = store_factory(), store_factory()
    for k in range(5):
        first.enqueue_reply(f"SM{k}", f"+3360000000{k}", "+33644649021", "hi", 1, now=NOW)
    a = first.claim_outbox(now=NOW, limit=3, owner="a", lease_s=60)
    b = second.claim_outbox(now=NOW, limit=10, owner="b", lease_s=60)
    assert len(a) == 3 and len(b) == 2
    assert not {i.id for i in a} & {i.id for i in b}
    assert second.claim_outbox(now=NOW, limit=10, owner="b", lease_s=60) == []


def test_cancel_pending_to_takes_only_unclaimed_replies_to_those_numbers(
        store: SqlStore) -> None:
    """Cancelling the replies to a prefix marks its queued ones failed (a retry waiting
    for its time too) and returns them; one being sent, and other numbers', stay. An
    exact number takes only its own."""
    numbers = ["+33612300001", "+33612300002", "+33612300003", "+33699900004"]
    for k, number in enumerate(numbers):
        store.enqueue_reply(f"SM{k}", number, "+33644649021", "hi", 160_000, now=NOW + k)
    [sending] = store.claim_outbox(now=NOW, limit=1, owner="w", lease_s=30)
    [retried] = store.claim_outbox(now=NOW + 1, limit=1, owner="w", lease_s=30)
    store.retry_outbox(retried.id, at=NOW + 99, now=NOW + 1, error="429")
    [first] = store.cancel_pending_to(["+336123", "+33700"], now=NOW + 5, error="cancelled",
                                      limit=1)  # the oldest
    [then] = store.cancel_pending_to(["+336123", "+33700"], now=NOW + 5, error="cancelled")
    assert (first.message_sid, then.message_sid) == ("SM1", "SM2")
    rows = {r["message_sid"]: (r["status"], r["error"]) for r in store.outbox_rows()}
    assert rows == {"SM0": ("sending", None), "SM1": ("failed", "cancelled"),
                    "SM2": ("failed", "cancelled"), "SM3": (PENDING, None)}
    assert sending.message_sid == "SM0"
    assert store.cancel_pending_to([], now=NOW + 6, error="cancelled") == []
    # an opt-out cancels its own number's replies only, not those of longer numbers
    assert store.cancel_pending_to(["+3369990000"], now=NOW + 6, error="x", exact=True) == []
    [mine] = store.cancel_pending_to(["+33699900004"], now=NOW + 6, error="x", exact=True)
    assert mine.message_sid == "SM3"


def test_cancelling_skips_a_reply_another_transaction_holds(postgres_url: str) -> None:
    """PostgreSQL: cancelling takes the queued rows nobody holds and skips those a sender is
    claiming (they are on their way), instead of waiting for them: a webhook batch that
    cancels an opted-out sender's replies holds the budget lock, and a claim that refunds
    a blocked reply waits for that lock while holding its rows, so waiting could
    deadlock."""
    import threading

    holder, canceller = open_store(postgres_url), open_store(postgres_url)
    try:
        holder.migrate(now=NOW)
        for k in range(3):
            holder.enqueue_reply(f"SM{k}", f"+3361111111{k}", "+33644649021", "hi", 1, now=NOW)
        done: list[list[str]] = []
        with holder.transaction():
            holder._all("SELECT id FROM outbox WHERE message_sid = ? FOR UPDATE", ("SM0",))
            worker = threading.Thread(target=lambda: done.append([
                i.message_sid for i in canceller.cancel_pending_to(
                    ["+336111"], now=NOW, error="cancelled")]))
            worker.start()
            worker.join(timeout=10)
        assert done == [["SM1", "SM2"]]  # at once, while SM0 was held
    finally:
        holder.close()
        canceller.close()


def test_outbox_lifecycle(store: SqlStore) -> None:
    """Retry puts a reply back later; a dead worker's lease turns into unknown, never pending."""
    for k in range(3):
        store.enqueue_reply(f"SM{k}", f"+3360000000{k}", "+33644649021", "hi", 1, now=NOW)
    items = store.claim_outbox(now=NOW, limit=3, owner="w", lease_s=30)
    assert [i.attempts for i in items] == [1, 1, 1]
    store.finish_outbox(items[0].id, SENT, now=NOW, provider_sid="SMout", segments=1)
    store.retry_outbox(items[1].id, at=NOW + 10, now=NOW, error="429")
    assert store.claim_outbox(now=NOW + 5, limit=5, owner="w", lease_s=30) == []
    assert store.next_outbox_due() == NOW + 10
    assert store.expire_leases(now=NOW + 31) == [("SM2", "unknown")]
    counts = store.outbox_counts()
    assert (counts[SENT], counts[PENDING], counts[UNKNOWN]) == (1, 1, 1)
    [again] = store.claim_outbox(now=NOW + 10, limit=5, owner="w", lease_s=30)
    assert again.attempts == 2
    assert store.record_status("SMout", "delivered", None, now=NOW)
    assert not store.record_status("SMother", "failed", "30003", now=NOW)
    store.finish_outbox(again.id, FAILED, now=NOW, error="21610")
    assert store.release_own_leases("w", now=NOW) == 0


def test_status_callbacks_settle_unknown_replies(store: SqlStore) -> None:
    """A callback naming the reply (``reply_to``) proves the provider created the SMS: an
    ``unknown`` reply becomes ``sent`` with its sid, even one still ``sending`` when the
    callback came; ``failed`` from the provider leaves it ``unknown`` (still counted)."""
    for k in range(5):
        store.enqueue_reply(f"SM{k}", f"+3360000000{k}", "+33644649021", "hi", 1, now=NOW)
    items = store.claim_outbox(now=NOW, limit=4, owner="w", lease_s=30)
    timed_out, in_flight, refused, _died = items
    assert store.finish_outbox(timed_out.id, UNKNOWN, now=NOW, error="ReadTimeout") == UNKNOWN
    assert store.record_status("SMa", "sent", None, now=NOW + 1, reply_to="SM0")
    assert store.record_status("SMa", "delivered", None, now=NOW + 2)  # by sid from now on
    assert store.record_status("SMb", "sent", None, now=NOW + 1, reply_to="SM1")
    # the status written: the callback already named in_flight's message
    assert store.finish_outbox(in_flight.id, UNKNOWN, now=NOW + 3, error="ReadTimeout") == SENT
    assert store.finish_outbox(refused.id, UNKNOWN, now=NOW, error="ReadTimeout") == UNKNOWN
    assert store.record_status("SMc", "failed", "30008", now=NOW + 1, reply_to="SM2")
    assert store.record_status("SMd", "queued", None, now=NOW + 1, reply_to="SM3")
    assert store.expire_leases(now=NOW + 31) == [("SM3", "sent")]  # its worker died: sent
    # a reply that was never claimed, or one that already has another sid, is not matched
    assert not store.record_status("SMe", "sent", None, now=NOW + 1, reply_to="SM4")
    assert not store.record_status("SMf", "sent", None, now=NOW + 1, reply_to="SM0")
    rows = {r["message_sid"]: r for r in store.outbox_rows()}
    assert [(rows[f"SM{k}"]["status"], rows[f"SM{k}"]["provider_sid"],
             rows[f"SM{k}"]["provider_status"]) for k in range(5)] == [
        (SENT, "SMa", "delivered"), (SENT, "SMb", "sent"), (UNKNOWN, "SMc", "failed"),
        (SENT, "SMd", "queued"), (PENDING, None, None)]


def test_a_callback_that_beats_the_send_answer_keeps_its_status(store: SqlStore) -> None:
    """A ``delivered`` or ``failed`` callback may arrive while the send call is still
    waiting for its answer; the answer's ``queued`` overwrote it. The callback's status
    (a later one) now stays; the answer still gives the sid and status when none came."""
    for k in range(3):
        store.enqueue_reply(f"SM{k}", f"+3360000000{k}", "+33644649021", "hi", 1, now=NOW)
    delivered, failed, plain = store.claim_outbox(now=NOW, limit=3, owner="w", lease_s=30)
    assert store.record_status("SMa", "delivered", None, now=NOW + 1, reply_to="SM0")
    assert store.record_status("SMb", "failed", "30008", now=NOW + 1, reply_to="SM1")
    for item, sid in ((delivered, "SMa"), (failed, "SMb"), (plain, "SMc")):
        store.finish_outbox(item.id, SENT, now=NOW + 2, provider_sid=sid,
                            provider_status="queued", segments=1)
    rows = {r["message_sid"]: r for r in store.outbox_rows()}
    assert [(rows[f"SM{k}"]["status"], rows[f"SM{k}"]["provider_sid"],
             rows[f"SM{k}"]["provider_status"]) for k in range(3)] == [
        (SENT, "SMa", "delivered"), (SENT, "SMb", "failed"), (SENT, "SMc", "queued")]


def test_release_own_leases_at_shutdown(store: SqlStore) -> None:
    """Claimed but unsent replies go back to pending when their worker stops cleanly."""
    store.enqueue_reply("SM1", "+33600000001", "+33644649021", "hi", 1, now=NOW)
    store.claim_outbox(now=NOW, limit=1, owner="w", lease_s=30)
    assert store.release_own_leases("w", now=NOW) == 1
    [item] = store.claim_outbox(now=NOW, limit=1, owner="v", lease_s=30)
    assert item.attempts == 1


def test_controls(store: SqlStore) -> None:
    """Kill switch and block/allow lists persist and bump the version."""
    base = store.controls()
    assert not base.kill_switch and not base.blocked
    store.set_kill_switch(True)
    assert store.add_number_rule("block", "+3361234", now=NOW)
    assert not store.add_number_rule("block", "+3361234", now=NOW)
    store.add_number_rule("allow", "+33699999999", now=NOW)
    after = store.controls()
    assert after.kill_switch and after.blocked == {"+3361234"}
    assert after.allowed == {"+33699999999"}
    assert after.version > base.version
    assert store.remove_number_rule("block", "+3361234")
    assert store.controls().blocked == frozenset()


def test_config_caps_yield_to_operator_caps(store: SqlStore) -> None:
    """Configured caps apply until an operator sets caps; then the operator's stick."""
    from responder.policy.ledger import Caps

    assert store.apply_config_caps(Caps(total_micros=1_000_000))
    assert store.caps() == Caps(total_micros=1_000_000)
    store.set_caps(Caps(total_micros=5_000_000))
    assert not store.apply_config_caps(Caps(total_micros=1_000_000))
    assert store.caps() == Caps(total_micros=5_000_000)


def test_purge_and_evidence(store: SqlStore) -> None:
    """Retention drops old bodies; the evidence export lists flagged messages."""
    store.insert_inbound(Inbound("SM1", "+33600000001", "+33644649021", "old", NOW - 100))
    store.insert_inbound(Inbound("SM2", "+33600000002", "+33644649021", "new", NOW))
    store.record_decision("SM1", Decision.drop("raid_template"), now=NOW)
    assert store.purge_bodies(NOW - 50) == 1
    [row] = store.evidence(["raid_template"])
    assert row["sender"] == "+33600000001" and row["body"] is None
    # one number's messages, whatever their decision, with the status of their reply
    store.record_decision("SM2", Decision.reply("first_contact"), now=NOW, first=True)
    store.enqueue_reply("SM2", "+33600000002", "+33644649021", "hi", 160_000, now=NOW)
    [mine] = store.evidence(None, sender="+33600000002")
    assert (mine["message_sid"], mine["rule"], mine["reply_status"]) == (
        "SM2", "first_contact", PENDING)
    assert store.evidence(["raid_template"], sender="+33600000002") == []


def test_flagged_among_lists_each_raider_once_from_its_first_flag(store: SqlStore) -> None:
    """Which of some senders a raid rule judged, once each with their first such message's
    time, oldest first; other rules are not flags, and other senders are not asked about."""
    rows = [("SM1", "+33600000001", NOW - 300, Decision.drop("raid_template")),
            ("SM2", "+33600000001", NOW - 200, Decision.drop("flagged_sender")),
            ("SM3", "+33600000002", NOW - 400, Decision.drop("number_block")),
            ("SM4", "+33600000003", NOW - 500, Decision.reply("first_contact")),
            ("SM5", "+33600000004", NOW - 600, Decision.drop("sender_limit")),
            ("SM6", "+33600000005", NOW + 10, Decision.drop("repeat_flood"))]
    for sid, sender, t, decision in rows:
        store.insert_inbound(Inbound(sid, sender, "+33644649021", "txt", t))
        store.record_decision(sid, decision, now=t, first=True)
    asked = [f"+3360000000{k}" for k in range(1, 5)]
    assert store.flagged_among(asked) == [("+33600000002", NOW - 400),
                                          ("+33600000001", NOW - 300)]
    assert store.flagged_among(["+33600000005"]) == [("+33600000005", NOW + 10)]
    assert store.flagged_among([]) == []


def test_retention_erases_held_bodies_too(store: SqlStore) -> None:
    """A held message's body outlived a retention shorter than the hold; now it goes, and
    the held reply comes back after a restart without its text."""
    store.insert_inbound(Inbound("SM1", "+33600000001", "+33644649021", "held text", NOW - 100))
    store.record_decision("SM1", Decision.defer("surge_hold", NOW + 3600), now=NOW - 100)
    assert [h.message.body for h in store.held()] == ["held text"]
    assert store.purge_bodies(NOW - 50) == 1
    assert [h.message.body for h in store.held()] == [""]


def test_retention_leaves_no_erased_body_in_the_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erased body stayed readable in the SQLite file: SQLite's default frees a cell's
    space without overwriting it (Debian's build overwrites it, most others do not;
    emulated here), so ``strings raidsim.db`` showed bodies past their retention. The
    store now asks for ``secure_delete`` itself."""
    import sqlite3

    from responder.store import sqlite as sqlite_store

    connect = sqlite3.connect

    def connect_without_secure_delete(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite_store.sqlite3, "connect", connect_without_secure_delete)
    path = tmp_path / "retention.db"
    store = open_store(f"sqlite:///{path}")
    store.migrate(now=NOW)
    for k in range(40):
        store.insert_inbound(Inbound(f"SM{k}", f"+336000000{k:02d}", "+33644649021",
                                     f"erase-me-{k:02d} " * 4, NOW - 100 + k))
    store.checkpoint()
    assert store.purge_bodies(NOW - 80) == 20  # the 20 oldest, on pages with kept ones
    store.close()
    data = path.read_bytes()
    assert [k for k in range(40) if f"erase-me-{k:02d}".encode() in data] == list(range(20, 40))


def test_retention_leaves_no_erased_body_in_the_sqlite_wal(tmp_path: Path) -> None:
    """The write-ahead log kept the frames written before the erasure: 666 erased bodies
    were still readable in ``raidsim.db-wal`` 30 s after a purge, with the service running
    (it is emptied only when the last connection closes). The purge now empties it."""
    path = tmp_path / "retention.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.migrate(now=NOW)
        store.checkpoint()
        for k in range(40):  # written to the log, not yet copied into the database
            store.insert_inbound(Inbound(f"SM{k}", f"+336000000{k:02d}", "+33644649021",
                                         f"erase-me-{k:02d} " * 4, NOW - 100 + k))
        wal = Path(f"{path}-wal")
        assert b"erase-me-00" in wal.read_bytes()
        assert store.purge_bodies(NOW - 80) == 20
        # while the store is still open, as in a running service
        data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert [k for k in range(40) if f"erase-me-{k:02d}".encode() in data] \
            == list(range(20, 40))
    finally:
        store.close()


def test_bad_urls() -> None:
    """Unsupported or malformed database URLs fail with a clear error."""
    with pytest.raises(StoreError, match="unsupported"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match="does not exist"):
        open_store("sqlite:////nonexistent-dir/x.db")


def test_a_database_where_nothing_can_be_written_says_what_must_be_writable() -> None:
    """SQLite's own "unable to open database file" (or "attempt to write a readonly
    database", when the file is writable and its directory is not) named no fix. /proc
    takes no new file, whoever runs the test (root included)."""
    with pytest.raises(StoreError) as caught:
        open_store("sqlite:////proc/raidsim-test.db")
    assert str(caught.value) == (
        "cannot open SQLite database '/proc/raidsim-test.db': unable to open database file"
        " (hint: this user must be able to write the file and, beside it, its -wal and -shm"
        " files in /proc; or set RAIDSIM_DATABASE_URL to a file in a writable directory)")


def test_spend_in_hour_lists_the_window_reservations_oldest_first(store: SqlStore) -> None:
    """What paces replies held by the hourly cap: each reservation of (now - 3600, now]
    with its time, so each leaves the window when it does; refunded ones are left out."""
    from responder.policy.ledger import ReserveRequest

    def reserve(message_id: str, sender: str, at: float) -> None:
        request = ReserveRequest(message_id, sender, 160_000, at, sender_limit=None,
                                 sender_window_s=86400.0)
        assert store.reserve(request).value == "ok"

    reserve("SMold", "+33600000001", NOW - 3600)  # just out of the window at NOW
    reserve("SMb", "+33600000002", NOW - 600)
    reserve("SMa", "+33600000003", NOW - 1800)
    reserve("SMgone", "+33600000004", NOW - 60)
    store.settle("SMgone", billed=False, now=NOW - 30)
    assert store.spend_in_hour(NOW) == [(NOW - 1800, "SMa", 160_000),
                                        (NOW - 600, "SMb", 160_000)]
    assert sum(cost for _, _, cost in store.spend_in_hour(NOW)) \
        == store.spent_in_hour_micros(NOW)


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It holds raw numbers and bodies: it was created 0644 (world-readable under the usual
    umask), and its -wal and -shm files with it. An existing file keeps its mode."""
    import os
    import stat

    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "private.db"
        store = open_store(f"sqlite:///{path}")
        store.migrate(now=NOW)
        store.insert_inbound(inbound("SM1"))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        store.close()
        assert modes == {f.name: 0o600 for f in files}
        shared = tmp_path / "shared.db"
        shared.touch(mode=0o640)
        open_store(f"sqlite:///{shared}").close()
        assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    finally:
        os.umask(old_umask)
