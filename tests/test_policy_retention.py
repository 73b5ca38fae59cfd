"""Retention reaches the policy's memory: ``forget_texts`` and the responder's hourly purge.

The store erases message bodies after ``RAIDSIM_RETENTION_DAYS``; the policy's memory (its
cache of texts and their sketches, templates, phrases, each sender's phrases) kept what it
learnt from them for as long as its rules look back, and a cache of recent texts until it
filled. The purge now makes the running policy forget the same texts.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from responder.policy import MemoryLedger, Message, PolicyConfig, PolicyState, admit
from responder.policy.config import Surge
from responder.policy.engine import forget_texts
from sim.scenario import load_scenario
from sim.traffic import iter_generate

TO = "+33644649021"
DAY = 86400.0
ROOT = Path(__file__).resolve().parent.parent
# Word pieces only these texts have (none of them occurs in the other texts here)
OLD = ("zanzibar", "nzib", "ziba")
NEW = ("kilimanjaro", "iman", "njar")


def strings(root: Any) -> list[str]:
    """Every str reachable from ``root`` through containers and objects' attributes."""
    out: list[str] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or obj is None or isinstance(obj, int | float | bool):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            out.append(obj)
        elif isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            todo.extend(obj)
        elif hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
            for name in getattr(type(obj), "__slots__", ()):
                todo.append(getattr(obj, name, None))
            todo.extend(getattr(obj, "__dict__", {}).values())
    return out


def holds(state: PolicyState, pieces: tuple[str, ...]) -> bool:
    return any(piece in s for s in strings(state) for piece in pieces)


def texts(word: str, rng: random.Random) -> list[str]:
    starts = ["Bonsoir", "Salut", "Coucou", "Hello"]
    return [f"{rng.choice(starts)} je reviens de {word} et un type m'a donné ce numéro {k}"
            for k in range(6)]


def feed(state: PolicyState, ledger: MemoryLedger, word: str, start: float, first: int) -> None:
    """Twenty senders write texts with ``word``; each sends its text again an hour later
    (so its phrases and its templates are remembered as reused)."""
    rng = random.Random(word)
    for k in range(20):
        sender = f"+3361{first + k:07d}"
        body = rng.choice(texts(word, rng))
        t = start + 60.0 * k
        admit(state, ledger, Message(f"SM{first + k}", sender, TO, body, t), now=t)
        again = t + 3600.0
        admit(state, ledger, Message(f"SM{first + k}b", sender, TO, body, again), now=again)


def test_forget_texts_leaves_nothing_of_the_texts_before_the_cutoff() -> None:
    """After day 0's texts, day 2's; forgetting before day 1 removes every trace of day 0's
    words (texts, 4-grams, phrases, senders' phrases) and keeps day 2's."""
    state, ledger = PolicyState(), MemoryLedger()
    feed(state, ledger, "zanzibar", 0.0, 0)
    feed(state, ledger, "kilimanjaro", 2 * DAY, 100)
    assert holds(state, OLD) and holds(state, NEW)
    forgotten = forget_texts(state, before=DAY)
    assert forgotten >= 2
    assert not holds(state, OLD)
    assert holds(state, NEW)
    assert forget_texts(state, before=DAY) == 0  # nothing more to forget
    # the senders are still remembered: the first ones stay answered once
    assert len(state.senders) == 40
    again = admit(state, ledger, Message("SM-late", "+33610000000", TO, "Salut", 3 * DAY),
                  now=3 * DAY)
    assert again.rule == "sender_limit"


def test_a_sender_whose_phrases_are_older_than_the_cutoff_forgets_them_all() -> None:
    """A sender who wrote on day 0 and again on day 2: its set of phrases mixes both days, so
    it is emptied (strict, as the store erases the day-0 body); a later phrase starts anew."""
    state, ledger = PolicyState(), MemoryLedger()
    sender = "+33612345678"
    rng = random.Random(1)
    admit(state, ledger, Message("SM1", sender, TO, texts("zanzibar", rng)[0], 0.0), now=0.0)
    later = texts("kilimanjaro", rng)[1]
    admit(state, ledger, Message("SM2", sender, TO, later, 2 * DAY), now=2 * DAY)
    remembered = state.senders[sender]
    assert any("zanzibar" in p for p in remembered.frags)
    forget_texts(state, before=DAY)
    assert remembered.frags == frozenset()
    admit(state, ledger, Message("SM3", sender, TO, later + " encore", 3 * DAY), now=3 * DAY)
    assert remembered.frags and remembered.frags_at == 3 * DAY


def decisions(records: list[Any], config: PolicyConfig, retention_s: float | None
              ) -> list[tuple[str, str]]:
    """Each message's decision, with ``forget_texts`` every hour at ``retention_s``."""
    state, ledger = PolicyState(config), MemoryLedger()
    out = []
    next_purge = 0.0
    for rec in records:
        if retention_s is not None and rec.t >= next_purge:
            forget_texts(state, before=rec.t - retention_s)
            next_purge = rec.t + 3600.0
        decision = admit(state, ledger, Message(rec.message_id, rec.sender, rec.to, rec.body,
                                                rec.t), now=rec.t)
        out.append((decision.action.value, decision.rule))
    if retention_s is not None:
        cutoff = records[-1].t - retention_s - 3600.0
        assert all(features.seen >= cutoff for features in state.text_cache.values())
    return out


def test_the_2017_week_decides_alike_under_the_default_retention() -> None:
    """Forgetting hourly at the default retention (30 days) changes no decision of the 2017
    week; at a retention of one day the run goes on, each text kept a day at most."""
    scenario = load_scenario(ROOT / "scenarios" / "anti-relous-2017.toml")
    # Without surge holds: this loop has no timer to release them.
    config = PolicyConfig(surge=Surge(enabled=False))
    records = list(iter_generate(scenario, scenario.seed))[:12_000]
    plain = decisions(records, config, None)
    assert decisions(records, config, 30 * DAY) == plain
    short = decisions(records, config, DAY)
    assert len(short) == len(plain)
