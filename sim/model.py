"""The SimPy model: inbound traffic -> policy -> ledger -> reply queue -> provider.

It drives the same ``responder.policy`` code as the live service, with a
simulated clock (``env.now``) and an in-memory ledger. Arrivals are one
timeout each (no process per message), the timer process wakes the policy
when its ``next_deadline`` comes due, and a pool of sender workers moves the
reply queue through the provider model: throughput, lognormal latency, 5xx,
429 with Retry-After, read timeouts (billed, never resent) and outages. The workers
retry as the live outbox does (``responder.policy.retry``: its backoff and its circuit
breaker), so a simulated outage costs what a real one would. An opt-out cancels its
sender's replies still queued, as the live responder cancels its ``pending`` outbox rows.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import simpy

from responder.policy import (
    Action,
    Caps,
    Decision,
    MemoryLedger,
    Message,
    PolicyConfig,
    PolicyState,
    TextSketches,
    admit,
    next_deadline,
    release,
)
from responder.policy.engine import is_e164, record_refund, tick
from responder.policy.retry import CircuitBreaker, backoff_s
from responder.sms import segment_info
from sim.metrics import MAX_SPAN_S, Metrics
from sim.provider import Fault, ProviderModel

_GC_YOUNG_THRESHOLD = 20_000


@contextmanager
def quiet_gc() -> Iterator[None]:
    """The cyclic collector tuned for one run; no result depends on it.

    A run allocates millions of short-lived objects (events, messages) next to a large
    long-lived state; CPython's default young-generation threshold (700) makes the
    collector rescan that state thousands of times, so the threshold is raised for the
    run (about a sixth of the CPU). What existed before the run (the caller's traffic
    records, shared text sketches) is frozen out of the collector's scans meanwhile
    (``gc.freeze``, another tenth), unless the caller froze objects of its own.
    """
    thresholds = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *thresholds[1:])
    if freeze:
        # Collect first: what is frozen is never collected, and the garbage of an earlier
        # run in this process (a sweep's or replications' previous point, a SimPy
        # environment full of cycles) would otherwise be frozen with the live objects,
        # run after run, and memory would grow with every point. Cheap on a first run.
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()
        gc.set_threshold(*thresholds)


class InboundRecord(Protocol):
    """What the model needs from a trace record (``sim.trace.TraceRecord`` fits)."""

    @property
    def t(self) -> float: ...
    @property
    def sender(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def label(self) -> str | None: ...
    @property
    def message_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Job:
    message: Message
    label: str | None
    reserved_at: float


@dataclass
class RunOutcome:
    metrics: Metrics
    state: PolicyState
    ledger: MemoryLedger
    end_s: float
    decisions: list[tuple[str, str, str]] | None  # (message_id, action, rule) if recorded
    # replies still queued, being sent or held when the run stopped at MAX_SPAN_S (else 0)
    unsent_at_horizon: int = 0


class RaidModel:
    """One simulation run. Build it, then ``run(records)``."""

    def __init__(
        self,
        policy: PolicyConfig,
        *,
        provider: ProviderModel | None = None,
        faults: tuple[Fault, ...] = (),
        seed: int = 0,
        record_decisions: bool = False,
        progress: Callable[[int], None] | None = None,
        sketches: TextSketches | None = None,
    ) -> None:
        self.policy = policy
        self.provider = provider or ProviderModel()
        self.faults = faults
        self.rng = random.Random(f"provider:{seed}")
        self.env = simpy.Environment()
        self.state = PolicyState(policy, sketches=sketches)
        budget = policy.budget
        self.ledger = MemoryLedger(
            Caps(budget.total_micros, budget.per_hour_micros) if budget.enabled else Caps()
        )
        self.cost = policy.reply_cost_micros
        self.segments = segment_info(policy.reply_text).segments
        self.metrics = Metrics(reply_cost_micros=self.cost)
        self.queue: simpy.Store = simpy.Store(self.env)
        self.labels: dict[str, str | None] = {}
        self.pending_held = 0
        self.arrivals_done = False
        self._kick: simpy.Event = self.env.event()
        self._token_free_at = 0.0
        env = self.env
        self.breaker = CircuitBreaker(self.provider.breaker_threshold,
                                      self.provider.breaker_cooldown_s, lambda: env.now)
        self._in_flight = 0  # provider calls waiting for their answer
        self._busy = 0  # replies a worker has taken and not finished
        self._probing = False  # a half-open probe is out
        self._answered: simpy.Event = env.event()  # fires (and is renewed) at each answer
        # replies a worker holds while it backs off before trying again, by message id:
        # queued, as far as the live outbox knows (``pending``), so an opt-out cancels them
        # (takes them out of here: the worker finds its reply gone when it wakes)
        self._backing_off: dict[str, _Job] = {}
        self.record = record_decisions
        self.decisions: list[tuple[str, str, str]] = []
        self.progress = progress

    # ------------------------------------------------------------------ drivers

    def run(self, records: Iterable[InboundRecord]) -> RunOutcome:
        env = self.env
        env.process(self._arrivals(records))
        env.process(self._timer())
        for _ in range(self.provider.workers):
            env.process(self._worker())
        # Run until nothing is left to do, but never past MAX_SPAN_S: a provider set to a
        # segment a year, or a hold of years, would otherwise run the clock (and the
        # per-minute time series) without end. Every event up to it runs as env.run()
        # would run it, so results are the same whenever the run ends sooner.
        peek, step = env.peek, env.step
        with quiet_gc():
            while peek() <= MAX_SPAN_S:
                step()
        unsent = 0
        if peek() != math.inf:  # stopped at the horizon with work left
            unsent = len(self.queue.items) + self._busy + len(self.state.held)
        end = env.now
        tick(self.state, now=end)
        return RunOutcome(self.metrics, self.state, self.ledger, end,
                          self.decisions if self.record else None, unsent)

    def _arrivals(self, records: Iterable[InboundRecord]) -> Any:
        env = self.env
        timeout = env.timeout
        inbound = self.metrics.inbound
        state = self.state
        ledger = self.ledger
        apply = self._apply
        progress = self.progress
        peek = env.peek
        drop = Action.DROP
        deadline_of = next_deadline
        count = 0
        now = env.now
        for rec in records:
            t = rec.t
            # An arrival earlier than every scheduled event is decided without an event
            # of its own: nothing else can run before it, so deciding it now, at its own
            # time t, is what waking at t would do. A drop touches no other process; a
            # reply or a hold does, so the clock is brought to t before it is handed on.
            early = t > env.now and t < peek()
            if t > env.now and not early:
                yield timeout(t - env.now)
            now = t if early else env.now
            due = None if early else deadline_of(state)
            if due is not None and due <= now:
                # Held replies due at this very time go first, as in the live driver
                # (``responder.app.advance_policy_clock``): the timer, woken at the same
                # time, may come after this arrival in SimPy's queue.
                self._release_due(now)
            label = rec.label
            inbound(rec.sender, label, now)
            msg = Message(rec.message_id, rec.sender, rec.to, rec.body, now)
            decision = admit(state, ledger, msg, now=now)
            if early and decision.action is not drop:
                yield timeout(t - env.now)
            apply(msg, label, decision, now)
            count += 1
            if progress is not None and count % 2000 == 0:
                progress(count)
        if now > env.now:
            yield timeout(now - env.now)
        if progress is not None:
            progress(count)
        self.arrivals_done = True
        self._wake()

    def _apply(self, msg: Message, label: str | None, decision: Decision, now: float) -> None:
        if self.record:
            self.decisions.append((msg.message_id, decision.action.value, decision.rule))
        action = decision.action
        if action is Action.DROP:  # the commonest: raiders' messages
            rule = decision.rule
            self.metrics.decision(rule, now)
            if rule == "budget_total" and self.metrics.budget_exhausted_at is None:
                self.metrics.budget_exhausted_at = now
            elif rule == "opt_out":
                self._cancel_replies_to(msg.sender, now)
        elif action is Action.REPLY:
            self.metrics.decision(decision.rule, now)
            self.queue.put(_Job(msg, label, now))
        else:
            self.labels[msg.message_id] = label
            self.metrics.held += 1
            self._wake()

    def _cancel_replies_to(self, sender: str, now: float) -> None:
        """The sender opted out: its replies still queued (waiting for a worker, or backing
        off before another try) are cancelled and refunded, as the live responder cancels
        its outbox's ``pending`` rows; one a worker is sending goes."""
        items = self.queue.items
        queued = [job for job in items if job.message.sender == sender]
        for job in queued:
            items.remove(job)
        waiting = [job for job in self._backing_off.values() if job.message.sender == sender]
        for job in waiting:
            del self._backing_off[job.message.message_id]
        for job in (*queued, *waiting):
            self.metrics.rejected += 1
            message_id = job.message.message_id
            self.ledger.settle(message_id, billed=False, now=now)
            record_refund(self.state, message_id, self.cost, sender=sender)

    def _wake(self) -> None:
        if not self._kick.triggered:
            self._kick.succeed()

    def _timer(self) -> Any:
        env = self.env
        while True:
            deadline = next_deadline(self.state)
            if deadline is None:
                if self.arrivals_done:
                    return
                self._kick = env.event()
                yield self._kick
                continue
            if deadline > env.now:
                self._kick = env.event()
                yield env.timeout(deadline - env.now) | self._kick
                continue
            self._release_due(env.now)

    def _release_due(self, now: float) -> None:
        """Decide again the held replies due at or before ``now``."""
        for item in release(self.state, self.ledger, now=now):
            label = self.labels.get(item.message.message_id)
            if item.decision.action is not Action.DEFER:
                self.labels.pop(item.message.message_id, None)
            self._apply(item.message, label, item.decision, now)

    # ------------------------------------------------------------------ provider

    def _fault_rate(self, kind: str, now: float) -> float:
        rate = 0.0
        for fault in self.faults:
            if fault.kind == kind and fault.start_s <= now < fault.end_s:
                rate = max(rate, fault.rate)
        return rate

    def _worker(self) -> Any:
        env = self.env
        model = self.provider
        rng = self.rng
        sigma = model.sigma
        breaker = self.breaker
        while True:
            job: _Job = yield self.queue.get()
            self._busy += 1
            attempts = 0
            while True:
                # The live outbox's circuit breaker: no call while it is open; half-open,
                # one probe, and only once every earlier call has answered.
                probe = False
                while True:
                    wait = breaker.wait_s()
                    if wait > 0:
                        yield env.timeout(wait)
                        continue
                    if breaker.state == "half_open":
                        if self._in_flight or self._probing:
                            yield self._answered  # a call in flight answers, then look again
                            continue
                        self._probing = probe = True
                    break
                attempts += 1
                now = env.now
                if not is_e164(job.message.sender):
                    # no provider sends to a short code or a sender id (policy settings
                    # senders.reply_to_*): refused at once, before any fault is drawn, and
                    # never billed, as scenarios.fake_provider refuses it (21211)
                    outcome = "rejected"
                    latency = 0.0
                elif rng.random() < self._fault_rate("outage", now):
                    # the connection fails: the provider never sees the request, so it
                    # takes none of its throughput (as scenarios.fake_provider refuses it)
                    outcome = "connect_error"
                    latency = 0.05
                else:
                    # throughput: the provider accepts segments at a fixed rate
                    start = max(now, self._token_free_at)
                    self._token_free_at = start + self.segments / model.segments_per_second
                    if start > now:
                        yield env.timeout(start - now)
                        now = env.now
                    latency = model.latency_median_s * (rng.lognormvariate(0.0, sigma)
                                                        if sigma else 1.0)
                    draw = rng.random()
                    timeout_rate = max(model.timeout_rate, self._fault_rate("timeouts", now))
                    limit_rate = max(model.rate_limit_rate, self._fault_rate("rate_limit", now))
                    error_rate = max(model.error_rate, self._fault_rate("errors", now))
                    if draw < timeout_rate:
                        outcome = "timeout"
                    elif draw < timeout_rate + limit_rate:
                        outcome = "rate_limited"
                    elif draw < timeout_rate + limit_rate + error_rate:
                        outcome = "server_error"
                    elif draw < timeout_rate + limit_rate + error_rate + model.reject_rate:
                        outcome = "rejected"
                    else:
                        outcome = "accepted"
                self._in_flight += 1
                yield env.timeout(latency)
                self._in_flight -= 1
                if probe:
                    self._probing = False
                # the provider answered (sent or refused for good), or it did not
                if outcome == "accepted" or outcome == "rejected":
                    breaker.success()
                else:
                    breaker.failure()
                answered, self._answered = self._answered, env.event()
                answered.succeed()
                if outcome == "accepted" or outcome == "timeout":
                    if outcome == "timeout":
                        # Maybe billed: count it as spent, never resend.
                        self.metrics.unknown_outcomes += 1
                        self.metrics.provider_errors["timeout"] += 1
                    msg = job.message
                    # latency ends when the reply left for the provider (``now``), not
                    # when the provider answered (docs/results.md, reply_latency_s)
                    self.metrics.sent(msg.sender, job.label, msg.received_at, env.now,
                                      self.segments, self.cost, left_at=now)
                    break
                self.metrics.provider_errors[outcome] += 1
                if outcome == "rejected" or attempts >= model.max_attempts:
                    self.metrics.rejected += 1
                    msg = job.message
                    self.ledger.settle(msg.message_id, billed=False, now=env.now)
                    record_refund(self.state, msg.message_id, self.cost, sender=msg.sender)
                    break
                # the live outbox's backoff: exponential with jitter, never before Retry-After
                message_id = job.message.message_id
                self._backing_off[message_id] = job
                yield env.timeout(backoff_s(
                    attempts, rng, model.retry_after_s if outcome == "rate_limited" else None))
                if self._backing_off.pop(message_id, None) is None:
                    break  # its sender opted out meanwhile: cancelled and refunded
            self._busy -= 1
