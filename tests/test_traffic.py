"""Traffic generators: deterministic, sorted, and shaped like the reported 2017 raid."""

from __future__ import annotations

import math
import random
import statistics
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import cache
from itertools import islice
from pathlib import Path

import pytest

from responder.policy.config import PolicyConfig
from sim.scenario import Scenario, load_scenario
from sim.trace import E164, TraceRecord, read_trace, write_trace
from sim.traffic import KINDS, generate, iter_generate
from sim.traffic.base import MAX_MESSAGES, Context, counts_for, parse_spec
from sim.traffic.numbers import MobileNumbers
from sim.traffic.organic import sender_counts
from sim.traffic.texts import build_pools

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
HOUR = 3600.0
DAY = 86400.0


@cache
def reference() -> tuple[Scenario, tuple[TraceRecord, ...]]:
    scenario = load_scenario(SCENARIOS / "anti-relous-2017.toml")
    return scenario, tuple(generate(scenario))


def scenario_of(*tables: dict[str, object], duration_s: float = 2 * DAY,
                seed: int = 1) -> Scenario:
    specs = tuple(parse_spec(KINDS[str(t["kind"])], t) for t in tables)
    return Scenario(name="test", seed=seed, duration_s=duration_s, number="+33644649021",
                    eur_per_segment=PolicyConfig().eur_per_segment,
                    reply_text=PolicyConfig().reply_text, traffic=specs, policy=PolicyConfig())


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    """Two runs with one seed write the same bytes; another seed writes others."""
    scenario, records = reference()
    first, second, other = (tmp_path / n for n in ("a.jsonl", "b.jsonl", "c.jsonl"))
    write_trace(records, first)
    write_trace(iter_generate(scenario), second)
    write_trace(iter_generate(scenario, 2018), other)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert tuple(read_trace(first)) == records


def test_records_are_sorted_labelled_and_valid() -> None:
    """Every kind yields sorted times, E.164 senders, unique ids and its label."""
    scenario = scenario_of(
        {"kind": "organic", "messages": 300},
        {"kind": "press", "start": "10h", "messages": 300},
        {"kind": "raid", "start": "1d", "duration": "6h", "messages": 2000},
        {"kind": "drip", "messages": 200},
        {"kind": "flood", "start": "1d2h", "duration": "10m", "rate": 3.0},
    )
    records = generate(scenario)
    times = [r.t for r in records]
    assert times == sorted(times) and times[0] >= 0 and times[-1] < scenario.duration_s
    assert all(E164.fullmatch(r.sender) for r in records)
    assert len({r.message_id for r in records}) == len(records)
    labels = Counter(r.label for r in records)
    assert labels["legit"] == 600  # genuine sources end long before the scenario
    assert 0.9 * 4000 <= labels["raid"] <= 4000  # the 6 h raid loses some late messages
    legit = {r.sender for r in records if r.label == "legit"}
    assert not legit & {r.sender for r in records if r.label == "raid"}


def test_reference_totals_match_2017() -> None:
    """About 30,000 SMS in under 7 days, about 22,000 of them the raid's (within 10%)."""
    scenario, records = reference()
    labels = Counter(r.label for r in records)
    assert scenario.duration_s < 7 * DAY
    assert abs(len(records) - 30000) <= 3000
    assert abs(labels["raid"] - 22000) <= 2200
    assert 7000 <= labels["legit"] <= 9000
    naive_eur = len(records) * 0.16
    assert abs(naive_eur - 4800) <= 480


