"""The default defences on the red team's worlds (``redteam.py``), through the real CLI.

Same criteria as ``test_heldout.py``: legit coverage >= 0.97, and spend strictly below one
reply per sender when the world holds a raid. The worlds the defaults still lose are
marked ``xfail(strict=True)`` with the reason ``docs/policy.md`` gives: a change that
starts winning one of them fails here until it is promoted to a plain regression test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .redteam import WORLDS as FIRST_WORLDS
from .redteam2 import WORLDS as SECOND_WORLDS
from .test_heldout import MIN_COVERAGE, eur, simulate

WORLDS = {**FIRST_WORLDS, **SECOND_WORLDS}
assert not set(FIRST_WORLDS) & set(SECOND_WORLDS)

pytestmark = pytest.mark.heldout

Results = dict[str, Any]

# world -> what it checks; all but w3 failed the criteria before the fix named here
FIXED = {
    # one genuine sender whose *second* message was a common opener made it a raid
    # template: only a sender pasting its own text again counts as a repeat now
    "w13c_common_phrase_3pct_second": "a repeat is a sender's own text again",
    # 300 raiders pasting the TV catchphrase 3-6 times among 7,000 viewers dropped 4,000
    # of them: each sender counts once, a tenth of the senders must repeat it, and a
    # template cools when non-repeating senders dilute it
    "w4b_fixed_phrase_poison": "repeaters counted once, 10% bar, cooling",
    # genuine viewers held in a surge who wrote 3-9 more messages were dropped as floods
    "w7b_angry_surge": "a held sender's new words are not a flood",
    # a raid inside a genuine TV surge: both at once
    "w3_press_plus_raid": "surge hold with a raid underneath",
    # 60 offices of 6-12 colleagues on consecutive numbers, sharing a wording: a block is
    # hot from 13 new senders (it was 5), more than an office
    "w14_office_blocks": "number blocks hot from 13 senders",
    # the second red team (redteam2.py), which read docs/policy.md: what it did not win
    "w3_blocks12": "blocks of 12 just under the block bar, 30% repeaters: templates",
    "w5b_cool": "a hot raid template diluted by 3,000 one-time pasters stays caught",
    # raiders writing the openers genuine senders had used for days made them hot phrases
    # and dropped 9 % of the genuine senders: a phrase 50 people used over two hours before
    # anyone reused it is public (the third red team's quoted text, redteam3.py)
    "w11_phrase_poison": "phrases the public used first stay public",
}
KNOWN_LOSSES = {
    "w5_oneshot_random": "one-shot unique texts from fresh numbers look like curious people",
    "w1_rep08": "a template raid in which 8% of the raiders paste again: under the 10% bar",
    "w6_short_once": "one-time pasters of texts under min_words words: no template, no repeat",
}


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Results]:
    runs: dict[str, Results] = {}

    def run(name: str) -> Results:
        if name not in runs:
            world, end = WORLDS[name]()
            directory: Path = tmp_path_factory.mktemp(name)
            trace = directory / f"{name}.jsonl"
            world.write(str(trace), end=end)
            runs[name] = simulate(trace, directory / "results.json")
        return runs[name]

    return run


def _verdict(results: Results) -> list[str]:
    problems = []
    if eur(results["legit_coverage"]) < MIN_COVERAGE:
        problems.append(f"coverage {results['legit_coverage']}")
    if results["messages"]["raid"] and not (
            eur(results["spend_eur"]) < eur(results["per_sender_spend_eur"])):
        problems.append(f"spend {results['spend_eur']} not below one reply per sender "
                        f"{results['per_sender_spend_eur']}")
    cap = results["budget"]["cap_eur"]
    if cap is not None and eur(results["spend_eur"]) > eur(cap):
        problems.append(f"spend {results['spend_eur']} over the cap {cap}")
    return problems


@pytest.mark.parametrize("name", sorted(FIXED))
def test_red_team_worlds_the_defaults_now_win(name: str,
                                               replay: Callable[[str], Results]) -> None:
    assert _verdict(replay(name)) == [], FIXED[name]


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_red_team_worlds_the_defaults_still_lose(name: str,
                                                 replay: Callable[[str], Results]) -> None:
    assert _verdict(replay(name)) == []


def test_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        world, end = WORLDS["w15c_opener_poison_3"]()
        world.write(str(path), end=end)
    assert first.read_bytes() == second.read_bytes()
