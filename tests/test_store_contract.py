"""The ledger contract, run against every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import random
import threading

from ledger_contract import NOW, LedgerFactory

from responder.policy.ledger import (
    Caps,
    Ledger,
    MemoryLedger,
    ReserveRequest,
    ReserveStatus,
    hour_bucket,
)


def req(mid: str, sender: str = "+33600000001", cost: int = 160_000, now: float = NOW,
        limit: int | None = 1, window: float = 86400.0) -> ReserveRequest:
    return ReserveRequest(mid, sender, cost, now, sender_limit=limit, sender_window_s=window)


def test_implements_protocol(ledger_factory: LedgerFactory) -> None:
    """Every backend is a Ledger."""
    assert isinstance(ledger_factory(), Ledger)


def test_reserve_once_per_message_id(ledger_factory: LedgerFactory) -> None:
    """A message id is reserved at most once."""
    ledger = ledger_factory()
    assert ledger.reserve(req("SM1", limit=None)) is ReserveStatus.OK
    assert ledger.reserve(req("SM1", limit=None)) is ReserveStatus.DUPLICATE
    assert ledger.spent_micros() == 160_000


def test_sender_limit_within_window(ledger_factory: LedgerFactory) -> None:
    """The per-sender limit holds inside the window and lapses after it."""
    ledger = ledger_factory()
    assert ledger.reserve(req("SM1", window=100.0)) is ReserveStatus.OK
    assert ledger.reserve(req("SM2", now=NOW + 50, window=100.0)) is ReserveStatus.SENDER_LIMIT
    assert ledger.reserve(req("SM3", now=NOW + 100, window=100.0)) is ReserveStatus.OK
    assert ledger.reserve(req("SM4", sender="+33600000002", window=100.0)) is ReserveStatus.OK


def test_total_cap(ledger_factory: LedgerFactory) -> None:
    """The total cap is never crossed, even by one micro-euro."""
    ledger = ledger_factory()
    ledger.set_caps(Caps(total_micros=320_000))
    assert ledger.caps() == Caps(total_micros=320_000)
    assert ledger.reserve(req("SM1", sender="+1", limit=None)) is ReserveStatus.OK
    assert ledger.reserve(req("SM2", sender="+2", limit=None)) is ReserveStatus.OK
    assert ledger.reserve(req("SM3", sender="+3", limit=None)) is ReserveStatus.BUDGET_TOTAL
    assert ledger.reserve(req("SM4", sender="+4", cost=0, limit=None)) is ReserveStatus.OK
    assert ledger.spent_micros() == 320_000


def test_hour_cap_is_a_sliding_sixty_minutes(ledger_factory: LedgerFactory) -> None:
    """The hourly cap counts the last 60 minutes, so a burst across a clock hour cannot
    spend it twice."""
    ledger = ledger_factory()
    ledger.set_caps(Caps(per_hour_micros=160_000))
    start = hour_bucket(NOW) * 3600.0 + 3590.0  # ten seconds before a clock hour
    assert ledger.reserve(req("SM1", sender="+1", now=start)) is ReserveStatus.OK
    assert ledger.reserve(req("SM2", sender="+2", now=start + 20)) is ReserveStatus.BUDGET_HOUR
    assert ledger.spent_in_hour_micros(start + 20) == 160_000
    assert ledger.reserve(req("SM3", sender="+3", now=start + 3599)) is ReserveStatus.BUDGET_HOUR
    assert ledger.reserve(req("SM4", sender="+4", now=start + 3600)) is ReserveStatus.OK
    assert ledger.spent_in_hour_micros(start + 3600) == 160_000


def test_settle_unbilled_refunds_but_keeps_id(ledger_factory: LedgerFactory) -> None:
    """An unbilled reply gives the money back but its id can never be reserved again."""
    ledger = ledger_factory()
    ledger.set_caps(Caps(total_micros=160_000))
    assert ledger.reserve(req("SM1", limit=None)) is ReserveStatus.OK
    ledger.settle("SM1", billed=False)
    ledger.settle("SM1", billed=False)  # idempotent
    assert ledger.spent_micros() == 0
    assert ledger.spent_in_hour_micros(NOW) == 0
    assert ledger.reserve(req("SM1", limit=None)) is ReserveStatus.DUPLICATE
    assert ledger.reserve(req("SM2", sender="+2", limit=None)) is ReserveStatus.OK


def test_settle_unbilled_frees_the_sender_limit(ledger_factory: LedgerFactory) -> None:
    """A reply the provider surely did not send stops counting toward its sender's limit
    (seen from another connection too), but its id stays reserved; a billed or standing
    reply still counts, and so does a free one (cost 0 is not what marks a refund)."""
    ledger = ledger_factory()
    assert ledger.reserve(req("SM1")) is ReserveStatus.OK
    assert ledger.reserve(req("SM2", now=NOW + 1)) is ReserveStatus.SENDER_LIMIT
    ledger.settle("SM1", billed=False, now=NOW + 5)
    ledger.settle("SM1", billed=False, now=NOW + 6)  # idempotent
    other = ledger_factory()
    assert other.reserve(req("SM1", now=NOW + 7)) is ReserveStatus.DUPLICATE
    assert other.reserve(req("SM2", now=NOW + 7)) is ReserveStatus.OK
    assert ledger.reserve(req("SM3", now=NOW + 8)) is ReserveStatus.SENDER_LIMIT
    ledger.settle("SM2", billed=True)
    assert ledger.reserve(req("SM3", now=NOW + 9)) is ReserveStatus.SENDER_LIMIT
    assert ledger.spent_micros() == 160_000
    free = "+33600000002"
    assert ledger.reserve(req("SM4", sender=free, cost=0)) is ReserveStatus.OK
    assert ledger.reserve(req("SM5", sender=free, cost=0, now=NOW + 1)) is (
        ReserveStatus.SENDER_LIMIT
    )
    ledger.settle("SM4", billed=False)  # the refund time may be unknown
    assert other.reserve(req("SM5", sender=free, cost=0, now=NOW + 2)) is ReserveStatus.OK
    assert ledger.reserve(req("SM6", sender=free, now=NOW + 3)) is ReserveStatus.SENDER_LIMIT
    assert ledger.spent_micros() == 160_000


def test_a_refund_frees_one_reply_of_several(ledger_factory: LedgerFactory) -> None:
    """With two replies allowed per window, refunding one leaves room for exactly one more,
    and the refund of a reply already out of the window changes nothing."""
    ledger = ledger_factory()
    assert ledger.reserve(req("SM1", limit=2, window=100.0)) is ReserveStatus.OK
    assert ledger.reserve(req("SM2", limit=2, window=100.0, now=NOW + 50)) is ReserveStatus.OK
    ledger.settle("SM2", billed=False, now=NOW + 60)
    assert ledger.reserve(req("SM3", limit=2, window=100.0, now=NOW + 70)) is ReserveStatus.OK
    assert ledger.reserve(req("SM4", limit=2, window=100.0, now=NOW + 80)) is (
        ReserveStatus.SENDER_LIMIT
    )
    # SM1 leaves the window at NOW + 100; refunding it afterwards must not free SM3's slot
    assert ledger.reserve(req("SM5", limit=2, window=100.0, now=NOW + 120)) is ReserveStatus.OK
    ledger.settle("SM1", billed=False, now=NOW + 130)
    assert ledger.reserve(req("SM6", limit=2, window=100.0, now=NOW + 140)) is (
        ReserveStatus.SENDER_LIMIT
    )


def test_settle_billed_keeps_spend(ledger_factory: LedgerFactory) -> None:
    """A billed reply stays spent."""
    ledger = ledger_factory()
    assert ledger.reserve(req("SM1")) is ReserveStatus.OK
    ledger.settle("SM1", billed=True)
    assert ledger.spent_micros() == 160_000


def test_matches_memory_ledger_on_random_operations(ledger_factory: LedgerFactory) -> None:
    """Any backend answers a random operation sequence exactly like the memory ledger."""
    rng = random.Random(4)
    reference, ledger = MemoryLedger(), ledger_factory()
    caps = Caps(total_micros=2_000_000, per_hour_micros=700_000)
    reference.set_caps(caps)
    ledger.set_caps(caps)
    now = NOW
    for step in range(300):
        now += rng.choice([0.0, 1.0, 30.0, 900.0])
        if rng.random() < 0.15:
            mid = f"SM{rng.randrange(step + 1)}"
            billed = rng.random() < 0.5
            reference.settle(mid, billed=billed)
            ledger.settle(mid, billed=billed)
            continue
        request = req(
            f"SM{rng.randrange(step + 1)}",
            sender=f"+3360000{rng.randrange(40):04d}",
            cost=rng.choice([0, 160_000, 320_000]),
            now=now,
            limit=rng.choice([None, 1, 2]),
            window=rng.choice([60.0, 3600.0]),
        )
        assert ledger.reserve(request) is reference.reserve(request), (step, request)
        assert ledger.spent_micros() == reference.spent_micros()
        assert ledger.spent_in_hour_micros(now) == reference.spent_in_hour_micros(now)


def test_concurrent_reservations_hold_the_cap(ledger_factory: LedgerFactory) -> None:
    """Many connections reserving at once never overshoot the cap (SQL backends)."""
    probe = ledger_factory()
    if isinstance(probe, MemoryLedger):
        return  # single-threaded by contract
    probe.set_caps(Caps(total_micros=50 * 160_000))
    results: list[ReserveStatus] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        ledger = ledger_factory()
        barrier.wait()
        for k in range(25):
            status = ledger.reserve(req(f"SM{index}-{k}", sender=f"+336{index:02d}{k:06d}"))
            with lock:
                results.append(status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 200
    assert results.count(ReserveStatus.OK) == 50
    assert probe.spent_micros() == 50 * 160_000


def test_concurrent_same_sender_gets_one(ledger_factory: LedgerFactory) -> None:
    """One sender hammering from many connections gets exactly one reservation."""
    probe = ledger_factory()
    if isinstance(probe, MemoryLedger):
        return
    results: list[ReserveStatus] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker(index: int) -> None:
        ledger = ledger_factory()
        barrier.wait()
        for k in range(10):
            status = ledger.reserve(req(f"SM{index}-{k}", sender="+33611111111"))
            with lock:
                results.append(status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results.count(ReserveStatus.OK) == 1
    assert results.count(ReserveStatus.SENDER_LIMIT) == 59
