"""The default defences on the fifth red team's worlds (``redteam5.py``), through the CLI.

Every world is genuine traffic, no raid at all: what people, their phones and their
carriers do when they text a number seen on TV or on a social network. Each world is
replayed once per module with ``python -m raidsim simulate --trace FILE --json OUT`` (two at
a time) and judged on ``legit_coverage >= 0.97``; the results must account for every line.
Worlds the defaults lose are strict xfails with the measured coverage.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from responder.policy.config import PolicyConfig

from .redteam5 import LEGIT, OPT_OUT, VARIANTS, WORLDS, World
from .test_heldout import MIN_COVERAGE, eur, reply_price, simulate

pytestmark = pytest.mark.heldout

Run = tuple[World, dict[str, Any]]
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ALL = {**WORLDS, **VARIANTS}

# Measured with the defaults at the base of this branch (seed 1).
KNOWN_LOSSES = {
    # A support text goes round Instagram/TikTok/Twitter/Facebook/WhatsApp; 35% of 4,000
    # people paste one of four slogans as copied from their app (Instagram: bold letters
    # and U+200B; TikTok: U+FEFF and U+2060; ...), half with a stray invisible character.
    # raid_template 1367, flagged_sender 231, disguised_text 10.
    "paste_invisible": "pasted support text carrying zero-width characters: coverage 0.6967",
    # The same pasting from Facebook, clean, but 1% of the copies (18 lines) carry one
    # U+200B / U+FEFF / U+2060: every sender of the slogan is dropped afterwards.
    # raid_template 1137, flagged_sender 113.
    "stray_zero_width": "1% of pasted copies carry one zero-width char: coverage 0.7496",
    # 320 group chats, 4-15 friends send the forwarded text within minutes; 15% retype it
    # in lower case, half of those with a stray zero-width char. raid_template 921,
    # flagged_sender 174, disguised_text 39.
    "group_chats": "group chats sending a forwarded text, a few with zero-width chars: "
                   "coverage 0.8408",
    # An Instagram reel: 10% of viewers end their own, distinct text with a hashtag copied
    # from the caption along with a U+200B. disguised_text 341, flagged_sender 74,
    # raid_template 109 (seeds 2, 3: 0.8998, 0.8911).
    "caption_hashtag": "own texts with a hashtag copied with a U+200B (10%): coverage 0.8886",
    "caption_hashtag_5pct": "the same with 5%: coverage 0.9468",
    # Exactly one pasted copy (of ~1,380) carries a U+200B (seeds 2, 4: 0.9559, 0.9520;
    # seed 3 passes with 0.9756). raid_template 176, flagged_sender 18.
    "one_zero_width": "one pasted copy of 1,380 carries a U+200B: coverage 0.9612",
    # Sweep points: 4 copies with a zero-width char among ~1,400 pasters.
    "stray_zero_width_0p2": "0.2% of pasted copies (4 lines) carry one: coverage 0.9132",
    "stray_zero_width_0p5": "0.5% of pasted copies (8 lines) carry one: coverage 0.8095",
    # Only 5% of viewers paste the Instagram copy (bold letters + U+200B), no stray chars.
    "insta_paste_5pct": "5% paste an Instagram caption (bold + U+200B): coverage 0.9626",
    "group_chats_160": "160 group chats: coverage 0.9303",
}
WINS = sorted(set(ALL) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every world generated and replayed once, two simulations at a time."""
    root = tmp_path_factory.mktemp("redteam5")

    def run(name: str) -> Run:
        world = ALL[name]()
        trace = world.write(root / f"{name}.jsonl")
        return world, simulate(trace, root / f"{name}.results.json")

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(ALL, pool.map(run, ALL), strict=True))


def _coverage(world: World, results: dict[str, Any]) -> Decimal:
    coverage = eur(results["legit_coverage"])
    replied = results["legit_senders_replied"]
    assert abs(coverage - Decimal(replied) / len(world.senders(LEGIT))) < Decimal("0.0001")
    return coverage


@pytest.mark.parametrize("name", sorted(ALL))
def test_fifth_red_team_results_account_for_the_trace(name: str,
                                                     replay: dict[str, Run]) -> None:
    """Message and sender counts, per-sender and oracle spends match the trace."""
    world, results = replay[name]
    price = reply_price(PolicyConfig())
    assert results["messages"]["total"] == len(world.lines)
    assert results["messages"]["legit"] == len(world.lines)
    assert results["messages"]["raid"] == 0
    assert results["legit_senders"] == len(world.senders(LEGIT))
    assert eur(results["oracle_spend_eur"]) == len(world.senders(LEGIT)) * price
    assert eur(results["naive_spend_eur"]) == len(world.lines) * price
    assert eur(results["spend_eur"]) <= len(world.senders()) * price


@pytest.mark.parametrize("name", WINS)
def test_fifth_red_team_worlds_the_defaults_win(name: str, replay: dict[str, Run]) -> None:
    world, results = replay[name]
    coverage = _coverage(world, results)
    assert coverage >= MIN_COVERAGE, (name, coverage, results["decisions"]["by_rule"])


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_fifth_red_team_worlds_the_defaults_lose(name: str, replay: dict[str, Run]) -> None:
    world, results = replay[name]
    coverage = _coverage(world, results)
    assert coverage >= MIN_COVERAGE, (name, coverage, results["decisions"]["by_rule"])


def test_fifth_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes."""
    for name in ("paste_invisible", "group_chats", "carrier_split"):
        first = ALL[name]().write(tmp_path / f"{name}.a.jsonl")
        second = ALL[name]().write(tmp_path / f"{name}.b.jsonl")
        assert first.read_bytes() == second.read_bytes(), name
    assert WORLDS["paste_invisible"](seed=2).lines != WORLDS["paste_invisible"]().lines


@pytest.mark.parametrize("name", sorted(ALL))
def test_fifth_red_team_traces_are_well_formed(name: str) -> None:
    """Sorted times, E.164 numbers, all genuine, no opt-out as a first text."""
    world = ALL[name]()
    assert world.lines, name
    assert not world.has_raid
    times = [t for t, *_ in world.lines]
    assert times == sorted(times) and times[0] >= 0
    firsts: dict[str, str] = {}
    for _, number, body, label in world.lines:
        assert E164.match(number), number
        assert label == LEGIT
        firsts.setdefault(number, body)
    assert not [b for b in firsts.values() if b.strip().lower() in OPT_OUT]
