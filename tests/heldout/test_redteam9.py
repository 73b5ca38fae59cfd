"""The default defences on the ninth red team's worlds (``redteam9.py``), through the CLI.

Written by an audit that read ``docs/policy.md`` and the earlier teams' known losses, to
find what none of them covers: genuine senders held for hours who ask again in their own
words, a cheap flood that keeps the hold on, raiders who come back after the reply window,
crowds that resend. Every world is replayed once per module with ``python -m raidsim
simulate --trace FILE --json OUT`` (two at a time) and judged on the product's criteria,
recomputed from the trace (``_problems`` of ``test_redteam4``). Worlds the defaults lose are
strict xfails with the measured numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import genuine
from .redteam9 import LEGIT, OPT_OUT, RAID, RAID_FREE, WORLDS
from .test_redteam4 import _account, _problems

pytestmark = pytest.mark.heldout

_REASK = ("held for hours, a third of the genuine senders ask again in the words of their "
          "first text: their reuse makes ordinary trigrams hot (raid_phrases)")
KNOWN_LOSSES = {
    # A TV report (2,500 viewers), then a 25-hour template raid (1,800 raiders); 500 more
    # genuine senders during the raid. 35% of those left without an answer write 1-3 more
    # texts (nudges, or a 4-9-word chunk of their first text), 15% of them resend it.
    "long_hold_reask": f"{_REASK}: coverage 0.953947 (raid_phrases 1401)",
    "long_hold_reask_s2": f"{_REASK}, seed 2: coverage 0.969474",
    "long_hold_reask_s3": f"{_REASK}, seed 3: coverage 0.954474",
    "long_hold_reask_nores": f"{_REASK}, no late resend: coverage 0.962895",
    "long_hold_reask_20": f"{_REASK}, 20% of them: coverage 0.967105",
    "long_hold_reask_small_raid": f"{_REASK}, 400 raiders: coverage 0.968421",
    "long_hold_reask_noraid": f"{_REASK}, no raid (the surge hold): coverage 0.969474",
    # 30 flooding numbers (renewed every 3 h) and 12 template pasters an hour keep raid mode
    # on for 40 h: the flagged senders' messages still count in the surge windows, and the
    # pasters keep the raid evidence up. Held that long, the genuine re-ask as above; their
    # replies wait up to 27 h (p95).
    "hold_forever": "raid mode kept on 40 h by flagged floods, held genuine re-ask: "
                    "coverage 0.9612",
    "hold_forever_s2": "the same, seed 2: coverage 0.9536",
    # 1,500 raiders of composed insults on day 1, 80% of them back on day 31 with new ones:
    # the 30-day sender window has passed and an unflagged sender is forgotten, so each is
    # answered again.
    "month_return": "raiders back after the 30-day window: spend 473.28 not below per-sender "
                    "384.00 (2,058 raid replies for 1,500 raid senders)",
    # Genuine only. A viral post: women test the number with one word; held, 12% (5%) press
    # send again 3-5 times: a short text sent again as a 4th+ message is a flood.
    "testers": "one-word tests resent 3-5 times while held: coverage 0.918485 "
               "(repeat_flood 269)",
    "testers_5pct": "the same at 5%: coverage 0.967879 (repeat_flood 106)",
    # Genuine only. 60 lycée classes text their clown's joke (4 jokes), 20% twice, some as a
    # variant: the variants count as pastes, over the 10% bar.
    "school_joke": "a class's joke sent twice as a variant: coverage 0.964286 "
                   "(raid_template 85)",
}
WINS = sorted(set(WORLDS) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return genuine.replay_all(WORLDS, tmp_path_factory.mktemp("redteam9"))


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_ninth_red_team_results_account_for_the_trace(name: str, runs: dict[str, Any]) -> None:
    """Message and sender counts, per-sender, oracle and naive spends match the trace."""
    _account(*runs[name])


@pytest.mark.parametrize("name", WINS)
def test_ninth_red_team_worlds_the_defaults_win(name: str, runs: dict[str, Any]) -> None:
    assert _problems(*runs[name]) == [], name


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_ninth_red_team_worlds_the_defaults_still_lose(name: str,
                                                        runs: dict[str, Any]) -> None:
    assert _problems(*runs[name]) == []


def test_ninth_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes; another seed,
    other lines."""
    genuine.check_deterministic(WORLDS, ["testers", "month_return"], tmp_path)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_ninth_red_team_traces_are_well_formed(name: str) -> None:
    """Sorted times, E.164 numbers, one label per number, no opt-out as a first text, under
    35,000 lines."""
    genuine.check_well_formed(WORLDS[name](), LEGIT, OPT_OUT, raid=RAID,
                              has_raid=name not in RAID_FREE, max_lines=35_000)
