"""The default defences on the fourth red team's worlds (``redteam4.py``), through the CLI.

Written blind like the other teams' worlds. Each world is replayed once per module with
``python -m raidsim simulate --trace FILE --json OUT`` and judged on the product's criteria,
recomputed here from the trace: ``legit_coverage >= 0.97``; with raid lines, ``spend_eur``
strictly below one reply per sender (distinct repliable senders x the reply's price, which
the results' ``per_sender_spend_eur`` must equal) and fewer raid replies than raid senders.
Worlds the defaults lose are strict xfails with the measured numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from responder.policy.config import PolicyConfig

from . import genuine
from .redteam4 import LEGIT, OPT_OUT, RAID, WORLDS, World
from .test_heldout import MIN_COVERAGE, eur, reply_price, simulate

pytestmark = pytest.mark.heldout

Run = tuple[World, dict[str, Any]]

# Found lost by this team, won since (docs/policy.md, "sent again at once").
FIXED = {
    # The biggest finding. No raid at all: a TV show gives the number, replies come late,
    # and as real viewers do, 20% write again ('??', 'Allô ?') and 10% send their own text
    # again once or twice (a phone's retry). Measured: coverage 0.5908 (2186 of 3700
    # genuine senders answered): their resends made the shared texts raid templates.
    # A text sent again within minutes of itself is now a retry, not a paste: 0.9995.
    "impatient_resend": "genuine surge, 10% resend their own text (was coverage 0.5908)",
    # The same surge with 5% identical resends: coverage 0.8503, now 0.9989.
    "impatient_resend_5pct": "genuine surge, 5% resend their own text (was coverage 0.8503)",
    # The same, people waiting ten minutes (median) before sending again: 0.7468 with the
    # 5-minute retry window alone; a resend while the reply is held is a retry too: 0.9995.
    "impatient_resend_late": "genuine surge, 10% resend their text ~10 min later (was 0.7468)",
}
KNOWN_LOSSES = {
    # The same surge, the resenders sending their text 3 to 5 times in all, minutes apart
    # (added after the report). Those sends made the text a raid's (coverage 0.7765); they
    # no longer do, but the resenders with 4 or 5 sends, still waiting, are dropped as
    # floods themselves (repeat_flood): 0.9511; 0.9508 since an opt-out cancels its
    # sender's queued reply (one of them wrote STOP before it left).
    "impatient_resend_many": "genuine surge, 10% send their text 3-5 times: coverage 0.9508 "
                             "(the resenders flood)",
    # A quiet number (10 texts a day), then 28 people send 300 insults in two hours: every
    # raider is answered once. Seed 1: spend €16.48 = per-sender €16.48, 28/28 raid replies
    # (seed 3, below, passes with 26/28).
    "quiet_then_300": "300-message raid on a quiet number: spend 16.48 = per-sender 16.48, "
                      "raid replies 28/28",
    # Each raider sends exactly two texts hours apart: the first is answered, the second
    # dropped. Seed 2: spend €335.84 = per-sender, 1199/1199 (seed 1 passes with 1195/1200).
    "two_shot_raid_s2": "two texts per raider hours apart: spend 335.84 = per-sender 335.84, "
                        "raid replies 1199/1199",
    # A raid doubling every day from 3 raiders: seed 4 answers every one of its 381 raiders
    # once (seed 1 passes with 376/381).
    "slow_accelerating_raid_s4": "raid doubling daily: spend 284.96 = per-sender 284.96, "
                                 "raid replies 381/381",
}
WINS = sorted(set(WORLDS) - set(KNOWN_LOSSES))
# genuine traffic only: the press surges of new shapes and the controls
RAID_FREE = frozenset({
    "press_morning_show", "radio_spot_hourly", "celebrity_tweet_2am", "school_worksheet_week",
    "metro_poster", "tv_poll_oui", "split_texters", "impatient_resend", "impatient_resend_5pct",
    "impatient_resend_late", "impatient_resend_many",
    "impatient_nudge_only", "be_ch_tv_surge",
    "chatty_conversations", "organic_month",
})


def _account(world: World, results: dict[str, Any]) -> None:
    """The results account for the trace exactly, whatever the verdict."""
    price = reply_price(PolicyConfig())
    assert eur(results["reply_cost_eur"]) == price
    assert results["messages"]["total"] == len(world.lines)
    assert results["messages"]["legit"] == world.count(LEGIT)
    assert results["messages"]["raid"] == world.count(RAID)
    assert results["legit_senders"] == len(world.senders(LEGIT))
    assert eur(results["per_sender_spend_eur"]) == len(world.senders()) * price
    assert eur(results["oracle_spend_eur"]) == len(world.senders(LEGIT)) * price
    assert eur(results["naive_spend_eur"]) == len(world.lines) * price


def _problems(world: World, results: dict[str, Any]) -> list[str]:
    """The criteria, recomputed from the trace; an empty list is a pass."""
    per_sender = len(world.senders()) * reply_price(PolicyConfig())
    raid_senders = len(world.senders(RAID))
    problems = []
    coverage = eur(results["legit_coverage"])
    if coverage < MIN_COVERAGE:
        problems.append(f"coverage {coverage} < {MIN_COVERAGE}")
    if raid_senders:
        spend = eur(results["spend_eur"])
        if not spend < per_sender:
            problems.append(f"spend {spend} not below per-sender {per_sender}")
        if not results["replies"]["raid"] < raid_senders:
            problems.append(f"raid replies {results['replies']['raid']} for {raid_senders} "
                            "raid senders")
    else:
        assert eur(results["spend_eur"]) <= per_sender
    return problems


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    runs: dict[str, Run] = {}

    def run(name: str) -> Run:
        if name not in runs:
            directory: Path = tmp_path_factory.mktemp(name)
            world = WORLDS[name]()
            trace = world.write(directory / f"{name}.jsonl")
            runs[name] = (world, simulate(trace, directory / "results.json"))
        return runs[name]

    return run


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_fourth_red_team_results_account_for_the_trace(name: str,
                                                      replay: Callable[[str], Run]) -> None:
    """Message and sender counts, per-sender, oracle and naive spends match the trace."""
    _account(*replay(name))


@pytest.mark.parametrize("name", WINS)
def test_fourth_red_team_worlds_the_defaults_win(name: str,
                                                  replay: Callable[[str], Run]) -> None:
    world, results = replay(name)
    assert _problems(world, results) == [], FIXED.get(name, name)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_fourth_red_team_worlds_the_defaults_still_lose(name: str,
                                                        replay: Callable[[str], Run]) -> None:
    world, results = replay(name)
    assert _problems(world, results) == []


def test_fourth_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes; another seed,
    other lines."""
    genuine.check_deterministic(WORLDS, ["impatient_resend", "metro_poster_raid"], tmp_path)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_fourth_red_team_traces_are_well_formed(name: str) -> None:
    """Sorted times, E.164 numbers, one label per number, no opt-out as a first text."""
    genuine.check_well_formed(WORLDS[name](), LEGIT, OPT_OUT, raid=RAID,
                              has_raid=name not in RAID_FREE)
