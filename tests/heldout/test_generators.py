"""The held-out generators themselves: valid traces, deterministic, and each world as described."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import pytest

from responder.policy.config import DEFAULT_OPT_OUT

from .generators import (
    DEFAULT_SEEDS,
    HOUR,
    LEGIT,
    RAID,
    RAID_FREE_WORLDS,
    WORLDS,
    World,
    build,
    main,
)

pytestmark = pytest.mark.heldout

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
PLAN_PREFIXES = {"uk": ("+447",), "fr": ("+336", "+337"), "us": ("+1",)}


@cache
def world(name: str) -> World:
    return build(name)


def plan_of(name: str) -> str:
    return name.split("_", 1)[0]


def first_texts(w: World) -> dict[str, str]:
    first: dict[str, str] = {}
    for line in w.lines:
        first.setdefault(line.sender, line.body)
    return first


def new_senders_per_hour(w: World, label: str) -> Counter[int]:
    seen: set[str] = set()
    per_hour: Counter[int] = Counter()
    for line in w.lines:
        if line.label == label and line.sender not in seen:
            seen.add(line.sender)
            per_hour[int(line.t // HOUR)] += 1
    return per_hour


def max_in_window(times: list[float], window_s: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_trace_lines_follow_the_design_format(name: str, tmp_path: Path) -> None:
    """Every line is a JSON object with t, from, to, body, label; t never decreases."""
    path = world(name).write(tmp_path / f"{name}.jsonl")
    previous = 0.0
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            row = json.loads(raw)
            assert set(row) == {"t", "from", "to", "body", "label"}, f"line {number}"
            assert isinstance(row["t"], float) and row["t"] >= previous, f"line {number}"
            previous = row["t"]
            assert E164.match(row["from"]) and E164.match(row["to"]), f"line {number}"
            assert isinstance(row["body"], str) and row["body"].strip(), f"line {number}"
            assert row["label"] in (LEGIT, RAID), f"line {number}"


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_world_is_a_pure_function_of_its_seed(name: str) -> None:
    """Same seed, same bytes; another seed, another trace."""
    seed = DEFAULT_SEEDS[name]
    assert build(name, seed).to_jsonl() == world(name).to_jsonl()
    assert build(name, seed + 1).to_jsonl() != world(name).to_jsonl()


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_world_scale_is_between_two_and_forty_thousand(name: str) -> None:
    """Held-out worlds span the brief's scale range."""
    assert 2_000 <= len(world(name).lines) <= 40_000


def test_worlds_cover_the_scale_range() -> None:
    """Both ends of the range are exercised."""
    sizes = [len(world(name).lines) for name in WORLDS]
    assert min(sizes) < 3_000 and max(sizes) > 35_000


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_every_sender_has_one_label_and_opens_with_no_opt_out(name: str) -> None:
    """A number is either a raider or a genuine sender; nobody's first text is STOP."""
    w = world(name)
    labels: dict[str, set[str]] = defaultdict(set)
    for line in w.lines:
        labels[line.sender].add(line.label)
    assert all(len(found) == 1 for found in labels.values())
    opt_out = {keyword.upper() for keyword in DEFAULT_OPT_OUT}
    assert not [s for s, text in first_texts(w).items() if text.strip().upper() in opt_out]
    assert w.to not in labels


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_senders_come_from_the_world_number_plan(name: str) -> None:
    """UK worlds are +447..., French +336/+337..., US +1...; a few visitors are allowed."""
    w = world(name)
    prefixes = PLAN_PREFIXES[plan_of(name)]
    senders = w.senders()
    local = sum(sender.startswith(prefixes) for sender in senders)
    assert local / len(senders) >= 0.95
    assert w.to.startswith(prefixes)


def test_raid_presence_is_as_described() -> None:
    """The surge, viral and control worlds hold no raid; every other world does."""
    for name in WORLDS:
        assert world(name).has_raid == (name not in RAID_FREE_WORLDS), name


def test_organic_background_follows_day_and_night() -> None:
    """In the quiet world, evenings carry several times the traffic of the small hours."""
    w = world("fr_quiet_week")
    by_hour = Counter(int(w.hour_of_day(line.t)) for line in w.lines)
    evening = sum(by_hour[h] for h in (19, 20, 21, 22))
    small_hours = sum(by_hour[h] for h in (3, 4, 5, 6))
    assert evening > 4 * small_hours


