"""The default defences on the third red team's worlds (``redteam3.py``), through the CLI.

The third team wrote its worlds blind, like the first (no reading of the policy, of the
project's generators or of the other teams' worlds), to find realistic traffic the
defaults lose. Same criteria as ``test_redteam.py``. What it found and what became of it
is in ``tests/heldout/README.md``; the worlds the defaults still lose are strict xfails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .redteam3 import WORLDS
from .test_heldout import simulate
from .test_redteam import _verdict

pytestmark = pytest.mark.heldout

Results = dict[str, Any]

# A news article printed the text readers should send; thousands did, word for word, over
# a day, and a forum raid then opened with the same words and repeated them: the text
# went hot and dropped its genuine senders for days (coverage 0.51 to 0.67). A text that
# 50 people sent over two hours before anyone sent it again is now a public phrase.
FIXED = {
    "quote_poison_small": "250 raiders repeat a quoted text 1,000 readers sent first",
    "quote_poison_big": "900 raiders repeat it",
    "quote_poison_3days": "the quote is sent for three days, the raid lasts three hours",
    # genuine senders who send their first text again within minutes were counted as
    # pasting it: with the raiders' own repeats the frames went hot (coverage 0.9358)
    "mimic_fixed": "raiders write like genuine senders (fixed frames)",
    # 1,500 raiders writing the genuine senders' sentences 3-8 times each: coverage 0.9167
    # until the number's habit (docs/policy.md) raised the phrases' bar above the genuine
    # senders' own reuse: 0.9783
    "mimic_repeat": "raiders write like genuine senders and reuse their phrases",
}
KNOWN_LOSSES = {
    # raiders who write the very sentences this number's genuine senders write ("Salut c'est
    # Kevin, on s'est vus au bar hier soir"), several times each: the phrases go hot
    "mimic_long_tail": "raiders write like genuine senders (one evening, then quiet)",
    "mimic_disjoint": "raiders write like genuine senders (other names, same frames)",
    # one reply per raider, never a second: nothing in 2-3 different short insults from a
    # fresh number tells it from a person (the default seeds pass by a few raiders)
    "insult_pair_slow_s1": "two different insults per fresh number, an hour apart",
    # the default seed passed by 4 raiders of 2,000 until an answered sender's resend came
    # to count half for its phrases (docs/policy.md): the second insult is often the first
    # again (a small stock), so each raider is now answered once, as on seed 1
    "insult_pair_slow": "two insults per fresh number from a small stock: raid replies "
                        "2,000 of 2,000 (1,996 before)",
    "insult_trio_s1": "three different insults per fresh number, minutes apart",
    "tv_plus_spike_s1": "2-3 different insults per fresh number inside a TV surge",
    # 20 SIMs in rotation for five days, in quiet traffic: each gets its first reply
    "roundrobin20": "20 numbers, each answered once, 1,300 insults dropped",
}
WINS = sorted(set(WORLDS) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Results]:
    runs: dict[str, Results] = {}

    def run(name: str) -> Results:
        if name not in runs:
            directory: Path = tmp_path_factory.mktemp(name)
            trace = directory / f"{name}.jsonl"
            WORLDS[name]().write(str(trace))
            runs[name] = simulate(trace, directory / "results.json")
        return runs[name]

    return run


@pytest.mark.parametrize("name", WINS)
def test_third_red_team_worlds_the_defaults_win(name: str,
                                                 replay: Callable[[str], Results]) -> None:
    results = replay(name)
    assert _verdict(results) == [], FIXED.get(name, name)
    if results["messages"]["raid"]:  # the saving comes from raiders, not from people
        assert results["replies"]["raid"] < results["senders"]["raid"]


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_third_red_team_worlds_the_defaults_still_lose(name: str,
                                                       replay: Callable[[str], Results]) -> None:
    assert _verdict(replay(name)) == []


def test_third_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        WORLDS["quote_poison_small"]().write(str(path))
    assert first.read_bytes() == second.read_bytes()
