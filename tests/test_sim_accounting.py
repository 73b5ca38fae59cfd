"""The simulator's accounting and provider model, checked against hand-made traces.

Each test builds a few messages by hand, runs ``sim.model.RaidModel`` on them with a
provider whose every outcome and latency is fixed, and compares what it measured with
what the results contract (docs/results.md) says, computed by hand.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from responder.policy import PolicyConfig
from responder.policy.config import Budget
from sim.metrics import percentile
from sim.model import RaidModel
from sim.provider import Fault, ProviderModel
from sim.run import _ci95, _money_ci
from sim.trace import TraceRecord

TO = "+33644649021"


def record(t: float, n: int, body: str | None = None, label: str = "legit") -> TraceRecord:
    """Message ``n`` of sender ``n``: numbers far apart (no rented block), short texts."""
    return TraceRecord(t, f"+336{(n * 7_368_787 + 1_000_000) % 10**8:08d}", TO,
                       body or f"salut {n}", label, f"SM{n:032x}")


def provider(**changes: float) -> ProviderModel:
    """No errors, and every API call answers after exactly ``latency_median_s``."""
    fixed = {"latency_median_s": 2.0, "latency_p95_s": 2.0, "error_rate": 0.0,
             "rate_limit_rate": 0.0, "timeout_rate": 0.0, "reject_rate": 0.0}
    fixed.update(changes)
    return ProviderModel(**fixed)  # type: ignore[arg-type]


def run(records: list[TraceRecord], *, model: ProviderModel, faults: tuple[Fault, ...] = (),
        policy: PolicyConfig | None = None, seed: int = 0) -> RaidModel:
    sim = RaidModel(policy or PolicyConfig(), provider=model, faults=faults, seed=seed)
    sim.run(records)
    return sim


def test_latency_runs_from_inbound_to_the_reply_leaving_for_the_provider() -> None:
    """docs/results.md: reply latency ends when the reply leaves, not when the provider answers.

    Three first contacts, 100 s apart, each answered at once: every reply leaves the
    instant its message arrives (10 segments/s, the queue is empty), so every latency is
    0 s; the provider's 2 s response time is not part of it.
    """
    sim = run([record(100.0 * i, i) for i in range(3)], model=provider())
    assert sim.metrics.legit_latencies == [0.0, 0.0, 0.0]


def test_latency_includes_the_wait_for_throughput_and_for_a_free_worker() -> None:
    """Waiting for the provider's throughput or for a sender worker is latency.

    Thirty first contacts at t = 0; the provider takes 10 one-segment replies a second
    and answers each call after 2 s; 4 workers each hold one call at a time. Reply i
    leaves at 2 * (i // 4) + 0.1 * (i % 4) s: 0, 0.1, 0.2, 0.3, then 2.0, 2.1, ...
    """
    sim = run([record(0.0, i) for i in range(30)], model=provider())
    latencies = sorted(sim.metrics.legit_latencies)
    assert latencies == pytest.approx([2.0 * (i // 4) + 0.1 * (i % 4) for i in range(30)])


def test_a_retry_after_is_never_cut_short() -> None:
    """A 429 asks the client to wait ``Retry-After`` at least (the live outbox honours it).

    The provider answers 429 to everything before t = 10 s; a message at t = 0 is tried
    at once, rejected, and may be tried again only after Retry-After (100 s). Whatever the
    seed, its reply leaves at 100 s or later.
    """
    leaving = []
    for seed in range(40):
        sim = run([record(0.0, 1)], model=provider(retry_after_s=100.0),
                  faults=(Fault("rate_limit", 0.0, 10.0, 1.0),), seed=seed)
        assert sim.metrics.provider_errors["rate_limited"] == 1
        assert sim.metrics.replies["legit"] == 1
        leaving.append(sim.metrics.legit_latencies[0])
    assert min(leaving) >= 100.0


def stop_from(t: float, n: int) -> TraceRecord:
    """Sender ``n`` of ``record`` opts out at ``t``."""
    first = record(0.0, n)
    return TraceRecord(t, first.sender, TO, "STOP", "legit", f"SMstop{n:028x}")


def test_an_opt_out_cancels_its_senders_queued_reply() -> None:
    """As the live responder cancels an opted-out sender's ``pending`` outbox rows: thirty
    first contacts at t = 0 and four workers, so the 26 last replies wait; sender 20 opts
    out at 0.5 s. Its reply is cancelled and refunded (never sent, in ``rejected``); the
    other 29 go, and every spend figure counts 29."""
    cost = PolicyConfig().reply_cost_micros
    sim = run([*(record(0.0, i) for i in range(30)), stop_from(0.5, 20)], model=provider())
    m = sim.metrics
    assert (sum(m.replies.values()), m.rejected) == (29, 1)
    assert record(0.0, 20).sender not in m.replied_senders
    assert m.billed_micros == sim.ledger.spent_micros() == sim.state.spent_micros == 29 * cost


def test_an_opt_out_cancels_a_reply_backing_off_before_its_next_try() -> None:
    """A reply waiting out a Retry-After is queued again as far as the live outbox knows
    (``pending``): an opt-out meanwhile cancels it, and it is never tried again."""
    sim = run([record(0.0, 1), stop_from(50.0, 1)], model=provider(retry_after_s=100.0),
              faults=(Fault("rate_limit", 0.0, 10.0, 1.0),))
    m = sim.metrics
    assert m.provider_errors["rate_limited"] == 1  # the one try, before the opt-out
    assert (sum(m.replies.values()), m.rejected, sim.ledger.spent_micros()) == (0, 1, 0)


def test_every_billed_reply_is_counted_once_whatever_the_outcome() -> None:
    """Timeouts are billed once and never resent; 429, 5xx and rejects are not billed.

    Per run, spend is the number of replies that left and were accepted or timed out,
    times the price; it equals the ledger's and the policy's spend, and the spend time
    series ends at the same figure.
    """
    policy = PolicyConfig()
    cost = policy.reply_cost_micros
    for seed in range(10):
        sim = run([record(30.0 * i, i) for i in range(40)],
                  model=provider(timeout_rate=0.2, rate_limit_rate=0.2, error_rate=0.2,
                                 reject_rate=0.1, max_attempts=3, retry_after_s=1.0),
                  policy=policy, seed=seed)
        m = sim.metrics
        replied = sum(m.replies.values())
        assert replied + m.rejected == 40
        assert m.billed_micros == replied * cost == sim.ledger.spent_micros()
        assert sim.state.spent_micros == m.billed_micros
        assert m.unknown_outcomes == m.provider_errors["timeout"]
        assert sum(m.spend_bins) == m.billed_micros


def test_a_total_cap_holds_with_refunds_and_unknown_outcomes() -> None:
    """Refunded rejects free budget for later replies; billed spend never passes the cap."""
    cap = 10 * PolicyConfig().reply_cost_micros
    policy = replace(PolicyConfig(), budget=Budget(True, cap, None))
    for seed in range(20):
        sim = run([record(30.0 * i, i) for i in range(60)],
                  model=provider(reject_rate=0.4, timeout_rate=0.3, error_rate=0.2,
                                 max_attempts=2),
                  policy=policy, seed=seed)
        assert sim.metrics.billed_micros <= cap
        assert sim.metrics.billed_micros == sim.ledger.spent_micros()


def test_multi_segment_replies_price_every_spend_figure() -> None:
    """A 200-character GSM-7 reply is 2 segments: naive, oracle and spend all double."""
    policy = replace(PolicyConfig(), reply_text="x" * 200)
    assert policy.reply_cost_micros == 2 * 160_000
    records = [record(0.0, 1), record(60.0, 2), record(120.0, 1, "merci beaucoup")]
    records[2] = replace(records[2], message_id="SMthird")
    records.append(replace(record(180.0, 3, label="raid"), message_id="SMraid"))
    sim = run(records, model=provider(), policy=policy)
    r = sim.metrics.results(scenario="s", seed=0, policy="d", cap_micros=None,
                            raid_periods=[], end_s=sim.env.now)
    assert r["naive_spend_eur"] == 4 * 0.32
    assert r["oracle_spend_eur"] == 2 * 0.32  # two distinct legit senders
    assert r["spend_eur"] == 3 * 0.32  # senders 1, 2 and the raider; sender 1 once
    assert r["replies"]["segments"] == 6
    assert r["legit_coverage"] == 1.0


@pytest.mark.parametrize("at, failed", [(99.9, False), (100.0, True), (600.0, True),
                                        (1100.0, False)])
def test_an_outage_fails_the_calls_inside_its_window_only(at: float, failed: bool) -> None:
    """An outage [100 s, 1100 s) refuses every connection: a reply tried inside it fails all
    8 attempts (its retries end within two minutes) and is refunded, never billed; one
    tried just before or at its end goes through."""
    sim = run([record(at, 1)], model=provider(),
              faults=(Fault("outage", 100.0, 1100.0, 1.0),))
    m = sim.metrics
    if failed:
        assert m.provider_errors["connect_error"] == 8
        assert m.rejected == 1 and m.billed_micros == 0
        assert sim.ledger.spent_micros() == 0
    else:
        assert "connect_error" not in m.provider_errors
        assert m.billed_micros == PolicyConfig().reply_cost_micros
        assert m.legit_latencies == [0.0]


def test_a_refused_connection_takes_none_of_the_providers_throughput() -> None:
    """A call an outage refuses never reaches the provider, so it takes no segment token
    (as the fake provider answers it at once, outside its queue). The provider takes one
    segment per 100 s: had the reply tried in the outage taken a token per attempt, the
    reply after it would wait for them."""
    sim = run([record(600.0, 1), record(1200.0, 2)],
              model=provider(segments_per_second=0.01, latency_median_s=0.5,
                             latency_p95_s=0.5),
              faults=(Fault("outage", 100.0, 1100.0, 1.0),))
    m = sim.metrics
    assert m.provider_errors["connect_error"] == 8 and m.rejected == 1
    assert m.legit_latencies == [0.0]  # the second reply leaves the moment it arrives


def test_nearest_rank_percentiles_on_a_hand_made_list() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 95) == 10.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0
    # exact rank = ceil(q * n / 100), for every list length
    for n in range(1, 2001):
        ranked = [float(v) for v in range(1, n + 1)]
        for q in (50, 95, 99):
            assert percentile(ranked, q) == max(1, -(-q * n // 100))


def test_money_and_latency_intervals_never_go_below_zero() -> None:
    """Spend cannot be negative: its interval is clipped at 0, as coverage's is at [0, 1]."""
    spend = _money_ci([0.16, 0.32, 0.8])
    assert spend["mean"] == pytest.approx(0.426667)
    assert spend["low"] == 0.0
    assert spend["high"] > spend["mean"]


def test_student_t_beyond_thirty_degrees_of_freedom() -> None:
    """With 41 replications (40 degrees of freedom) the 95 % t value is 2.021, not 1.96."""
    values = [0.0, 1.0] * 20 + [0.5]
    ci = _ci95(values)
    stdev = math.sqrt(sum((v - 0.5) ** 2 for v in values) / 40)
    half = ci["high"] - ci["mean"]
    assert half == pytest.approx(2.021 * stdev / math.sqrt(41), abs=2e-4)
    # and the tabulated values still hold up to 30
    three = _ci95([1.0, 2.0, 3.0])
    assert three["high"] - three["mean"] == pytest.approx(4.303 / math.sqrt(3), abs=1e-5)


def test_the_live_replay_uses_the_simulators_percentiles() -> None:
    """`raidsim load` and `raidsim simulate` rank latencies alike, so their p95 compare."""
    from raidsim.commands.load import _percentile

    values = [float(v) for v in range(20, 0, -1)]  # unsorted on purpose
    for q in (50, 95, 99):
        assert _percentile(values, q / 100) == percentile(sorted(values), q)
    assert _percentile([], 0.95) is None


def test_quiet_gc_does_not_freeze_an_earlier_runs_garbage() -> None:
    """A sweep runs many points in one process: the cyclic garbage an earlier run left
    (its SimPy environment) must stay collectable during the next run, or memory grows
    with every point (gc.freeze keeps what it freezes out of every collection)."""
    import gc
    import weakref

    from sim.model import quiet_gc

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle: only the cyclic collector frees it
    alive = weakref.ref(node)
    del node
    assert gc.get_freeze_count() == 0
    with quiet_gc():
        gc.collect()
        assert alive() is None, "an earlier run's garbage was frozen for the whole run"
    assert gc.get_freeze_count() == 0


def test_quiet_gc_unfreezes_and_restores_thresholds_on_error() -> None:
    import gc

    import pytest

    from sim.model import quiet_gc

    before = gc.get_threshold()
    with pytest.raises(RuntimeError), quiet_gc():
        assert gc.get_freeze_count() > 0
        raise RuntimeError
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_a_reply_to_a_sender_id_or_short_code_is_refused_and_not_billed() -> None:
    """With senders.reply_to_alphanumeric (or _short_codes) on, the simulator billed
    replies to "AMAZON" and counted its sender covered; no provider sends to a sender id
    (the fake provider refuses such a To with 21211, unbilled): refused and refunded."""
    from responder.policy.config import Senders

    policy = PolicyConfig(senders=Senders(reply_to_alphanumeric=True,
                                          reply_to_short_codes=True))
    records = [TraceRecord(0.0, "AMAZON", TO, "Votre colis", "legit", "SM1"),
               TraceRecord(10.0, "36000", TO, "Promo", "legit", "SM2"),
               record(20.0, 3)]
    sim = run(records, model=provider(), policy=policy)
    results = sim.metrics.results(scenario="x", seed=0, policy="p", cap_micros=None,
                                  raid_periods=[], end_s=100.0)
    assert results["spend_eur"] == 0.16 and results["replies"]["total"] == 1
    assert results["replies"]["rejected"] == 2
    assert results["legit_senders_replied"] == 1 and results["legit_senders"] == 3
