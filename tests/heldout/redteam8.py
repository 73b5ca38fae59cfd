"""Eighth red team: worlds that attack "A number's own habit raises the bar".

Written blind against ``docs/policy.md`` (all of it, the habit bullet and its neighbours in
"Repeating is what a raid does" above all), ``docs/scenarios.md`` (the trace format) and
``tests/heldout/README.md``. Not read: ``responder/policy/engine.py``, ``sim/traffic/``,
``scenarios/``, and the other teams' generators, except ``redteam7.py``, whose structure
(``World``, ``Builder``, ``WORLDS``, ``main``) and text stocks are reused (imported, not
copied).
Standard library only; every world is a pure function of its seed.

Two sides of the rule:

- raids that hide behind a habit: a raid from the first hours (learnt with the rest of
  the first day), a raid that ramps up so no hour jumps, a raid on a number whose genuine
  writers already resend, a raid that first trains the habit with genuine-looking resenders;
- genuine populations the habit misses: a habit that starts after a quiet first day, a
  habit of a few percent concentrated on a few stock texts (under the no-habit floor), a
  habit that begins in a surge (raid mode, nothing learnt).

    python -m tests.heldout.redteam8 OUTDIR [NAME ...]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from . import redteam7
from .redteam7 import (
    AFTER_REPLY,
    OPT_OUT,
    World,
    brushoff,
    insult,
    pick,
    testimony,
)

__all__ = ["LEGIT", "OPT_OUT", "RAID", "RAID_FREE", "WORLDS", "World", "main"]

LEGIT = "legit"
RAID = "raid"
DAY = 86400.0
HOUR = 3600.0
MIN = 60.0


class Builder(redteam7.Builder):
    TEAM, IDS = "redteam8", "RT8"


# -- genuine senders ------------------------------------------------------------------------

def brushoffs(b: Builder, people: int, start: float, end: float) -> None:
    """Men handed the number as a brush-off; a third write once more after the reply. Nobody
    sends a text of theirs again: this number has no habit."""
    rng = b.rng
    for _ in range(people):
        n = b.number()
        t = b.daily_time(start, end)
        b.add(t, n, brushoff(rng), LEGIT)
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            t += rng.lognormvariate(4.8, 0.8)
            b.add(t, n, pick(rng, AFTER_REPLY), LEGIT)


def resenders(b: Builder, people: int, start: float, end: float, share: float,
              delay: tuple[float, float] = (HOUR, 20 * HOUR),
              times: Sequence[int] = (1, 1, 2), label: str = LEGIT,
              weight: Callable[[float], float] | None = None) -> None:
    """Support writers, each their own testimony in the stock phrases; ``share`` of them,
    answered, send the very same text again ``times`` times, ``delay`` apart."""
    rng = b.rng
    for _ in range(people):
        n = b.number()
        t = b.daily_time(start, end, weight)
        body = testimony(rng)
        b.add(t, n, body, label)
        if rng.random() < share:
            for _ in range(rng.choice(times)):
                t += rng.uniform(*delay)
                b.add(t, n, body, label)


# A charity's suggested text, printed on its flyer: people copy it word for word.
STOCK = [
    "Merci pour ce numéro, je le donne à toutes mes copines",
    "Bravo pour le numéro anti-relous, enfin une bonne idée",
    "Je soutiens le numéro anti-relous, continuez comme ça",
    "Bonjour, je viens de la part de l'association, merci pour votre action",
    "Merci de nous protéger des relous, c'est génial",
]


def stock_writers(b: Builder, people: int, start: float, end: float, share: float,
                  delay: tuple[float, float]) -> None:
    """People who send the flyer's text (a stray emoji or full stop at most); ``share`` of
    them, answered, send it again ``delay`` later (they thought it had not gone)."""
    rng = b.rng
    for _ in range(people):
        n = b.number()
        t = b.daily_time(start, end)
        body = pick(rng, STOCK) + pick(rng, ["", "", ".", " !", " 🙏", " ❤️"])
        b.add(t, n, body, LEGIT)
        if rng.random() < share:
            b.add(t + rng.uniform(*delay), n, body, LEGIT)


# -- raid texts -----------------------------------------------------------------------------

TEMPLATES = [
    "Ton numéro anti-relous tourne sur le forum, chaque SMS te coûte, on va te ruiner",
    "Les relous te saluent, réponds à ça ton robot va cracher des thunes mdr",
    "Numéro de féministe hystérique détecté, on est des milliers à écrire ce soir",
]


def paste(rng: random.Random, template: str) -> str:
    """A pasted template with a light mutation, as a forum's copy-paste comes out."""
    r = rng.random()
    if r < 0.4:
        return template
    if r < 0.7:
        return template + " " + pick(rng, ["😂", "🤡", "lol", "ptdr", "#18-25", "cheh"])
    return template.replace(",", pick(rng, [" ,", ",,", " -"]), 1)


