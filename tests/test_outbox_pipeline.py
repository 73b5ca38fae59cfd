"""The outbox sender keeps up to ``concurrency`` provider calls in flight, continuously.

It used to claim a batch, wait for every call of it, record, and only then claim again:
one slow provider call (up to the read timeout) held every other due reply back while
the other slots sat idle. These tests drive ``OutboxSender.run`` against a real store
and a provider stub whose calls block on events, so nothing depends on timing except
bounded waits for things that must happen.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_responder_app import NOW, Clock, settings_for, until

from responder.metrics import Metrics
from responder.outbox import IDLE_POLL_S, OutboxSender
from responder.policy.retry import CircuitBreaker
from responder.provider import Outcome, SendResult
from responder.service import DbThread, Responder
from responder.store import SqlStore, open_store

pytestmark = pytest.mark.anyio
FROM = "+33644649021"
COOLDOWN_S = 30.0


def number(k: int) -> str:
    return f"+336000000{k:02d}"


class GatedProvider:
    """Stands in for ``TwilioClient``: each call waits for its recipient's gate, if any.

    Records every call (a reply sent twice would show up twice) and the most calls
    ever in flight at once.
    """

    def __init__(self, gated: set[str] | None = None, *, gate_all: bool = False) -> None:
        self.gated = set(gated or ())
        self.gate_all = gate_all
        self.gates: dict[str, asyncio.Event] = {}
        self.calls: list[str] = []
        self.answers: dict[str, SendResult] = {}
        self.in_flight: set[str] = set()
        self.max_in_flight = 0

    def gate(self, to: str) -> asyncio.Event:
        return self.gates.setdefault(to, asyncio.Event())

    async def send(self, *, to: str, from_: str, body: str, now: float,
                   reply_to: str | None = None) -> SendResult:
        self.calls.append(to)
        self.in_flight.add(to)
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        try:
            if self.gate_all or to in self.gated:
                await self.gate(to).wait()
            else:
                await asyncio.sleep(0)  # answer on the next turn of the loop, as a fast API
            return self.answers.get(to) or SendResult(
                Outcome.SENT, "ok", provider_sid=f"SMout{len(self.calls)}", status="queued",
                segments=1)
        finally:
            self.in_flight.discard(to)


@dataclass
class Harness:
    store: SqlStore  # the sender's: used only through ``db``
    writer: SqlStore  # another connection, as the webhooks' process would have
    db: DbThread
    sender: OutboxSender
    provider: GatedProvider
    clock: Clock
    stopping: asyncio.Event

    def enqueue(self, count: int, start: int = 0) -> None:
        for k in range(start, start + count):
            # Ascending creation times: claimed in this order.
            assert self.writer.enqueue_reply(f"SM{k:02d}", number(k), FROM, "hi", 1,
                                            now=NOW - 100 + k)
        self.sender.wake.set()

    async def statuses(self) -> dict[str, str]:
        rows = await self.db.call(self.store.outbox_rows)
        return {str(row["recipient"]): str(row["status"]) for row in rows}

    async def statuses_until(self, predicate: Callable[[dict[str, str]], bool],
                             timeout: float = 10.0) -> dict[str, str]:
        """Poll the outbox until ``predicate`` holds or ``timeout`` seconds pass."""
        for _ in range(int(timeout / 0.02)):
            statuses = await self.statuses()
            if predicate(statuses):
                return statuses
            await asyncio.sleep(0.02)
        return await self.statuses()


@asynccontextmanager
async def sending(tmp_path: Path, store_url: str, provider: GatedProvider, *,
                  concurrency: int, breaker: CircuitBreaker | None = None,
                  clock: Clock | None = None, drain_timeout_s: float = 5.0,
                  before: Callable[[Harness], Any] | None = None) -> AsyncIterator[Harness]:
    """An ``OutboxSender`` running on its own task, stopped (and drained) on exit."""
    clock = clock or Clock()
    settings = settings_for(tmp_path)
    store = open_store(store_url)
    db = DbThread(inline=store.dialect == "sqlite")
    core = Responder(settings, store)
    await db.call(core.start, now=clock(), migrate=True)
    sender = OutboxSender(
        core, db, provider, Metrics(), owner="test-worker",  # type: ignore[arg-type]
        concurrency=concurrency, max_attempts=8,
        breaker=breaker or CircuitBreaker(5, COOLDOWN_S, clock), rng=random.Random(1),
        clock=clock)
    writer = open_store(store_url)
    harness = Harness(store, writer, db, sender, provider, clock, asyncio.Event())
    if before is not None:
        before(harness)
    task = asyncio.create_task(sender.run(harness.stopping, drain_timeout_s))
    try:
        yield harness
    finally:
        harness.stopping.set()
        for gate in provider.gates.values():  # never leave a call blocked
            gate.set()
        provider.gate_all = False
        provider.gated.clear()
        try:
            await asyncio.wait_for(task, timeout=drain_timeout_s + 10)
        finally:
            writer.close()
            await db.call(store.close)
            db.close()


async def test_a_slow_send_does_not_hold_back_other_due_replies(
    tmp_path: Path, store_url: str
) -> None:
    """The first reply's provider call hangs; the 6 replies due behind it are all sent
    (and recorded) meanwhile, through the 3 other slots."""
    slow = number(0)
    provider = GatedProvider({slow})
    async with sending(tmp_path, store_url, provider, concurrency=4) as h:
        h.enqueue(7)
        assert await until(lambda: len(provider.calls) == 7), provider.calls
        others = {number(k): "sent" for k in range(1, 7)}
        statuses = await h.statuses_until(lambda s: s.get(slow) == "sending"
                                          and all(s.get(n) == v for n, v in others.items()))
        assert statuses == {slow: "sending", **others}
        assert provider.in_flight == {slow}
        provider.gate(slow).set()
        statuses = await h.statuses_until(lambda s: s.get(slow) == "sent")
        assert statuses == {slow: "sent", **others}
    assert sorted(provider.calls) == [number(k) for k in range(7)]  # each exactly once


async def test_in_flight_never_exceeds_concurrency_and_freed_slots_refill(
    tmp_path: Path, store_url: str
) -> None:
    """Every call blocks until released one at a time, oldest last: each release lets
    exactly one more call start, and never more than 3 are in flight."""
    provider = GatedProvider(gate_all=True)
    async with sending(tmp_path, store_url, provider, concurrency=3) as h:
        h.enqueue(10)
        assert await until(lambda: len(provider.calls) == 3)
        held = provider.calls[0]  # stays in flight throughout
        for released in range(7):
            newest = provider.calls[-1]
            provider.gate(newest).set()
            assert await until(lambda n=released: len(provider.calls) == 4 + n), provider.calls
            assert held in provider.in_flight
            assert len(provider.in_flight) <= 3
        assert provider.max_in_flight == 3
        provider.gate(held).set()
        for to in provider.calls:
            provider.gate(to).set()
        statuses = await h.statuses_until(lambda s: set(s.values()) == {"sent"})
        assert set(statuses.values()) == {"sent"} and len(statuses) == 10
    assert sorted(provider.calls) == [number(k) for k in range(10)]
    assert provider.max_in_flight == 3


async def test_half_open_breaker_allows_one_call_in_flight(
    tmp_path: Path, store_url: str
) -> None:
    """After the cool-down, one probe goes out; while it hangs no other reply is sent,
    however many are due and however many slots are free. Its success closes the
    circuit and the queue then goes out through every slot again."""
    clock = Clock()
    breaker = CircuitBreaker(1, COOLDOWN_S, clock)
    breaker.failure()  # open since NOW
    clock.now += COOLDOWN_S + 1
    assert breaker.state == "half_open"
    provider = GatedProvider(gate_all=True)
    async with sending(tmp_path, store_url, provider, concurrency=4, breaker=breaker,
                       clock=clock) as h:
        h.enqueue(6)
        assert await until(lambda: len(provider.calls) == 1)
        probe = provider.calls[0]
        # Give the sender several passes (it polls every IDLE_POLL_S, and is woken by
        # new replies): a wrong sender starts more calls here. A slow machine can only
        # make this pass wrongly, never fail wrongly.
        for k in range(3):
            h.enqueue(1, start=10 + k)
            await asyncio.sleep(IDLE_POLL_S)
            assert provider.calls == [probe]
        provider.gate(probe).set()
        assert await until(lambda: len(provider.calls) == 5), provider.calls
        assert breaker.state == "closed"
        assert len(provider.in_flight) == 4
        assert provider.max_in_flight == 4


async def test_half_open_waits_for_calls_still_in_flight(
    tmp_path: Path, store_url: str
) -> None:
    """The circuit opens while two calls are still in flight and the cool-down ends
    before they answer: no probe goes out until they have, so half-open never has
    more than one call in flight."""
    clock = Clock()
    breaker = CircuitBreaker(1, COOLDOWN_S, clock)
    provider = GatedProvider({number(1), number(2), number(3)})
    provider.answers[number(0)] = SendResult(Outcome.RETRY, "connect", error="refused")
    provider.answers[number(1)] = SendResult(Outcome.RETRY, "connect", error="refused")
    async with sending(tmp_path, store_url, provider, concurrency=3, breaker=breaker,
                       clock=clock) as h:
        h.enqueue(4)
        assert await until(lambda: breaker.state == "open")
        assert provider.in_flight == {number(1), number(2)}
        clock.now += COOLDOWN_S + 1
        assert breaker.state == "half_open"
        for _ in range(2):
            h.sender.wake.set()
            await asyncio.sleep(IDLE_POLL_S)
            assert provider.calls == [number(0), number(1), number(2)]
        provider.gate(number(1)).set()  # fails again: the circuit opens anew
        assert await until(lambda: breaker.state == "open")
        clock.now += COOLDOWN_S + 1
        await asyncio.sleep(IDLE_POLL_S)
        assert provider.calls == [number(0), number(1), number(2)]  # number(2) in flight
        provider.answers.clear()
        provider.gate(number(3)).set()
        provider.gate(number(2)).set()  # succeeds: closed, the queue goes out
        statuses = await h.statuses_until(lambda s: set(s.values()) == {"sent"})
        assert set(statuses.values()) == {"sent"} and len(statuses) == 4
        assert sorted(provider.calls) == [number(k) for k in (0, 0, 1, 1, 2, 3)]
        assert provider.max_in_flight <= 3


async def test_drain_finishes_in_flight_sends_and_sends_due_replies(
    tmp_path: Path, store_url: str
) -> None:
    """At shutdown the sender keeps sending due replies, waits for the hanging call,
    records it, and only then releases its leases: nothing is left ``sending``."""
    slow = number(0)
    provider = GatedProvider({slow})
    async with sending(tmp_path, store_url, provider, concurrency=2) as h:
        h.enqueue(1)
        assert await until(lambda: provider.calls == [slow])
        h.stopping.set()
        h.enqueue(4, start=1)
        assert await until(lambda: len(provider.calls) == 5), provider.calls
        statuses = await h.statuses()
        assert statuses[slow] == "sending"
        provider.gate(slow).set()
    rows = open_store(store_url)
    try:
        assert {str(r["status"]) for r in rows.outbox_rows()} == {"sent"}
    finally:
        rows.close()


async def test_lost_outcome_is_never_resent(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The transaction recording a finished send fails (database gone): the sender logs
    it and goes on, and the reply, which may have left, stays ``sending`` under its
    lease (``unknown`` once it expires). At shutdown the leases are kept, not released:
    releasing them would have queued that reply again."""
    original = OutboxSender._record_all
    failures: list[int] = []

    def record_all(self: OutboxSender, done: list[Any]) -> Any:
        if not failures:
            failures.append(len(done))
            raise RuntimeError("connection lost")
        return original(self, done)

    monkeypatch.setattr(OutboxSender, "_record_all", record_all)
    provider = GatedProvider()
    async with sending(tmp_path, store_url, provider, concurrency=1) as h:
        h.enqueue(1)
        assert await until(lambda: failures == [1])
        h.enqueue(2, start=1)
        statuses = await h.statuses_until(lambda s: len(s) == 3 and s[number(2)] == "sent")
        assert statuses == {number(0): "sending", number(1): "sent", number(2): "sent"}
    assert provider.calls == [number(0), number(1), number(2)]
    rows = open_store(store_url)
    try:
        assert [str(r["status"]) for r in rows.outbox_rows()] == ["sending", "sent", "sent"]
    finally:
        rows.close()
    messages = [r.getMessage() for r in caplog.records]
    assert "outbox_error" in messages and "outbox_leases_kept" in messages


