"""The outbox sender: leases due replies, sends them, records what surely happened.

A reply is marked ``sending`` (committed) before its HTTP request leaves, so a
crash can only turn it into ``unknown``, never into a second SMS. Only outcomes
that prove the SMS was not sent (``provider.Outcome.RETRY``) put it back in the
queue, after a backoff with jitter drawn from an injected ``random.Random``; a
``Retry-After`` is honoured. A circuit breaker stops calling a provider that
keeps failing and probes it with one request after a cool-down.

Sends are pipelined: up to ``concurrency`` provider calls are in flight, and a slot
freed by a finished call is refilled by the next claim while the others are still
waiting for their answers, so one slow call never holds back the rest of the queue.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from responder.logs import enabled, event, pseudonymise, redact_id, redact_numbers
from responder.metrics import Metrics
from responder.policy.retry import CircuitBreaker, backoff_s
from responder.provider import Lookup, Outcome, SendResult, TwilioClient
from responder.service import DbThread, Responder
from responder.store import FAILED, PENDING, SENT, UNKNOWN, OutboxItem

LEASE_S = 120.0          # far above connect + read timeouts: a live worker always finishes first
IDLE_POLL_S = 0.5        # other processes may queue replies: look at least this often
LEASE_SWEEP_S = 15.0
# Replies whose outcome is unknown are looked up at the provider (its Messages list):
RECONCILE_EVERY_S = 30.0   # how often the sender looks for unknown replies to check
RECONCILE_GRACE_S = 60.0   # after a reply became unknown: a status callback may settle it
RECONCILE_MAX_CHECKS = 5   # look-ups per reply, 60 s, 2, 4, 8, 16 min apart; then it stays
RECONCILE_BATCH = 20       # replies looked up per pass
CLOCK_SKEW_S = 300.0       # the provider's clock may differ from ours by this much


class _Loop:
    """What the send loop carries from one pass to the next."""

    def __init__(self) -> None:
        self.next_sweep = 0.0
        self.drain_deadline: float | None = None
        self.backlog = False  # the last claim was full: more replies are probably due
        self.claiming = True  # False once the drain is over: only in-flight sends are left
        self.inflight: dict[asyncio.Future[SendResult], OutboxItem] = {}
        self.unrecorded = 0  # sends whose outcome a failed transaction lost
        self.next_reconcile = 0.0
        self.reconciling: asyncio.Future[None] | None = None


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
        rate_per_s: float = 0.0,
    ) -> None:
        self.core = core
        self.rate_per_s = rate_per_s
        self._tokens = float(concurrency)
        self._refilled: float | None = None
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
        """Send until ``stopping`` is set; then drain due replies for up to ``drain_timeout_s``.

        Sends already in flight when the drain ends are finished and recorded before
        ``run`` returns. A failing step (the database gone for a moment) is logged and
        tried again after ``IDLE_POLL_S``: the sender must outlive any error, or the
        service would go on accepting webhooks and reserving money for replies that
        never leave.
        """
        state = _Loop()
        loop = asyncio.get_running_loop()
        try:
            while state.claiming or state.inflight:
                if stopping.is_set() and state.drain_deadline is None:
                    state.drain_deadline = loop.time() + drain_timeout_s
                if state.drain_deadline is not None and loop.time() >= state.drain_deadline:
                    state.claiming = False
                try:
                    await self._step(state, stopping, loop)
                except Exception as exc:
                    event("outbox_error", level=40,
                          error=redact_numbers(self._key, f"{type(exc).__name__}: {exc}"))
                    await self._sleep(state, stopping, IDLE_POLL_S, wake=False)
        finally:
            for task in state.inflight:  # only when cancelled: those replies become unknown
                task.cancel()
            if state.reconciling is not None and not state.reconciling.done():
                state.reconciling.cancel()  # a look-up cut short changes nothing
        if state.unrecorded:
            # Those replies are still ``sending`` under our lease, and may have left:
            # releasing our leases would queue them again. They become ``unknown`` when
            # the lease expires (and so do claimed replies that never left).
            event("outbox_leases_kept", level=30, unrecorded=state.unrecorded)
            return
        await self.db.call(self.core.store.release_own_leases, self.owner, now=self.clock())

    async def _step(self, state: _Loop, stopping: asyncio.Event,
                    loop: asyncio.AbstractEventLoop) -> None:
        """One pass of the send loop: record finished sends, then fill free send slots."""
        await self._record_finished(state)
        if not state.claiming:
            if state.inflight:
                await self._sleep(state, stopping, IDLE_POLL_S, wake=False)  # a send finishing
            return
        store = self.core.store
        draining = state.drain_deadline is not None
        now = self.clock()
        if now >= state.next_sweep:
            for sid, status in await self.db.call(store.expire_leases, now=now):
                event("outbox_lease_expired", message_sid=redact_id(self._key, sid),
                      outcome=status)
            state.next_sweep = now + LEASE_SWEEP_S
        if (not draining and now >= state.next_reconcile
                and (state.reconciling is None or state.reconciling.done())):
            state.next_reconcile = now + RECONCILE_EVERY_S
            state.reconciling = asyncio.ensure_future(self._reconcile())
        wait = self.breaker.wait_s()
        self.metrics.breaker.set(1 if wait > 0 else 0)
        if wait > 0:
            if draining:
                state.claiming = False  # no point draining into an open circuit
                return
            await self._sleep(state, stopping, min(wait, IDLE_POLL_S), wake=False)
            return
        # Free slots; half-open: one probe, and only once every earlier call has answered.
        limit = (1 if self.breaker.state == "half_open" else self.concurrency) - len(state.inflight)
        if limit <= 0:
            await self._sleep(state, stopping, IDLE_POLL_S, wake=False)  # a send finishing
            return
        if await self.db.call(store.kill_switch):
            if draining:
                state.claiming = False
                return
            await self._sleep(state, stopping, IDLE_POLL_S, wake=False)  # polls the switch
            return
        if self.rate_per_s > 0:
            # With a backlog, wait for tokens for every free slot: one claim per group of
            # replies instead of per reply, at the same paced rate.
            want = limit if state.backlog else 1
            tokens = self._take_tokens(loop.time())
            if tokens < want:
                # New replies cannot make the bucket refill sooner: don't wake for them.
                await self._sleep(state, stopping,
                                  min(IDLE_POLL_S, (want - self._tokens) / self.rate_per_s),
                                  wake=False)
                return
            limit = min(limit, tokens)
        # Cleared before the claim: a reply queued from now on wakes the idle wait below.
        self.wake.clear()
        items, cancelled = await self.db.call(self.core.claim, now=now, limit=limit,
                                              owner=self.owner, lease_s=LEASE_S)
        state.backlog = len(items) + len(cancelled) == limit
        if cancelled:
            self.cancelled(len(cancelled), "blocked")
            if not items:
                return  # claim again at once: more may be due
        if not items:
            if draining:
                state.claiming = False  # drained: nothing due is left
                return
            due = await self.db.call(store.next_outbox_due)
            idle = IDLE_POLL_S if due is None else min(IDLE_POLL_S, max(0.0, due - now))
            await self._sleep(state, stopping, idle)
            return
        self._tokens -= len(items)
        for item in items:  # claimed (committed) above: each leaves exactly once, now
            state.inflight[asyncio.ensure_future(self._send(item))] = item

    async def _record_finished(self, state: _Loop) -> None:
        """Record every send finished so far in one transaction, then report them."""
        finished = [task for task in state.inflight if task.done()]
        if not finished:
            return
        done = [(state.inflight.pop(task), task.result()) for task in finished]
        try:
            outcomes = await self.db.call(self._record_all, done)
        except Exception:
            # Never recorded twice (a lost commit acknowledgement would requeue or refund
            # again): these stay ``sending`` and become ``unknown`` when the lease expires.
            state.unrecorded += len(done)
            raise
        for (item, result), outcome in zip(done, outcomes, strict=True):
            self._report(item, result, outcome)

    def _take_tokens(self, monotonic_now: float) -> int:
        """Provider calls allowed now by the send-rate token bucket (burst: concurrency)."""
        if self._refilled is not None:
            elapsed = monotonic_now - self._refilled
            self._tokens = min(float(self.concurrency), self._tokens + elapsed * self.rate_per_s)
        self._refilled = monotonic_now
        return int(self._tokens)

    async def _sleep(self, state: _Loop, stopping: asyncio.Event, seconds: float, *,
                     wake: bool = True) -> None:
        """Sleep ``seconds``, or less if stopping is set, a send in flight finishes, or
        (with ``wake``) a reply is queued."""
        waiters: list[asyncio.Future[Any]] = []
        if wake:
            if self.wake.is_set():
                return
            waiters.append(asyncio.ensure_future(self.wake.wait()))
        if not stopping.is_set():
            waiters.append(asyncio.ensure_future(stopping.wait()))
        if not waiters and not state.inflight:
            await asyncio.sleep(max(0.0, seconds))
            return
        await asyncio.wait([*waiters, *state.inflight], timeout=max(0.0, seconds),
                           return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:  # never the sends: they are reaped by the next step
            waiter.cancel()

    async def _reconcile(self) -> None:
        """Look up ``unknown`` replies at the provider: a reply it holds is ``sent``; one
        it surely never created (a worker killed before its request left, a timeout on a
        request the provider dropped) is queued again, so the sender gets the reply that
        was paid for. Unclear answers are looked up again later, a bounded number of
        times. Runs beside the sends; a failure is logged and tried at the next pass."""
        store = self.core.store
        try:
            due = await self.db.call(store.unknown_to_check, now=self.clock(),
                                     limit=RECONCILE_BATCH, grace_s=RECONCILE_GRACE_S,
                                     max_checks=RECONCILE_MAX_CHECKS)
            for item, checks in due:
                # Several replies may go to one number (a sender limit above one, a
                # refund): a provider message already matched to one is not another's.
                taken = await self.db.call(store.provider_sids_to, item.recipient, item.id)
                if taken is None:  # another reply to this number is on its way: wait
                    now = self.clock()
                    await self.db.call(store.postpone_check, item.id, checks,
                                       at=now + RECONCILE_GRACE_S, now=now)
                    continue
                result = await self.client.find_sent(to=item.recipient, from_=item.from_number,
                                                     since=item.created_at - CLOCK_SKEW_S,
                                                     taken=taken)
                now = self.clock()
                found = {Lookup.FOUND: True, Lookup.ABSENT: False}.get(result.lookup)
                status = await self.db.call(
                    store.record_check, item.id, checks, found=found, now=now,
                    provider_sid=result.provider_sid, provider_status=result.status,
                    next_check_at=now + RECONCILE_GRACE_S * 2 ** (checks + 1))
                self.metrics.reconciled.labels(str(result.lookup)).inc()
                event("reply_looked_up", message_sid=redact_id(self._key, item.message_sid),
                      to=pseudonymise(self._key, item.recipient), lookup=str(result.lookup),
                      status=status, provider_sid=result.provider_sid, check=checks + 1,
                      error=redact_numbers(self._key, result.error))
                if status == PENDING:
                    self.wake.set()  # due now
        except Exception as exc:
            event("outbox_error", level=40,
                  error=redact_numbers(self._key, f"{type(exc).__name__}: {exc}"))

    async def _send(self, item: OutboxItem) -> SendResult:
        try:
            return await self.client.send(to=item.recipient, from_=item.from_number,
                                          body=item.body, now=self.clock(),
                                          reply_to=item.message_sid)
        except Exception as exc:  # a bug or an odd answer: it may have left, never resend
            return SendResult(Outcome.UNKNOWN, "error", error=f"{type(exc).__name__}: {exc}")

    def _record_all(self, done: list[tuple[OutboxItem, SendResult]]) -> list[Outcome]:
        """On the DB thread, in one transaction: what each send proved."""
        store, now = self.core.store, self.clock()
        outcomes: dict[int, Outcome] = {}
        with store.transaction():
            # Rows in id order, as every other writer locks a number's replies (the look-up
            # match, _sid_taken): in claim order, two batches could deadlock on PostgreSQL.
            for k in sorted(range(len(done)), key=lambda k: done[k][0].id):
                item, result = done[k]
                outcome = result.outcome
                if outcome is Outcome.SENT or outcome is Outcome.FAILED:
                    self.breaker.success()  # the provider answered
                else:
                    self.breaker.failure()
                if outcome is Outcome.RETRY and item.attempts >= self.max_attempts:
                    outcome = Outcome.FAILED  # surely never sent: give the money back
                if outcome is Outcome.SENT:
                    store.finish_outbox(item.id, SENT, now=now, provider_sid=result.provider_sid,
                                        provider_status=result.status, segments=result.segments)
                elif outcome is Outcome.RETRY:
                    delay = backoff_s(item.attempts, self.rng, result.retry_after_s)
                    store.retry_outbox(item.id, at=now + delay, now=now,
                                       error=result.error or result.kind)
                elif outcome is Outcome.FAILED:
                    store.finish_outbox(item.id, FAILED, now=now, error=result.error)
                    self.core.refund(item, now=now)
                elif store.finish_outbox(item.id, UNKNOWN, now=now, error=result.error) == SENT:
                    # our call's answer was lost, but the provider's status callback had
                    # already named this reply's message: it was sent, and is reported so
                    outcome = Outcome.SENT
                outcomes[k] = outcome
        return [outcomes[k] for k in range(len(done))]

    def cancelled(self, count: int, reason: str) -> None:
        """Report ``count`` queued replies cancelled (never sent, refunded): their number
        was ``blocked`` by an operator, or its owner ``opted_out``."""
        self.metrics.replies.labels("cancelled").inc(count)
        event("replies_cancelled", count=count, reason=reason)

    def _report(self, item: OutboxItem, result: SendResult, outcome: Outcome) -> None:
        """Count and log what the store recorded (``outcome``), and the call's error."""
        if result.outcome is not Outcome.SENT:
            self.metrics.provider_errors.labels(result.kind).inc()
        elif result.segments:
            self.metrics.segments.inc(result.segments)
        self.metrics.replies.labels(str(outcome)).inc()
        if not enabled():
            return
        event(
            "reply_" + str(outcome),
            message_sid=redact_id(self._key, item.message_sid),
            to=pseudonymise(self._key, item.recipient),
            attempt=item.attempts,
            kind=result.kind,
            provider_sid=result.provider_sid,
            error=redact_numbers(self._key, result.error),  # Twilio's texts name the number
        )
