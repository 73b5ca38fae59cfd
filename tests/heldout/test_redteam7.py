"""The default defences on the seventh red team's worlds (``redteam7.py``), through the CLI.

Written against the documented rules (``docs/policy.md``), aimed at the two newest:
"Writing on after the answer is not reusing" and "An answered sender sending one of its
texts again counts half for its phrases". Every world is replayed once per module with
``python -m raidsim simulate --trace FILE --json OUT`` (two at a time) and judged on the
product's criteria, recomputed from the trace (``_problems`` of ``test_redteam4``). Worlds
the defaults lose are strict xfails with the measured numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import genuine
from .redteam7 import LEGIT, OPT_OUT, RAID, RAID_FREE, WORLDS
from .test_redteam4 import _account, _problems

pytestmark = pytest.mark.heldout

KNOWN_LOSSES = {
    # Genuine only. 5% of the support writers, answered, go on for 4 to 6 texts within the
    # hour, each opened and signed the way their first was: from the 4th text on that is
    # reuse; 5% is under half the 10% bar, so no habit is learnt, and the stock phrases turn
    # hot (0.9074 before the habit; the 15% world is won, 0.9997).
    "fourth_text_habit_5pct": "5% write 4-6 texts in their own opener/closer: coverage 0.9666",
    # Raid under the surge floor: each raider answered, then 1-2 new insults from the
    # thread's pieces within the hour (writing on), and stop.
    "writing_on_raid": "answered raiders writing on: spend 288.00 = per-sender 288.00, "
                       "raid replies 900/900",
    # The same, 15% coming back 2-20 h later with one more insult: below a tenth of repeaters.
    "writing_on_raid_return": "15% of raiders come back hours later: spend 288.00 = per-sender "
                              "288.00, raid replies 900/900",
    # The testimony raid from day 1.5: the sentences are public by then, genuine coverage
    # 1.0, but every raider is answered once.
    "testimony_poison_late": "poisoning public sentences: spend 528.00 = per-sender 528.00, "
                             "raid replies 200/200",
}
WINS = sorted(set(WORLDS) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return genuine.replay_all(WORLDS, tmp_path_factory.mktemp("redteam7"))


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_seventh_red_team_results_account_for_the_trace(name: str, runs: dict[str, Any]) -> None:
    """Message and sender counts, per-sender, oracle and naive spends match the trace."""
    _account(*runs[name])


@pytest.mark.parametrize("name", WINS)
def test_seventh_red_team_worlds_the_defaults_win(name: str, runs: dict[str, Any]) -> None:
    assert _problems(*runs[name]) == [], name


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_seventh_red_team_worlds_the_defaults_still_lose(name: str,
                                                         runs: dict[str, Any]) -> None:
    assert _problems(*runs[name]) == []


def test_seventh_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes; another seed,
    other lines."""
    genuine.check_deterministic(WORLDS, ["thanks_again_once", "testimony_poison_resend"], tmp_path)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_seventh_red_team_traces_are_well_formed(name: str) -> None:
    """Sorted times, E.164 numbers, one label per number, no opt-out as a first text, under
    15,000 lines."""
    genuine.check_well_formed(WORLDS[name](), LEGIT, OPT_OUT, raid=RAID,
                              has_raid=name not in RAID_FREE, max_lines=15_000)


def test_seventh_red_team_main_writes_every_world(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from .redteam7 import main

    assert main(["--help"]) == 0
    assert "usage" in capsys.readouterr().out
    assert main([str(tmp_path), "writing_on_raid"]) == 0
    assert (tmp_path / "writing_on_raid.jsonl").exists()
