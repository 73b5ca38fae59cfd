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

# Measured with the defaults (before the fix, 30 of the 39 worlds were lost: coverage 0.76
# to 0.95; docs/policy.md, "An answered sender sending one of its texts again").
KNOWN_LOSSES = {
    **{f"drip_on_canned_s{seed}": "a drip raid, one pasted template per raider: every raider "
       "answered, spend = per-sender (docs/policy.md, what the defaults do not catch)"
       for seed in range(1, 6)},
    # Canned texts of 5 words or more are templates too, and a template counts a resend in
    # full: a few chance resends at night, when the template's count is low, turn it hot
    # until it cools.
    "small_raid_on_canned_s2": "coverage 0.9647 (raid_template: canned texts resent by chance)",
    "small_raid_on_canned_s5": "coverage 0.9593 (raid_template: canned texts resent by chance)",
    "two_shot_raid_on_canned_s2": "coverage 0.9685 (raid_template: canned texts resent by "
                                  "chance)",
    # Texts put together from three lists of 8 (opener, sentence, sign-off): a person's
    # second or third text shares its sentence with the first one time in eight, and
    # every such text is a near-duplicate (template) of an eighth of all texts. Counted as
    # pastes, those chance resends make the sentences raid templates and phrases; 1 to 3
    # texts minutes apart are won narrowly or lost (0.92-0.97), half an hour apart lost
    # (0.87-0.98), 1 to 5 texts lost massively (0.09-0.16). Measured fixes (answered
    # senders' 2nd and 3rd texts of a template counted as retries, hot phrases cooling
    # like templates) won most of them but lost five blind red-team raids and weakened
    # several more; not taken (docs/policy.md, what the defaults do not catch).
    "organic_combined_s2": "coverage 0.9213 (raid_template 160, raid_phrases 76)",
    "organic_combined_slow_s1": "coverage 0.8697 (raid_phrases 258, raid_template 133)",
    "organic_combined_slow_s2": "coverage 0.942 (raid_template 174)",
    "organic_combined_chatty_s1": "coverage 0.134 (raid_phrases 2443, raid_template 155)",
    "organic_combined_chatty_s2": "coverage 0.1593 (raid_phrases 2310, raid_template 212)",
    "organic_combined_chatty_s3": "coverage 0.0917 (raid_phrases 2622, raid_template 103)",
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
