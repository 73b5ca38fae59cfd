"""The default defences on the fifth red team's worlds (``redteam5.py``), through the CLI.

Every world is genuine traffic, no raid at all: what people, their phones and their
carriers do when they text a number seen on TV or on a social network. Each world is
replayed once per module with ``python -m raidsim simulate --trace FILE --json OUT`` (two at
a time) and judged on ``legit_coverage >= 0.97``; the results must account for every line.
Worlds the defaults lose are strict xfails with the measured coverage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import genuine
from .redteam5 import LEGIT, OPT_OUT, VARIANTS, WORLDS
from .test_heldout import MIN_COVERAGE

pytestmark = pytest.mark.heldout

Run = genuine.Run
ALL = {**WORLDS, **VARIANTS}

# Measured with the defaults at the base of this branch (seed 1).
# Found lost by this team, won since (docs/policy.md, "Disguise"): zero-width characters
# count as a disguise only inside a word, and make a template a raid's only when a tenth of
# its senders (and at least two) sent such copies; look-alike letters still do at once.
FIXED = {
    # The same pasting from Facebook, clean, but 1% of the copies (18 lines) carry one
    # U+200B / U+FEFF / U+2060: every sender of the slogan was dropped afterwards
    # (raid_template 1137, flagged_sender 113).
    "stray_zero_width": "1% of pasted copies carry one zero-width char (was coverage 0.7496)",
    # 320 group chats, 4-15 friends send the forwarded text within minutes; 15% retype it
    # in lower case, half of those with a stray zero-width char (raid_template 921).
    "group_chats": "group chats sending a forwarded text, a few with zero-width chars "
                   "(was coverage 0.8408)",
    # An Instagram reel: 10% of viewers end their own, distinct text with a hashtag copied
    # from the caption along with a U+200B (disguised_text 341).
    "caption_hashtag": "own texts with a hashtag copied with a U+200B, 10% (was 0.8886)",
    "caption_hashtag_5pct": "the same with 5% (was coverage 0.9468)",
    # Exactly one pasted copy (of ~1,380) carries a U+200B (raid_template 176).
    "one_zero_width": "one pasted copy of 1,380 carries a U+200B (was coverage 0.9612)",
    "stray_zero_width_0p2": "0.2% of pasted copies (4 lines) carry one (was 0.9132)",
    "stray_zero_width_0p5": "0.5% of pasted copies (8 lines) carry one (was 0.8095)",
    "insta_paste_5pct": "5% paste an Instagram caption, bold + U+200B (was 0.9626)",
    "group_chats_160": "160 group chats (was coverage 0.9303)",
}
KNOWN_LOSSES = {
    # A support text goes round Instagram/TikTok/Twitter/Facebook/WhatsApp; 35% of 4,000
    # people paste one of four slogans as copied from their app (Instagram: bold letters
    # and U+200B; TikTok: U+FEFF and U+2060; ...), and HALF of them add a stray invisible
    # character of their own, anywhere, most often inside a word: about a fifth of the
    # slogans' senders then hide a character inside a word, as a filter-dodging script
    # does. Was 0.6967 (raid_template 1367); 0.7115 since (raid_template 1302).
    "paste_invisible": "half the pasters add a zero-width char inside a word: coverage 0.71",
}
WINS = sorted(set(ALL) - set(KNOWN_LOSSES))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return genuine.replay_all(ALL, tmp_path_factory.mktemp("redteam5"))


@pytest.mark.parametrize("name", sorted(ALL))
def test_fifth_red_team_results_account_for_the_trace(name: str,
                                                  replay: dict[str, Run]) -> None:
    """Message and sender counts, oracle and naive spends match the trace."""
    genuine.check_accounts(*replay[name], LEGIT)


@pytest.mark.parametrize("name", WINS)
def test_fifth_red_team_worlds_the_defaults_win(name: str, replay: dict[str, Run]) -> None:
    world, results = replay[name]
    coverage = genuine.coverage(world, results, LEGIT)
    assert coverage >= MIN_COVERAGE, (FIXED.get(name, name), coverage,
                                      results["decisions"]["by_rule"])


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    for name, reason in sorted(KNOWN_LOSSES.items())
])
def test_fifth_red_team_worlds_the_defaults_lose(name: str, replay: dict[str, Run]) -> None:
    world, results = replay[name]
    coverage = genuine.coverage(world, results, LEGIT)
    assert coverage >= MIN_COVERAGE, (name, coverage, results["decisions"]["by_rule"])


def test_fifth_red_team_worlds_are_deterministic(tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes."""
    genuine.check_deterministic(ALL, ["paste_invisible", "group_chats", "carrier_split"], tmp_path)


@pytest.mark.parametrize("name", sorted(ALL))
def test_fifth_red_team_traces_are_well_formed(name: str) -> None:
    """Sorted times, E.164 numbers, all genuine, no opt-out as a first text."""
    genuine.check_well_formed(ALL[name](), LEGIT, OPT_OUT)
