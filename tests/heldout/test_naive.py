"""The default defences on canned-text worlds (``naive.py``), through the CLI.

Each world is replayed once per module with ``python -m raidsim simulate --trace FILE
--json OUT`` (two at a time) and judged on the product's criteria, recomputed from the
trace as for the fourth red team: ``legit_coverage >= 0.97``; with raid lines, spend
strictly below one reply per sender and fewer raid replies than raid senders. Worlds the
defaults lose are strict xfails with the measured numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import genuine
from .naive import LEGIT, RAID, WORLDS
from .test_redteam4 import _account, _problems

pytestmark = pytest.mark.heldout

# Measured with the defaults. Before the half count, 30 of the 39 canned worlds were lost
# (coverage 0.76 to 0.95; docs/policy.md, "An answered sender sending one of its texts
# again"); before the number's habit, 3 canned worlds (0.959 to 0.969) and 6 of the 9
# put-together ones (0.09 to 0.94) still were (docs/policy.md, "A number's own habit").
KNOWN_LOSSES = {
    **{f"drip_on_canned_s{seed}": "a drip raid, one pasted template per raider: every raider "
       "answered, spend = per-sender (docs/policy.md, what the defaults do not catch)"
       for seed in range(1, 6)},
    # Texts put together from three lists of 8 (opener, sentence, sign-off), 1 to 3 each
    # minutes apart: a person's 2nd or 3rd text shares its sentence with the first one time
    # in eight. This seed's chance resends, in its first hours, turn sentences hot before
    # the number's habit is learnt (0.9213 before the habit).
    "organic_combined_s2": "coverage 0.9333 (raid_template, raid_phrases in the first hours)",
}
WINS = sorted(set(WORLDS) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, genuine.Run]:
    return genuine.replay_all(WORLDS, tmp_path_factory.mktemp("naive"))


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_canned_worlds_results_account_for_the_trace(name: str,
                                                     replay: dict[str, genuine.Run]) -> None:
    _account(*replay[name])


@pytest.mark.parametrize("name", WINS)
def test_canned_worlds_the_defaults_win(name: str, replay: dict[str, genuine.Run]) -> None:
    world, results = replay[name]
    assert _problems(world, results) == [], (name, results["decisions"]["by_rule"])


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_canned_worlds_the_defaults_still_lose(name: str,
                                               replay: dict[str, genuine.Run]) -> None:
    world, results = replay[name]
    assert _problems(world, results) == []


def test_canned_worlds_are_deterministic_and_well_formed(tmp_path: Path) -> None:
    """A world is a pure function of its seed; sorted times, E.164 numbers, one label per
    number; raid lines exactly in the raid worlds."""
    first = WORLDS["raid_on_canned_s1"]().write(tmp_path / "a.jsonl")
    second = WORLDS["raid_on_canned_s1"]().write(tmp_path / "b.jsonl")
    assert first.read_bytes() == second.read_bytes()
    assert WORLDS["raid_on_canned_s2"]().lines != WORLDS["raid_on_canned_s1"]().lines
    for name, make in WORLDS.items():
        world = make()
        times = [t for t, *_ in world.lines]
        assert times and min(times) >= 0, name
        labels: dict[str, str] = {}
        for _, number, _, label in world.lines:
            assert genuine.E164.match(number), number
            assert label in (LEGIT, RAID)
            assert labels.setdefault(number, label) == label, number
        assert world.has_raid == ("raid" in name or "drip" in name), name
