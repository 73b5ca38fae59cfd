"""The outbox sender: leases due replies, sends them, records what surely happened.

A reply is marked ``sending`` (committed) before its HTTP request leaves, so a
crash can only turn it into ``unknown``, never into a second SMS. Only outcomes
that prove the SMS was not sent (``provider.Outcome.RETRY``) put it back in the
queue, after a backoff with jitter drawn from an injected ``random.Random``; a
``Retry-After`` is honoured. A circuit breaker stops calling a provider that
keeps failing and probes it with one request after a cool-down.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable

from responder.logs import event, pseudonymise
from responder.metrics import Metrics
from responder.provider import Outcome, SendResult, TwilioClient
from responder.service import DbThread, Responder
from responder.store import FAILED, SENT, UNKNOWN, OutboxItem

LEASE_S = 120.0          # far above connect + read timeouts: a live worker always finishes first
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
RETRY_AFTER_CAP_S = 3600.0
IDLE_POLL_S = 0.5        # other processes may queue replies: look at least this often
LEASE_SWEEP_S = 15.0


class CircuitBreaker:
    """closed -> open after ``threshold`` consecutive failures -> half-open after cool-down."""

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.trips = 0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._clock() >= self.opened_at + self.cooldown_s else "open"

    def wait_s(self) -> float:
        """Seconds until a call may go out (0 when closed or half-open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown_s - self._clock())

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = self._clock()  # (re)open: a failed probe restarts the cool-down
            self.trips += 1


def backoff_s(attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
    """Exponential backoff with equal jitter; never shorter than the provider's Retry-After."""
    ceiling: float = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** max(0, attempt - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after_s is not None and math.isfinite(retry_after_s):
        delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
    return delay


class OutboxSender:
    def __init__(
        self,
        core: Responder,
        db: DbThread,
        client: TwilioClient,
        metrics: Metrics,
        *,
        owner: str,
        concurrency: int,
        max_attempts: int,
        breaker: CircuitBreaker,
        rng: random.Random,
        clock: Callable[[], float],
    ) -> None:
        self.core = core
        self.db = db
        self.client = client
        self.metrics = metrics
        self.owner = owner
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.breaker = breaker
        self.rng = rng
        self.clock = clock
        self.wake = asyncio.Event()
        self._key = core.settings.pseudonym_secret

    async def run(self, stopping: asyncio.Event, drain_timeout_s: float) -> None:
        """Send until ``stopping`` is set; then drain due replies for up to ``drain_timeout_s``."""
        store = self.core.store
        next_sweep = 0.0
        drain_deadline: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            if stopping.is_set() and drain_deadline is None:
                drain_deadline = loop.time() + drain_timeout_s
            if drain_deadline is not None and loop.time() >= drain_deadline:
                break
            now = self.clock()
            if now >= next_sweep:
                for sid in await self.db.call(store.expire_leases, now=now):
                    event("outbox_lease_expired", message_sid=sid, outcome=UNKNOWN)
                next_sweep = now + LEASE_SWEEP_S
            wait = self.breaker.wait_s()
            self.metrics.breaker.set(1 if wait > 0 else 0)
            if wait > 0:
                if drain_deadline is not None:
                    break  # no point draining into an open circuit
                await self._sleep(stopping, min(wait, IDLE_POLL_S))
                continue
            if await self.db.call(store.kill_switch):
                if drain_deadline is not None:
                    break
                await self._sleep(stopping, IDLE_POLL_S)
                continue
            limit = 1 if self.breaker.state == "half_open" else self.concurrency
            items = await self.db.call(store.claim_outbox, now=now, limit=limit, owner=self.owner,
                                       lease_s=LEASE_S)
            if not items:
                if drain_deadline is not None:
                    break  # drained: nothing due is left
                due = await self.db.call(store.next_outbox_due)
                idle = IDLE_POLL_S if due is None else min(IDLE_POLL_S, max(0.0, due - now))
                await self._sleep(stopping, idle)
                continue
            await asyncio.gather(*(self._deliver(item) for item in items))
        await self.db.call(store.release_own_leases, self.owner, now=self.clock())

    async def _sleep(self, stopping: asyncio.Event, seconds: float) -> None:
        self.wake.clear()
        waiters = [asyncio.ensure_future(self.wake.wait())]
        if not stopping.is_set():
            waiters.append(asyncio.ensure_future(stopping.wait()))
        _done, pending = await asyncio.wait(waiters, timeout=max(0.0, seconds),
                                            return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def _deliver(self, item: OutboxItem) -> None:
        result = await self.client.send(to=item.recipient, from_=item.from_number, body=item.body,
                                        now=self.clock())
        await self._record(item, result)

    async def _record(self, item: OutboxItem, result: SendResult) -> None:
        store, now = self.core.store, self.clock()
        outcome = result.outcome
        if outcome is not Outcome.SENT:
            self.metrics.provider_errors.labels(result.kind).inc()
        if outcome is Outcome.SENT or outcome is Outcome.FAILED:
            self.breaker.success()  # the provider answered
        else:
            self.breaker.failure()
        if outcome is Outcome.RETRY and item.attempts >= self.max_attempts:
            outcome = Outcome.FAILED  # surely never sent: give the money back
        if outcome is Outcome.SENT:
            await self.db.call(store.finish_outbox, item.id, SENT, now=now,
                               provider_sid=result.provider_sid, provider_status=result.status,
                               segments=result.segments)
            if result.segments:
                self.metrics.segments.inc(result.segments)
        elif outcome is Outcome.RETRY:
            delay = backoff_s(item.attempts, self.rng, result.retry_after_s)
            await self.db.call(store.retry_outbox, item.id, at=now + delay, now=now,
                               error=result.error or result.kind)
        elif outcome is Outcome.FAILED:
            await self.db.call(store.finish_outbox, item.id, FAILED, now=now, error=result.error)
            await self.db.call(self.core.refund, item)
        else:
            await self.db.call(store.finish_outbox, item.id, UNKNOWN, now=now, error=result.error)
        self.metrics.replies.labels(str(outcome)).inc()
        event(
            "reply_" + str(outcome),
            message_sid=item.message_sid,
            to=pseudonymise(self._key, item.recipient),
            attempt=item.attempts,
            kind=result.kind,
            provider_sid=result.provider_sid,
            error=result.error,
        )