def test_a_batch_is_recorded_in_reply_id_order() -> None:
    """The look-up match locks a number's replies in id order (PostgreSQL); a batch of
    finished sends recorded in claim order could take the same rows in another order and
    deadlock. The batch is written in id order, its outcomes returned in its own."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from responder.store.base import OutboxItem

    written: list[int] = []
    store = SimpleNamespace(
        transaction=nullcontext,
        finish_outbox=lambda item_id, *a, **k: written.append(item_id),
        retry_outbox=lambda item_id, *a, **k: written.append(item_id))
    sender = object.__new__(OutboxSender)
    sender.core = SimpleNamespace(store=store, refund=lambda *a, **k: None)  # type: ignore[assignment]
    sender.clock = lambda: NOW  # type: ignore[method-assign]
    sender.breaker = CircuitBreaker(5, COOLDOWN_S, lambda: NOW)
    sender.max_attempts = 8
    sender.rng = random.Random(1)
    items = [OutboxItem(i, f"SM{i}", number(i), "+33644649021", "x", 160_000, 1, NOW)
             for i in (7, 3, 5)]
    results = [SendResult(Outcome.SENT, "ok", provider_sid="SMa"),
               SendResult(Outcome.RETRY, "http_5xx"),
               SendResult(Outcome.UNKNOWN, "timeout")]
    outcomes = sender._record_all(list(zip(items, results, strict=True)))
    assert written == [3, 5, 7]
    assert outcomes == [Outcome.SENT, Outcome.RETRY, Outcome.UNKNOWN]


async def test_a_timeout_the_status_callback_confirmed_is_reported_sent(
    tmp_path: Path, store_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """The send call times out, but the provider's status callback, which came while the
    call waited, already named the reply's message: the store records ``sent``, and the
    log and ``raidsim_replies_total`` must say ``sent`` too, not ``unknown`` (the
    RaidsimRepliesRefused alert divides by the sent replies)."""
    provider = GatedProvider({number(0), number(1)})
    provider.answers[number(0)] = SendResult(Outcome.UNKNOWN, "timeout", error="ReadTimeout")
    provider.answers[number(1)] = SendResult(Outcome.UNKNOWN, "timeout", error="ReadTimeout")
    caplog.set_level("INFO", logger="raidsim")
    async with sending(tmp_path, store_url, provider, concurrency=2) as h:
        h.enqueue(2)
        assert await until(lambda: len(provider.in_flight) == 2)
        # the callback for the first reply arrives while its call is still waiting
        assert h.writer.record_status("SMa", "delivered", None, now=NOW, reply_to="SM00")
        provider.gate(number(0)).set()
        provider.gate(number(1)).set()
        statuses = await h.statuses_until(lambda s: "sending" not in s.values())
        assert statuses == {number(0): "sent", number(1): "unknown"}
        replies = h.sender.metrics.replies
        assert await until(lambda: replies.labels("sent")._value.get() == 1)
        assert replies.labels("unknown")._value.get() == 1
        assert h.sender.metrics.provider_errors.labels("timeout")._value.get() == 2
    events = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reply_")]
    assert sorted(events) == ["reply_sent", "reply_unknown"]