def pasters(b: Builder, raiders: int, start: float, end: float, repeat: float | Callable[
            [float], float], delay: tuple[float, float] = (30 * MIN, 6 * HOUR),
            weight: Callable[[float], float] | None = None, daily: bool = True) -> None:
    """Raiders pasting one of the templates once; ``repeat`` of them (a share, or a share
    of the time) paste their own copy again ``delay`` later."""
    rng = b.rng
    for _ in range(raiders):
        n = b.number()
        t = b.daily_time(start, end, weight) if daily else rng.uniform(start, end)
        body = paste(rng, pick(rng, TEMPLATES))
        b.add(t, n, body, RAID)
        share = repeat(t) if callable(repeat) else repeat
        if rng.random() < share:
            b.add(t + rng.uniform(*delay), n, body, RAID)


def insulters(b: Builder, raiders: int, start: float, end: float, repeat: float,
              delay: tuple[float, float] = (HOUR, 10 * HOUR)) -> None:
    """Raiders composing an insult from the forum's pieces; ``repeat`` of them send theirs
    again hours later."""
    rng = b.rng
    for _ in range(raiders):
        n = b.number()
        t = b.daily_time(start, end)
        body = insult(rng)
        b.add(t, n, body, RAID)
        if rng.random() < repeat:
            b.add(t + rng.uniform(*delay), n, body, RAID)


# -- worlds: raids --------------------------------------------------------------------------

def habit_early_raid(seed: int = 1, repeat: float = 0.2) -> World:
    """A forum raid from the first hour, four days long, at an ordinary rate (no surge):
    raiders paste one of three templates, ``repeat`` of them again 30 min to 6 h later.
    The first day is learnt from everything, so the raid's resends become the habit."""
    b = Builder(f"habit_early_raid_{repeat}", seed)
    brushoffs(b, 2000, 0, 4 * DAY)
    pasters(b, 1500, 0, 4 * DAY, repeat)
    return b.world()


def habit_early_insults(seed: int = 1, start: float = 0.0, train: int = 0) -> World:
    """As ``habit_early_raid``, insults composed from the thread's pieces, 25% sent again
    hours later; with ``train``, that many raiders first send genuine-looking testimonies
    on the first day, 40% of them again hours later, and the insults start at ``start``."""
    b = Builder(f"habit_early_insults_{start}_{train}", seed)
    brushoffs(b, 2000, 0, 4 * DAY)
    if train:
        resenders(b, train, 0, DAY, 0.4, label=RAID)
    insulters(b, 1500, start, 4 * DAY, 0.25)
    return b.world()


def habit_ramp_raid(seed: int = 1) -> World:
    """A raid that starts as a trickle in the first hours and grows over four days, its
    repeaters growing from 6% to 30%: no hour is twice the one before."""
    b = Builder("habit_ramp_raid", seed)
    brushoffs(b, 2000, 0, 4 * DAY)
    end = 4 * DAY
    pasters(b, 1600, 0, end, lambda t: 0.06 + 0.24 * t / end,
            weight=lambda t: 0.1 + 0.9 * t / end)
    return b.world()


def habit_cover_raid(seed: int = 1, genuine: float = 0.2, repeat: float = 0.2,
                     start: float = 1.5 * DAY) -> World:
    """A number whose support writers resend their text (``genuine`` share, hours later);
    from ``start`` a raid pastes templates with as many repeaters as the habit."""
    b = Builder(f"habit_cover_raid_{genuine}_{repeat}_{start}", seed)
    resenders(b, 3000, 0, 4 * DAY, genuine)
    pasters(b, 1000, start, 4 * DAY, repeat)
    return b.world()


def habit_trained_raid(seed: int = 1, train: float = 0.35, repeat: float = 0.25) -> World:
    """Raiders first train the habit: on the first day 500 numbers send genuine-looking
    testimonies and ``train`` of them resend theirs hours later; from day 1 on the raid
    pastes its templates with ``repeat`` repeaters, while the trainers keep going."""
    b = Builder(f"habit_trained_raid_{train}_{repeat}", seed)
    brushoffs(b, 2000, 0, 4 * DAY)
    resenders(b, 500, 0, DAY, train, label=RAID)
    resenders(b, 300, DAY, 4 * DAY, train, label=RAID)
    pasters(b, 1200, DAY, 4 * DAY, repeat)
    return b.world()


def habit_trained_ramp(seed: int = 1) -> World:
    """Trainers from the first hour, their resends growing slowly from 10% to 40% over
    two days; then the templates, pasted with 30% repeaters, enter slowly too."""
    b = Builder("habit_trained_ramp", seed)
    brushoffs(b, 2000, 0, 4 * DAY)
    rng = b.rng
    for _ in range(900):
        n = b.number()
        t = b.daily_time(0, 4 * DAY)
        body = testimony(rng)
        b.add(t, n, body, RAID)
        if rng.random() < 0.1 + 0.3 * min(t / (2 * DAY), 1.0):
            b.add(t + rng.uniform(HOUR, 12 * HOUR), n, body, RAID)
    pasters(b, 1200, DAY, 4 * DAY, 0.3, weight=lambda t: min(1.0, 0.15 + (t - DAY) / DAY))
    return b.world()