def test_press_surge_brings_thousands_of_varied_strangers_within_an_hour() -> None:
    """A TV segment: >= 2,500 new senders in one hour, varied texts, some write 2-3 times."""
    w = world("uk_tv_surge")
    assert max(new_senders_per_hour(w, LEGIT).values()) >= 2_500
    bodies = Counter(first_texts(w).values())
    senders = len(w.senders())
    assert len(bodies) > 0.4 * senders  # people write their own words...
    assert bodies.most_common(1)[0][1] > 0.02 * senders  # ...but many send the same "Test"
    per_sender = Counter(line.sender for line in w.lines)
    assert sum(1 for n in per_sender.values() if n in (2, 3)) > 0.1 * senders


def test_viral_share_is_a_long_plateau_not_a_spike() -> None:
    """A shared post: no hour brings more than 12% of senders; eight hours bring >= 250 each."""
    w = world("fr_viral_share")
    per_hour = new_senders_per_hour(w, LEGIT)
    total = sum(per_hour.values())
    assert max(per_hour.values()) < 0.12 * total
    assert sum(1 for n in per_hour.values() if n >= 250) >= 8


def test_forum_raid_is_heavy_tailed_and_hand_written() -> None:
    """A few raiders send hundreds, most send one or two, and texts are rarely repeated."""
    w = world("fr_forum_unique")
    counts = sorted(Counter(line.sender for line in w.lines if line.label == RAID).values())
    assert sum(1 for n in counts if n >= 100) >= 3
    assert counts[len(counts) // 2] <= 2
    raid_bodies = [line.body for line in w.lines if line.label == RAID]
    assert len(set(raid_bodies)) > 0.8 * len(raid_bodies)


def test_template_drip_is_one_message_per_number_with_mutations() -> None:
    """Each raid number sends once; texts are pasted templates, mostly edited."""
    w = world("us_template_drip")
    counts = Counter(line.sender for line in w.lines if line.label == RAID)
    assert len(counts) >= 2_000 and set(counts.values()) == {1}
    raid_bodies = [line.body for line in w.lines if line.label == RAID]
    assert 0.5 * len(raid_bodies) < len(set(raid_bodies)) < len(raid_bodies)
    raid_times = sorted(line.t for line in w.lines if line.label == RAID)
    assert raid_times[-1] - raid_times[0] > 24 * HOUR  # a drip, not a burst
    assert max_in_window(raid_times, HOUR) < 0.25 * len(raid_times)


def test_scripted_flood_rotates_random_numbers_and_randomises_text() -> None:
    """Hundreds of numbers from no common block, each a few dozen texts, all bodies distinct."""
    w = world("us_scripted_flood")
    raid = [line for line in w.lines if line.label == RAID]
    counts = Counter(line.sender for line in raid)
    assert len(counts) >= 500 and max(counts.values()) <= 45
    blocks = Counter(sender[:-3] for sender in counts)
    assert max(blocks.values()) <= 2  # random numbers, not sequential blocks
    assert len({line.body for line in raid}) > 0.95 * len(raid)


def test_mixed_world_puts_the_raid_inside_the_press_surge() -> None:
    """The busiest legit hour also carries hundreds of raid messages."""
    w = world("fr_mixed_press_raid")
    legit_hours = Counter(int(line.t // HOUR) for line in w.lines if line.label == LEGIT)
    raid_hours = Counter(int(line.t // HOUR) for line in w.lines if line.label == RAID)
    peak_hour, peak = legit_hours.most_common(1)[0]
    assert peak >= 1_500
    assert raid_hours[peak_hour] + raid_hours[peak_hour + 1] >= 300


def test_slow_burn_raid_is_low_rate_over_several_days() -> None:
    """The raid is spread over four or more days, never more than 60 texts an hour."""
    w = world("uk_slow_burn")
    raid_times = sorted(line.t for line in w.lines if line.label == RAID)
    assert len({int(t // (24 * HOUR)) for t in raid_times}) >= 4
    assert max_in_window(raid_times, HOUR) <= 60
    assert len(raid_times) < 0.25 * len(w.lines)


def test_french_worlds_speak_french_and_others_english() -> None:
    """Texts match the world's language."""
    for name in WORLDS:
        text = " ".join(line.body.lower() for line in world(name).lines[:2000])
        french = sum(text.count(word) for word in (" c'est", "salut", "bonjour", " tu "))
        english = sum(text.count(word) for word in (" it's", "hey", " the ", " you"))
        assert (french > english) == name.startswith("fr_"), name


def test_cli_writes_the_requested_worlds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m tests.heldout.generators OUTDIR --world NAME writes NAME.jsonl."""
    assert main([str(tmp_path), "--world", "fr_quiet_week"]) == 0
    written = (tmp_path / "fr_quiet_week.jsonl").read_text(encoding="utf-8")
    assert written == world("fr_quiet_week").to_jsonl()
    assert "fr_quiet_week.jsonl" in capsys.readouterr().out