def test_reference_raid_runs_sunday_evening_to_monday_evening() -> None:
    """The raid starts on Sunday evening and lasts until the switch-off on Monday evening."""
    scenario, records = reference()
    raid_times = [r.t for r in records if r.label == "raid"]
    offset = scenario.clock_offset_s  # seconds from Monday 00:00 to t = 0
    first, last = (offset + t for t in (raid_times[0], raid_times[-1]))
    assert int(first // DAY) % 7 == 6 and 19 <= (first % DAY) / HOUR < 21     # Sunday ~20h
    assert int(last // DAY) % 7 == 0 and 18 <= (last % DAY) / HOUR <= 23      # Monday evening
    assert records[-1].t < scenario.duration_s
    # Most of the raid lands in its first evening and on Monday, not spread thin.
    assert sum(1 for t in raid_times if t < raid_times[0] + 5 * HOUR) > 0.3 * len(raid_times)


def rate_per_minute(times: Sequence[float], start: float, minutes: int) -> list[int]:
    counts = [0] * minutes
    for t in times:
        index = int((t - start) // 60)
        if 0 <= index < minutes:
            counts[index] += 1
    return counts


def test_press_surge_shape_and_variety() -> None:
    """A TV report: peak within minutes, most senders within the hour, then decay; the
    texts vary like people's, and each viewer is a distinct genuine sender."""
    scenario = scenario_of({"kind": "press", "start": "20h", "messages": 3000,
                            "rise": "4m", "decay": "25m"})
    records = generate(scenario)
    start = 20 * HOUR
    firsts: dict[str, float] = {}
    for r in records:
        firsts.setdefault(r.sender, r.t)
    per_minute = rate_per_minute(list(firsts.values()), start, 240)
    peak = max(range(240), key=per_minute.__getitem__)
    assert 2 <= peak <= 20
    assert sum(per_minute[:60]) > 0.8 * len(firsts) and len(firsts) > 2000
    assert per_minute[120] < per_minute[peak] / 20
    bodies = Counter(r.body for r in records)
    assert len(bodies) > 0.6 * len(records)
    assert bodies.most_common(1)[0][1] < 0.03 * len(records)
    assert {r.label for r in records} == {"legit"}


def test_raid_has_a_heavy_tail_templates_and_rotating_numbers() -> None:
    """Per-sender counts are heavy-tailed; pasted templates repeat; virtual blocks rotate."""
    _, records = reference()
    raid = [r for r in records if r.label == "raid"]
    per_sender = Counter(r.sender for r in raid)
    counts = sorted(per_sender.values(), reverse=True)
    assert statistics.median(counts) <= 2
    assert sum(1 for c in counts if c == 1) > 0.3 * len(counts)     # senders who send once
    assert counts[0] >= 300                                          # a script
    top = counts[: max(1, len(counts) // 100)]
    assert sum(top) > 0.25 * len(raid)                               # top 1% send >25%
    # Virtual numbers: many +3375 senders, each with only a few messages.
    virtual = {s: n for s, n in per_sender.items() if s.startswith("+3375")}
    assert len(virtual) > 100 and statistics.median(virtual.values()) <= 4
    blocks = Counter(s[:8] for s in virtual)
    assert len(blocks) <= 3
    # Copy-paste: a few normalised texts cover a large share of the raid.
    normalised = Counter(" ".join(r.body.lower().split()[:6]) for r in raid)
    assert sum(n for _, n in normalised.most_common(10)) > 0.25 * len(raid)


def test_organic_follows_the_hour_of_day() -> None:
    """Genuine traffic is quiet at night and busy in the evening."""
    scenario, records = reference()
    by_hour: defaultdict[int, int] = defaultdict(int)
    for r in records:
        if r.label == "legit" and r.t < 2 * DAY:
            by_hour[int(((r.t + scenario.clock_offset_s) % DAY) // HOUR)] += 1
    assert by_hour[4] * 8 < by_hour[20]


def test_drip_sends_one_message_per_participant() -> None:
    """A drip raid: every sender appears exactly once."""
    records = generate(scenario_of({"kind": "drip", "messages": 1500}))
    assert len(records) == 1500 == len({r.sender for r in records})


def test_flood_keeps_its_rate_and_rotates_numbers() -> None:
    """A flood at 5/s for 10 minutes: ~3,000 messages, numbers reused only a few times."""
    records = generate(scenario_of({"kind": "flood", "start": "1h", "duration": "10m",
                                    "rate": 5.0, "scripts": 4, "per_number": [1, 3]}))
    assert abs(len(records) - 3000) <= 60
    assert all(3600 <= r.t < 3600 + 600 for r in records)
    assert max(Counter(r.sender for r in records).values()) <= 12
    assert max(rate_per_minute([r.t for r in records], 3600, 10)) < 400


def test_large_raid_streams_lazily() -> None:
    """A 1,000,000-message raid starts streaming at once, without materialising it."""
    scenario = scenario_of({"kind": "raid", "messages": 1_000_000, "waves": ["0m", "6h"]},
                           duration_s=DAY)
    head = list(islice(iter_generate(scenario), 2000))
    assert len(head) == 2000 and head[-1].t < 6 * HOUR


@pytest.mark.parametrize("seed", [1])
def test_generation_is_fast(seed: int) -> None:
    """30,000 messages generate in well under two seconds (pools are built once)."""
    import time

    scenario, _ = reference()
    begin = time.perf_counter()
    count = sum(1 for _ in iter_generate(scenario, seed))
    elapsed = time.perf_counter() - begin
    assert count > 25000
    assert elapsed < 2.0 or math.isnan(elapsed)


def _old_sender_counts(rng: random.Random, messages: int, low: int, high: int) -> list[int]:
    """The counts before the range stayed a range: a list of options and of weights,
    summed again on every draw. Kept to prove the draws did not change."""
    options = list(range(low, high + 1))
    weights = [1.0 / k ** 1.6 for k in options]
    return counts_for(messages, lambda: rng.choices(options, weights)[0])


@pytest.mark.parametrize(("messages", "low", "high"), [
    (500, 1, 3), (500, 1, 2), (300, 2, 7), (1000, 1, 40), (50, 3, 3), (200, 1, 1000),
])
def test_sender_counts_draw_as_they_did_before_the_range_stayed_lazy(
        messages: int, low: int, high: int) -> None:
    """Same seed, same counts, for the ranges scenarios use (byte-identical results)."""
    for seed in (1, 2, 2017):
        ctx = Context(random.Random(seed), build_pools(1), MobileNumbers(1, 0), 0.0, DAY, 0.0)
        assert sender_counts(ctx, messages, low, high) == _old_sender_counts(
            random.Random(seed), messages, low, high)


def test_a_wide_messages_per_sender_range_holds_no_list_per_option() -> None:
    """[1, 10,000,000] (the bound) draws in one packed array: a few tens of MB, once."""
    ctx = Context(random.Random(1), build_pools(1), MobileNumbers(1, 0), 0.0, DAY, 0.0)
    tracemalloc.start()
    try:
        counts = sender_counts(ctx, 2000, 1, MAX_MESSAGES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(counts) == 2000
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MiB"