# -- worlds: genuine only -------------------------------------------------------------------

def late_habit_feature(seed: int = 1, share: float = 0.2, start: float = 1.5 * DAY) -> World:
    """A quiet brush-off number for a day and a half, nobody resending; then a magazine
    feature brings support writers, ``share`` of whom resend their text 1-20 h later. The
    onset of their habit looks like a jump, so it is not learnt."""
    b = Builder(f"late_habit_feature_{share}_{start}", seed)
    brushoffs(b, 1200, 0, 4 * DAY)
    resenders(b, 2800, start, 4.5 * DAY, share)
    return b.world()


def late_habit_brushoff(seed: int = 1) -> World:
    """Brush-off men only; from day 2 a club hands the number out, and its men (a third of
    the new ones) resend their opener once, 1-30 h later, 30% of them: an overall habit
    of 10% that starts on the third day."""
    b = Builder("late_habit_brushoff", seed)
    rng = b.rng
    for _ in range(3600):
        n = b.number()
        t = b.daily_time(0, 4 * DAY)
        first = brushoff(rng)
        b.add(t, n, first, LEGIT)
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            t += rng.lognormvariate(4.8, 0.8)
            b.add(t, n, pick(rng, AFTER_REPLY), LEGIT)
        if t > 2 * DAY and rng.random() < 0.1:
            b.add(t + rng.uniform(HOUR, 30 * HOUR), n, first, LEGIT)
    return b.world()


def stock_text_habit(seed: int = 1, stock: int = 800, share: float = 0.2,
                     delay: tuple[float, float] = (20 * MIN, 3 * HOUR)) -> World:
    """Most writers send a testimony of their own and never resend; ``stock`` send the
    flyer's text word for word, ``share`` of them again ``delay`` later. The number's
    habit stays under the 5% floor, the flyer texts' repeaters are over the 10% bar."""
    b = Builder(f"stock_text_habit_{stock}_{share}_{delay}", seed)
    brushoffs(b, 1000, 0, 4 * DAY)
    resenders(b, 2400, 0, 4 * DAY, 0.0)
    stock_writers(b, stock, 0, 4 * DAY, share, delay)
    return b.world()


def surge_onset_habit(seed: int = 1, share: float = 0.2) -> World:
    """The evening news on day 1 shows the number: 3,000 viewers in an hour write their own
    testimonies, and ``share`` of them, answered after the hold, send the same text again
    1-5 h later. Their habit begins in raid mode, where nothing is learnt."""
    b = Builder(f"surge_onset_habit_{share}", seed)
    brushoffs(b, 1000, 0, 3.5 * DAY)
    rng = b.rng
    at = DAY + 20 * HOUR + 10 * MIN
    for _ in range(3000):
        n = b.number()
        t = b.surge_time(at, 3 * MIN, 25 * MIN)
        body = testimony(rng)
        b.add(t, n, body, LEGIT)
        if rng.random() < share:
            b.add(t + rng.uniform(HOUR, 5 * HOUR), n, body, LEGIT)
    # the following days, more writers, with the same habit
    resenders(b, 900, 2 * DAY, 3.5 * DAY, share)
    return b.world()


WORLDS: dict[str, Callable[..., World]] = {
    # raids
    "habit_early_raid": habit_early_raid,
    "habit_early_raid_12pct": lambda seed=1: habit_early_raid(seed, repeat=0.12),
    "habit_early_insults": habit_early_insults,
    "habit_early_insults_s2": lambda seed=2: habit_early_insults(seed),
    "habit_trained_insults": lambda seed=1: habit_early_insults(seed, start=DAY, train=600),
    "habit_ramp_raid": habit_ramp_raid,
    "habit_cover_raid": habit_cover_raid,
    "habit_trained_raid": habit_trained_raid,
    "habit_trained_heavy": lambda seed=1: habit_trained_raid(seed, train=0.6, repeat=0.15),
    "habit_trained_ramp": habit_trained_ramp,
    # genuine only
    "late_habit_feature": late_habit_feature,
    "late_habit_feature_15": lambda seed=1: late_habit_feature(seed, share=0.15),
    "late_habit_brushoff": late_habit_brushoff,
    "stock_text_habit": stock_text_habit,
    "stock_text_habit_late": lambda seed=1: stock_text_habit(seed, delay=(HOUR, 20 * HOUR)),
    "surge_onset_habit": surge_onset_habit,
}
RAID_FREE = frozenset({
    "late_habit_feature", "late_habit_feature_15", "late_habit_brushoff", "stock_text_habit",
    "stock_text_habit_late", "surge_onset_habit",
})

USAGE = """usage: python -m tests.heldout.redteam8 OUTDIR [NAME ...]

Write the eighth red team's worlds as JSONL traces into OUTDIR (all, or the NAMEs).
Worlds: """ + ", ".join(WORLDS)


def main(argv: Sequence[str] | None = None) -> int:
    return redteam7.write_worlds(WORLDS, USAGE, argv)


if __name__ == "__main__":
    raise SystemExit(main())
