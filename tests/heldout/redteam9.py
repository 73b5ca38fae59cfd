"""Ninth red team: people held with no answer who ask again, raids that keep the hold on,
raiders who come back after the reply window, and genuine crowds that resend.

Written by an audit against ``docs/policy.md`` and the eight earlier teams' known losses,
to find what none of them covers. It reuses ``redteam7.py``'s structure and text stocks
(imported, not copied). Standard library only; every world is a pure function of its seed.

- held for hours by a long raid, a third of the genuine senders write again, half of the
  time in the words of their first text ("Re, c'est bien le numéro anti-relou ?");
- 30 cheap flooding numbers and a dozen template pasters an hour keep raid mode, and so
  the hold, on for 40 hours;
- a raid of hand-written insults comes back a month later, past the 30-day reply window;
- a viral post: women test the number with one word, and press send again;
- prevention talks in lycées: each class texts its clown's joke, some twice.

    python -m tests.heldout.redteam9 OUTDIR [NAME ...]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from . import redteam7
from .redteam7 import OPT_OUT, World, brushoff, insult, organic, pick

__all__ = ["LEGIT", "OPT_OUT", "RAID", "RAID_FREE", "WORLDS", "World", "main"]

LEGIT = "legit"
RAID = "raid"
DAY = 86400.0
HOUR = 3600.0
MIN = 60.0


class Builder(redteam7.Builder):
    TEAM, IDS = "redteam9", "RT9"


CHANNELS = ["France 2", "TF1", "M6", "BFM", "France 3", "Quotidien", "C à vous"]
CURIOUS = [
    "Bonjour, j'ai vu le reportage sur {c}, c'est bien le numéro anti-relou ?",
    "Bonsoir, je viens de voir le sujet sur {c}, ça marche vraiment ce numéro ?",
    "Bonjour, c'est le numéro dont ils parlent sur {c} ?",
    "Coucou, je teste le numéro vu sur {c} 😄",
    "Bonsoir ! Je viens de voir ça à la télé, c'est génial, ça répond quoi ?",
    "Bonjour, c'est bien le numéro pour les relous ? Je l'ai vu sur {c}",
    "Salut, on m'a dit de tester ce numéro, ça fait quoi ?",
    "Bonsoir, je voulais savoir si ce numéro marche vraiment",
]
NUDGES = [
    "??",
    "Allô ?",
    "Il y a quelqu'un ?",
    "Ça répond pas ?",
    "Ça marche pas ?",
    "Hello ?",
    "…",
    "Bon ?",
    "Y a personne ?",
    "Ça bug ?",
]


def reask(rng: random.Random, first: str) -> str:
    """A person with no answer writes again, partly in the words of its first text."""
    words = first.replace("?", "").replace("!", "").split()
    if len(words) > 6:
        k = rng.randint(4, min(9, len(words)))
        i = rng.randint(0, len(words) - k)
        chunk = " ".join(words[i : i + k]).rstrip(",.")
    else:
        chunk = first.rstrip("?!. ")
    return pick(
        rng,
        [
            "{x} ? Je n'ai pas eu de réponse",
            "Re, {x} ?",
            "{x} ??",
            "Je réessaie : {x}",
            "Toujours rien… {x} ?",
            "Bonjour ? {x}",
            "{x}, vous m'avez pas répondu",
        ],
    ).format(x=chunk)


def impatient(
    b: Builder,
    n: str,
    t: float,
    first: str,
    label: str,
    p_more: float,
    p_resend: float,
    horizon: float,
) -> None:
    """``first``, then (with probability p_more) 1-3 more over ``horizon`` seconds: nudges,
    re-asks in its own words, and (p_resend) its first text again, hours later."""
    rng = b.rng
    b.add(t, n, first, label)
    if rng.random() >= p_more:
        return
    k = rng.choice([1, 1, 1, 2, 2, 3])
    times = sorted(t + rng.uniform(10 * MIN, horizon) for _ in range(k))
    for ti in times:
        b.add(ti, n, reask(rng, first) if rng.random() < 0.5 else pick(rng, NUDGES), label)
    if rng.random() < p_resend:
        b.add(times[-1] + rng.uniform(30 * MIN, 6 * HOUR), n, first, label)


GREET = ["Bonjour", "Bonsoir", "Salut", "Coucou", "Hello", "Bonsoir à vous", "Bjr", ""]
SEEN = [
    "j'ai vu le reportage sur {c}",
    "je viens de voir le sujet sur {c}",
    "je vous ai vus sur {c}",
    "ma sœur m'a parlé de ce numéro",
    "je viens de voir ça à la télé",
    "vu sur {c} ce soir",
    "une copine m'a envoyé ce numéro",
    "je l'ai vu passer sur Facebook",
    "on en parle sur {c}",
    "je regarde {c} là",
]
ASK = [
    "c'est bien le numéro anti-relou ?",
    "ça marche vraiment ?",
    "c'est vous le numéro anti-relou ?",
    "ça répond quoi ?",
    "c'est vrai que ça répond tout seul ?",
    "c'est gratuit ?",
    "je peux le donner aux mecs lourds ?",
    "c'est un vrai numéro ?",
    "il marche encore ?",
    "comment ça marche ?",
]
TAIL = ["", "", " 😄", " 😂", " merci", " !", " 👍", " Bravo !"]


def curious(rng: random.Random, varied: bool = True) -> str:
    if not varied:
        return pick(rng, CURIOUS).format(c=pick(rng, CHANNELS))
    g = pick(rng, GREET)
    s = pick(rng, SEEN).format(c=pick(rng, CHANNELS))
    a = pick(rng, ASK)
    form = rng.random()
    if form < 0.5:
        txt = f"{g}, {s}, {a}" if g else f"{s.capitalize()}, {a}"
    elif form < 0.8:
        txt = f"{g} {a.capitalize() if not g else a} {s.capitalize()}".strip()
    else:
        txt = f"{a.capitalize()} {s}"
    return txt + pick(rng, TAIL)


TEMPLATES = [
    "Salut la féministe, ton numéro tourne sur le forum, on va te coûter un max de thunes",
    "Coucou c'est les relous du 18-25, réponds-nous vite on a plein de forfaits illimités",
    "Ton robot va nous répondre à tous, chaque SMS te coûte et on est des milliers",
    "Bonjour madame, je suis un gros relou et je veux ma réponse automatique s'il vous plaît",
]


def mutate(rng: random.Random, s: str) -> str:
    r = rng.random()
    if r < 0.3:
        return s + pick(rng, [" mdr", " 😂", " lol", " !!", " 🤡", " ptdr"])
    if r < 0.5:
        return s.replace("e", "é", 1)
    if r < 0.6:
        return s.upper()
    return s


def template_raid(b: Builder, raiders: int, start: float, dur: float, rep: float = 0.3,
                  label: str = RAID) -> None:
    rng = b.rng
    for _ in range(raiders):
        n = b.number()
        t = start + dur * rng.betavariate(1.2, 2.5)
        base = pick(rng, TEMPLATES)
        b.add(t, n, mutate(rng, base), label)
        if rng.random() < rep:
            for _ in range(min(int(rng.paretovariate(1.3)), 30)):
                t += rng.expovariate(1 / (8 * MIN))
                b.add(t, n, mutate(rng, base), label)


# -- A: genuine people held for hours by a long raid write again -------------------------
def long_hold_reask(seed: int = 1, p_more: float = 0.35, p_resend: float = 0.15,
                    viewers: int = 2500, raiders: int = 1800) -> World:
    """Day 1 20:00 a TV report (2,500 viewers over ~2 h); 21:00 a forum raid of template
    pasters that keeps coming for 25 h (the 2017 shape). Genuine senders who arrive
    during the raid are held until it ends; like people with no answer, 35% write again
    over the next hours (nudges, the question again in their own words), and some of
    those send their first text again hours later."""
    b = Builder(f"long_hold_reask_{p_more}_{p_resend}_{viewers}_{raiders}", seed)
    rng = b.rng
    organic(b, 800, 0, 3.5 * DAY)
    at = DAY + 20 * HOUR
    for _ in range(viewers):
        n = b.number()
        t = b.surge_time(at, 4 * MIN, 40 * MIN)
        impatient(b, n, t, curious(rng), LEGIT, p_more, p_resend, 8 * HOUR)
    # next-day brush-off men and late viewers, during the raid
    for _ in range(500):
        n = b.number()
        t = b.daily_time(DAY + 23 * HOUR, 2 * DAY + 22 * HOUR)
        first = brushoff(rng) if rng.random() < 0.6 else curious(rng)
        impatient(b, n, t, first, LEGIT, p_more, p_resend, 8 * HOUR)
    template_raid(b, raiders, DAY + 21 * HOUR, 25 * HOUR)
    return b.world()


# -- B: a cheap flood keeps raid mode (and the hold) on for two days ----------------------
FLOOD = [
    "REPONDS",
    "réponds sale robot",
    "on attend",
    "allez crache",
    "toujours là ?",
    "🤡🤡🤡",
    "ding dong",
    "on lâche rien",
    "le forum est là",
    "coucou c'est encore nous",
]


def hold_forever(seed: int = 1, p_more: float = 0.35, p_resend: float = 0.15,
                 flooders: int = 30, hours: int = 40) -> World:
    """Raiders who read that raid mode holds every first contact until 30 calm minutes
    (48 h at most) keep it on at almost no cost: 30 scripted numbers, renewed every 3 h,
    each send a short text every 2-3 min (more than 120 messages per 10 min), and each
    hour a dozen fresh numbers paste a template, so some new senders are always flagged.
    The number's ordinary life goes on: brush-off men, and a radio morning show the next
    day (1,200 listeners); held for up to two days, a third of them write again."""
    b = Builder(f"hold_forever_{p_more}_{p_resend}_{flooders}_{hours}", seed)
    rng = b.rng
    organic(b, 700, 0, 4 * DAY)
    start = DAY + 21 * HOUR
    end = start + hours * HOUR
    t0 = start
    while t0 < end:
        for _ in range(flooders):
            n = b.number()
            t = t0 + rng.uniform(0, 60)
            own = pick(rng, FLOOD)
            while t < min(t0 + 3 * HOUR, end):
                b.add(t, n, own if rng.random() < 0.7 else pick(rng, FLOOD), RAID)
                t += rng.uniform(100, 200)
        t0 += 3 * HOUR
    for h in range(int(hours)):
        for _ in range(12):
            n = b.number()
            t = start + h * HOUR + rng.uniform(0, HOUR)
            base = pick(rng, TEMPLATES)
            b.add(t, n, mutate(rng, base), RAID)
            b.add(t + rng.uniform(60, 900), n, mutate(rng, base), RAID)
    # genuine: next-morning radio show + daytime brush-off men and curious
    at = 2 * DAY + 7 * HOUR + 40 * MIN
    for _ in range(1200):
        n = b.number()
        t = b.surge_time(at, 3 * MIN, 30 * MIN)
        impatient(b, n, t, curious(rng), LEGIT, p_more, p_resend, 12 * HOUR)
    for _ in range(600):
        n = b.number()
        t = b.daily_time(start, end)
        first = brushoff(rng) if rng.random() < 0.5 else curious(rng)
        impatient(b, n, t, first, LEGIT, p_more, p_resend, 12 * HOUR)
    return b.world()


# -- C: raiders come back after the 30-day reply window ----------------------------------
def month_return(seed: int = 1, raiders: int = 1500, back: float = 0.8,
                 genuine_back: float = 0.0) -> World:
    """A forum raid of hand-written insults (each number 1-2 texts, as the known
    `insult_trio` losses) on day 1; the forum's "on remet ça le mois prochain" brings 80%
    of the same numbers back on day 31-32 with new insults. Brush-off traffic throughout."""
    b = Builder(f"month_return_{raiders}_{back}_{genuine_back}", seed)
    rng = b.rng
    men = []
    for _ in range(900):
        n = b.number()
        t = b.daily_time(0, 36 * DAY)
        b.add(t, n, brushoff(rng), LEGIT)
        men.append((n, t))
        if genuine_back and rng.random() < genuine_back and t + 31 * DAY < 36 * DAY:
            b.add(t + rng.uniform(31 * DAY, 36 * DAY - t), n, brushoff(rng), LEGIT)
    nums = [b.number() for _ in range(raiders)]
    for wave in (DAY + 20 * HOUR, 31 * DAY + 20 * HOUR):
        for n in nums:
            if wave > DAY * 2 and rng.random() > back:
                continue
            t = wave + rng.expovariate(1 / (3 * HOUR))
            for _ in range(rng.choice([1, 1, 2])):
                b.add(t, n, insult(rng), RAID)
                t += rng.uniform(5 * MIN, 40 * MIN)
    return b.world()


# -- D: a TV report, no raid; viewers with no answer after a while ask again -------------
def press_reask(seed: int = 1, viewers: int = 3000, p_more: float = 0.3,
                horizon: float = HOUR, p_resend: float = 0.0) -> World:
    """No raid. 20:45 a TV report shows the number; 3,000 viewers in ~1.5 h, replies held
    by the surge hold (20-30 min). 30% of them, seeing no answer, write again within the
    hour: a nudge, or their question again in their own words."""
    b = Builder(f"press_reask_{viewers}_{p_more}_{horizon}_{p_resend}", seed)
    rng = b.rng
    organic(b, 800, 0, 3 * DAY)
    at = DAY + 20 * HOUR + 45 * MIN
    for _ in range(viewers):
        n = b.number()
        t = b.surge_time(at, 4 * MIN, 30 * MIN)
        impatient(b, n, t, curious(rng), LEGIT, p_more, p_resend, horizon)
    return b.world()


# -- E: women testing the number from a viral post; "test" again and again ---------------
TESTS = [
    "Test",
    "test",
    "Test 1",
    "Testing",
    "Ça marche ?",
    "test test",
    "Coucou 👋",
    "Allô",
    "Teste",
]


def testers(seed: int = 1, women: int = 2500, spam: float = 0.12) -> World:
    """No raid. An Instagram post ("le numéro à donner aux relous") goes viral in an
    evening; women test the number with a one-word text. With no answer (held), 12%
    press send again 3-5 more times with the same word within 20 minutes."""
    b = Builder(f"testers_{women}_{spam}", seed)
    rng = b.rng
    organic(b, 800, 0, 3 * DAY)
    at = DAY + 21 * HOUR
    for _ in range(women):
        n = b.number()
        t = b.surge_time(at, 10 * MIN, 50 * MIN)
        first = pick(rng, TESTS) if rng.random() < 0.6 else curious(rng)
        b.add(t, n, first, LEGIT)
        if rng.random() < spam:
            for _ in range(rng.randint(3, 5)):
                t += rng.uniform(40, 300)
                b.add(t, n, first, LEGIT)
        elif rng.random() < 0.2:
            t += rng.uniform(60, 900)
            b.add(t, n, pick(rng, NUDGES), LEGIT)
    return b.world()


# -- F: prevention talks in lycées; a class texts the joke its clown suggests -------------
JOKES = [
    "Salut c'est le relou de la classe, tu me donnes ton 06 ?",
    "Je suis trop relou et alors, réponds moi stp",
    "Wesh c'est qui ? On a eu ton numéro en cours d'EMC",
    "Bonjour le numéro anti relou, ici la seconde 3 du lycée",
]


def school_joke(seed: int = 1, classes: int = 60, per: int = 28, again: float = 0.2
                ) -> World:
    """No raid. An association visits lycées for a week (a dozen classes a day, 8:00-17:00
    on school days); at the end of each talk the class texts the number. Most pupils send
    the joke the class clown dictates (one of 4, own typos), 20% send it again a minute
    later "pour voir", a third send an own text too."""
    b = Builder(f"school_joke_{classes}_{per}_{again}", seed)
    rng = b.rng
    organic(b, 700, 0, 6 * DAY)
    for c in range(classes):
        day = 1 + c // 12
        t0 = day * DAY + rng.choice([9, 10, 11, 14, 15, 16]) * HOUR + rng.uniform(40, 55) * MIN
        joke = pick(rng, JOKES)
        for _ in range(per):
            n = b.number()
            t = t0 + rng.expovariate(1 / 90)
            txt = joke if rng.random() < 0.7 else mutate(rng, joke).lower()
            if rng.random() < 0.2:
                txt = curious(rng)
            b.add(t, n, txt, LEGIT)
            if rng.random() < again:
                b.add(
                    t + rng.uniform(20, 200),
                    n,
                    txt if rng.random() < 0.6 else mutate(rng, txt),
                    LEGIT,
                )
            if rng.random() < 0.33:
                b.add(
                    t + rng.uniform(60, 600),
                    n,
                    pick(
                        rng,
                        [
                            "mdrrr",
                            "ça marche pas",
                            "c'est nul",
                            "t'es un robot ?",
                            "ptdr",
                            "Ah ok",
                            "?",
                        ],
                    ),
                    LEGIT,
                )
    return b.world()


WORLDS: dict[str, Callable[..., World]] = {
    # raids
    "long_hold_reask": long_hold_reask,
    "long_hold_reask_s2": lambda seed=2: long_hold_reask(seed),
    "long_hold_reask_s3": lambda seed=3: long_hold_reask(seed),
    "long_hold_reask_nores": lambda seed=1: long_hold_reask(seed, p_resend=0.0),
    "long_hold_reask_20": lambda seed=1: long_hold_reask(seed, p_more=0.2, p_resend=0.1),
    "long_hold_reask_small_raid": lambda seed=1: long_hold_reask(seed, raiders=400),
    "long_hold_control_noreask": lambda seed=1: long_hold_reask(seed, p_more=0.0),
    "hold_forever": hold_forever,
    "hold_forever_s2": lambda seed=2: hold_forever(seed),
    "hold_forever_noreask": lambda seed=1: hold_forever(seed, p_more=0.0),
    "month_return": month_return,
    # genuine only
    "long_hold_reask_noraid": lambda seed=1: long_hold_reask(seed, raiders=0),
    "press_reask": press_reask,
    "press_reask_20": lambda seed=1: press_reask(seed, p_more=0.2),
    "press_reask_resend": lambda seed=1: press_reask(seed, p_more=0.3, p_resend=0.1),
    "testers": testers,
    "testers_5pct": lambda seed=1: testers(seed, spam=0.05),
    "school_joke": school_joke,
    "school_joke_s2": lambda seed=2: school_joke(seed),
    "school_joke_noagain": lambda seed=1: school_joke(seed, again=0.0),
}
RAID_FREE = frozenset(
    {
        "long_hold_reask_noraid",
        "press_reask",
        "press_reask_20",
        "press_reask_resend",
        "testers",
        "testers_5pct",
        "school_joke",
        "school_joke_s2",
        "school_joke_noagain",
    }
)

USAGE = """usage: python -m tests.heldout.redteam9 OUTDIR [NAME ...]

Write the ninth red team's worlds as JSONL traces into OUTDIR (all, or the NAMEs).
Worlds: """ + ", ".join(WORLDS)


def main(argv: Sequence[str] | None = None) -> int:
    return redteam7.write_worlds(WORLDS, USAGE, argv)


if __name__ == "__main__":
    raise SystemExit(main())
