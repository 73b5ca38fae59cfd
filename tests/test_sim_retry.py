"""The simulator retries as the live outbox does (``responder.policy.retry``): the same backoff and
the same circuit breaker, so a simulated outage costs what a real one would."""

from __future__ import annotations

import random

from responder.policy import PolicyConfig
from responder.policy.retry import backoff_s
from sim.model import RaidModel
from sim.provider import Fault, ProviderModel, parse_provider
from sim.trace import TraceRecord

OUTAGE = Fault("outage", 100.0, 1100.0, 1.0)


def genuine_senders_in_an_outage(**provider: object) -> RaidModel:
    """20 genuine senders, one every 30 s from 150 s, during a 1000 s outage."""
    rng = random.Random(3)
    records = [TraceRecord(150.0 + 30 * i, f"+336{rng.randrange(10**8):08d}", "+33644649021",
                           f"Salut, c'est moi, numéro {i}", "legit", f"SM{i}")
               for i in range(20)]
    model = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=0.0,
                          **provider)  # type: ignore[arg-type]
    sim = RaidModel(PolicyConfig(), provider=model, faults=(OUTAGE,))
    sim.run(records)
    return sim


def test_the_breaker_keeps_replies_through_a_long_outage() -> None:
    """Without a breaker every reply burns its 8 attempts within about two minutes and is
    lost; with the live outbox's breaker the queue waits, one probe at a time, and the
    replies leave when the provider is back."""
    sim = genuine_senders_in_an_outage()
    m = sim.metrics
    assert len(m.replied_senders) >= 15  # only the replies used as probes can be lost
    assert m.rejected == 20 - len(m.replied_senders)
    assert m.provider_errors["connect_error"] < 20 * 8 / 2  # probes, not 8 tries each
    assert sim.breaker.trips >= 1
    # nothing left before the provider came back: the last sender wrote at 720 s
    assert min(m.legit_latencies) >= OUTAGE.end_s - 720.0
    never_trips = genuine_senders_in_an_outage(breaker_threshold=10**6)
    assert len(never_trips.metrics.replied_senders) == 0  # each reply spent its attempts


def test_backoff_is_the_live_outboxs() -> None:
    """Same draws, same delays: base 1 s doubling to 300 s, equal jitter, Retry-After."""
    rng = random.Random(7)
    delays = [backoff_s(attempt, rng) for attempt in (1, 2, 3, 10)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert 150.0 <= delays[3] <= 300.0
    assert backoff_s(1, rng, retry_after_s=30.0) == 30.0


def test_breaker_settings_come_from_the_provider_table() -> None:
    text = '[provider]\nbreaker_threshold = 3\nbreaker_cooldown = "1m"\n'
    model = parse_provider({"breaker_threshold": 3, "breaker_cooldown": "1m"}, path="s.toml",
                           text=text)
    assert (model.breaker_threshold, model.breaker_cooldown_s) == (3, 60.0)


def test_a_provider_too_slow_to_ever_drain_stops_at_the_horizon() -> None:
    """A segment per 31 years: the run stops once only events past MAX_SPAN_S are left,
    instead of running the clock (and the per-minute series) out of memory; the replies
    left are counted, not spent."""
    from sim.metrics import MAX_SPAN_S
    from sim.run import horizon_warning

    rng = random.Random(4)
    records = [TraceRecord(10.0 * i, f"+336{rng.randrange(10**8):08d}", "+33644649021",
                           f"Bonsoir, on s'est vus au concert {i}", "legit", f"SM{i}")
               for i in range(3)]
    model = ProviderModel(segments_per_second=1e-9, error_rate=0.0, rate_limit_rate=0.0,
                          timeout_rate=0.0)
    outcome = RaidModel(PolicyConfig(), provider=model).run(records)
    assert outcome.end_s < MAX_SPAN_S
    assert outcome.unsent_at_horizon == 2  # the first left at once; two wait for tokens
    assert outcome.metrics.replied_senders and len(outcome.metrics.replied_senders) == 1
    warning = horizon_warning({"stopped_at_horizon": {"at_s": outcome.end_s,
                                                      "replies_never_sent": 2}})
    assert warning is not None and "2 replies were never sent" in warning
    assert horizon_warning({}) is None
