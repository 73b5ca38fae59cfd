"""The default defences on the sixth red team's worlds (``redteam6.py``), through the CLI.

Every world is genuine traffic, no raid at all, over three to six days of organic
background. Each world is replayed once per module with
``python -m raidsim simulate --trace FILE --json OUT`` (two at a time) and judged on
``legit_coverage >= 0.97``; the results must account for every line. Worlds the defaults
lose are strict xfails with the measured coverage and the rules that dropped people.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import genuine
from .redteam6 import LEGIT, OPT_OUT, VARIANTS, WORLDS
from .test_heldout import MIN_COVERAGE

pytestmark = pytest.mark.heldout

Run = genuine.Run
ALL = {**WORLDS, **VARIANTS}

# Measured with the defaults at the base of this branch (seed 1).
KNOWN_LOSSES = {
    # 500 employees of one company, numbers from one fleet block (+3367012xxx, 500 of
    # 1,000 in use), each sends their own text within 40 minutes of an HR mail.
    "corporate_day": "500 employees on consecutive fleet numbers, own texts: coverage 0.8071 "
                     "(number_block 189)",
    "corporate_day_200": "200 employees: coverage 0.8985 (number_block 69)",
    "corporate_day_100": "100 employees: coverage 0.9586 (number_block 24)",
    # 30% of a TV surge's 2,500 viewers text from one VoIP app's numbers, handed out
    # nearly in order in +3375612xxxx; each writes their own text.
    "voip_block": "30% of viewers on one VoIP block: coverage 0.8913 (number_block 324)",
    "voip_block_10pct": "10% on one VoIP block: coverage 0.9584 (number_block 103)",
}
# Won since a sender's 2nd and 3rd texts within the hour, new texts of its own sent once
# answered, no longer count as reusing their phrases (docs/policy.md). Lost before, by
# raid_phrases then flagged_sender: a viral share at a steady plateau (2,500 new people a
# day, 1-3 own texts each of common support phrases) and a magazine testimony read all day
# whose writers go on to tell more incidents or send 2-3 whole testimonies.
FIXED = {
    "plateau_days": "3-day plateau, 1-3 own texts each: 0.8993 before, now 0.9991",
    "plateau_one_day": "2,400 senders spread over one day: 0.9265 before, now 1.0",
    "testimony_incidents": "30% of testimonies followed by more incidents: 0.9221 before, "
                           "now 1.0",
    "testimony_incidents_20pct": "20%: 0.9041 before, now 1.0",
    "testimony_series": "20% send 2-3 whole testimonies: 0.8266 before, now 1.0",
    "testimony_series_10pct_s2": "10%, seed 2: 0.9357 before, now 1.0",
}
WINS = sorted(set(ALL) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return genuine.replay_all(ALL, tmp_path_factory.mktemp("redteam6"))


@pytest.mark.parametrize("name", sorted(ALL))
def test_sixth_red_team_results_account_for_the_trace(name: str,
                                                  replay: dict[str, Run]) -> None:
    """Message and sender counts, oracle and naive spends match the trace."""
    genuine.check_accounts(*replay[name], LEGIT)


@pytest.mark.parametrize("name", WINS)
def test_sixth_red_team_worlds_the_defaults_win(name: str, replay: dict[str, Run]) -> None:
    world, results = replay[name]
    coverage = genuine.coverage(world, results, LEGIT)
    assert coverage >= MIN_COVERAGE, (FIXED.get(name, name), coverage,
                                      results["decisions"]["by_rule"])


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_sixth_red_team_worlds_the_defaults_lose(name: str, replay: dict[str, Run]) -> None:
    world, results = replay[name]
    coverage = genuine.coverage(world, results, LEGIT)
    assert coverage >= MIN_COVERAGE, (name, coverage, results["decisions"]["by_rule"])


def test_sixth_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes."""
    genuine.check_deterministic(
        ALL, ["voip_block", "corporate_day", "typo_readout", "plateau_one_day"], tmp_path)


@pytest.mark.parametrize("name", sorted(ALL))
def test_sixth_red_team_traces_are_well_formed(name: str) -> None:
    """Sorted times, E.164 numbers, all genuine, no opt-out as a first text."""
    genuine.check_well_formed(ALL[name](), LEGIT, OPT_OUT)
