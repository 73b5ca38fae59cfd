"""The default defences on the eighth red team's worlds (``redteam8.py``), through the CLI.

Written blind against the documented rules (``docs/policy.md``), aimed at the newest: "A
number's own habit raises the bar". Every world is replayed once per module with
``python -m raidsim simulate --trace FILE --json OUT`` (two at a time) and judged on the
product's criteria, recomputed from the trace (``_problems`` of ``test_redteam4``). Worlds
the defaults lose are strict xfails with the measured numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import genuine
from .redteam8 import LEGIT, OPT_OUT, RAID, RAID_FREE, WORLDS
from .test_redteam4 import _account, _problems

pytestmark = pytest.mark.heldout

KNOWN_LOSSES = {
    # Genuine only. A brush-off number with no habit for a day and a half, then a magazine
    # feature whose writers (20%) send their testimony again 1-20 h later: the habit starts
    # after the first day, its onset is a jump, it is never learnt, and the stock phrases go
    # hot (15% is won: 0.98775).
    "late_habit_feature": "habit from day 1.5, 20% resend: coverage 0.5755 (raid_phrases 1698)",
    # Genuine only. 800 of 4,200 people send a flyer's text word for word, 20% of them again
    # 20 min to 3 h later: the number's habit is about 4%, under the 5% floor, no habit; the
    # flyer texts' repeaters are over the 10% bar.
    "stock_text_habit": "4% habit on 5 flyer texts: coverage 0.883333 (raid_template 490)",
    "stock_text_habit_late": "the same, resent 1-20 h later: coverage 0.896667 "
                             "(raid_template 434)",
    # Genuine only. 3,000 viewers of the evening news in an hour (raid mode), 20% of them
    # send their testimony again 1-5 h later; the days after, 900 more writers, same habit.
    "surge_onset_habit": "habit born in a surge: coverage 0.817551 (raid_phrases 893)",
}
WINS = sorted(set(WORLDS) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return genuine.replay_all(WORLDS, tmp_path_factory.mktemp("redteam8"))


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_eighth_red_team_results_account_for_the_trace(name: str, runs: dict[str, Any]) -> None:
    """Message and sender counts, per-sender, oracle and naive spends match the trace."""
    _account(*runs[name])


@pytest.mark.parametrize("name", WINS)
def test_eighth_red_team_worlds_the_defaults_win(name: str, runs: dict[str, Any]) -> None:
    assert _problems(*runs[name]) == [], name


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_eighth_red_team_worlds_the_defaults_still_lose(name: str,
                                                         runs: dict[str, Any]) -> None:
    assert _problems(*runs[name]) == []


def test_eighth_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes; another seed,
    other lines."""
    genuine.check_deterministic(WORLDS, ["stock_text_habit", "habit_trained_raid"], tmp_path)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_eighth_red_team_traces_are_well_formed(name: str) -> None:
    """Sorted times, E.164 numbers, one label per number, no opt-out as a first text, under
    15,000 lines."""
    genuine.check_well_formed(WORLDS[name](), LEGIT, OPT_OUT, raid=RAID,
                              has_raid=name not in RAID_FREE, max_lines=15_000)


def test_eighth_red_team_main_writes_every_world(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from .redteam8 import main

    assert main(["--help"]) == 0
    assert "usage" in capsys.readouterr().out
    assert main([str(tmp_path), "habit_early_raid"]) == 0
    assert (tmp_path / "habit_early_raid.jsonl").exists()
