"""Seventh red team: worlds that attack the two newest rules of ``docs/policy.md``.

"Writing on after the answer is not reusing" and "An answered sender sending one of its
texts again counts half for its phrases". Written against the documented rules only (no
reading of the policy's code, the project's traffic generator or the other teams'
generators). Standard library only; every world is a pure function of its seed. The
trace lines and their writer are the fourth team's ``World`` (with this team's id prefix).

    python -m tests.heldout.redteam7 OUTDIR [NAME ...]
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .redteam4 import World  # the trace lines and their writer, shared

LEGIT = "legit"
RAID = "raid"
DAY = 86400.0
HOUR = 3600.0
MIN = 60.0
OPT_OUT = frozenset({
    "stop", "arret", "arrêt", "unsubscribe", "cancel", "end", "quit", "stopall", "stop all",
    "optout", "opt-out", "opt out", "revoke", "desabonner", "désabonner", "desinscrire",
    "désinscrire", "halt", "remove", "unstop", "fin",
})

# Relative activity per local hour (t = 0 is midnight, a Tuesday).
HOURLY = [0.25, 0.15, 0.08, 0.05, 0.04, 0.06, 0.15, 0.35, 0.55, 0.6, 0.65, 0.75,
          0.9, 0.85, 0.75, 0.75, 0.8, 0.95, 1.1, 1.2, 1.3, 1.35, 1.1, 0.6]


class Builder:
    TEAM, IDS = "redteam7", "RT7"  # the seed's namespace and the message ids' prefix

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(f"{self.TEAM}:{name}:{seed}")
        self.used: set[str] = set()
        self.msgs: list[tuple[float, int, str, str, str]] = []

    def number(self) -> str:
        while True:
            n = f"+33{self.rng.choice('67')}{self.rng.randrange(10**8):08d}"
            if n not in self.used:
                self.used.add(n)
                return n

    def add(self, t: float, number: str, body: str, label: str) -> None:
        self.msgs.append((round(t, 3), len(self.msgs), number, body, label))

    def world(self) -> World:
        self.msgs.sort()
        return World(self.name, [(t, n, b, lab) for t, _, n, b, lab in self.msgs], self.IDS)

    def daily_time(self, start: float, end: float,
                   weight: Callable[[float], float] | None = None) -> float:
        """A time in [start, end) following the hour-of-day profile (times ``weight``,
        at most 1)."""
        top = max(HOURLY)
        while True:
            t = self.rng.uniform(start, end)
            w = HOURLY[int(t // HOUR) % 24] * (weight(t) if weight else 1.0)
            if self.rng.random() * top < w:
                return t

    def surge_time(self, at: float, rise: float, decay: float) -> float:
        return at + self.rng.expovariate(1 / rise) + self.rng.expovariate(1 / decay)


def pick(rng: random.Random, items: Sequence[str]) -> str:
    return items[rng.randrange(len(items))]


# -- genuine texts --------------------------------------------------------------------------

NAMES = ["Kevin", "Julien", "Thomas", "Nico", "Maxime", "Alex", "Romain", "Antoine", "Yanis",
         "Hugo", "Lucas", "Mehdi", "Quentin", "Florian", "Bastien", "Théo", "Jordan", "Sofiane",
         "Karim", "Dylan", "Mathieu", "Sébastien", "Adrien", "Loïc", "Benoît", "Cédric", "Enzo",
         "Rayan", "Baptiste", "Guillaume", "Vincent", "Pierre", "Jérémy", "Anthony", "Samir"]
PLACES = ["au bar", "à la soirée de Léa", "au concert", "dans le métro", "à la fac", "au Macumba",
          "à la salle de sport", "au mariage de Sarah", "chez Paul", "au festival",
          "à l'arrêt de bus", "à la terrasse", "au karaoké", "à la fête de la musique",
          "au Carrefour", "à la piscine", "au bowling", "à la gare"]
WHEN = ["hier soir", "samedi", "tout à l'heure", "vendredi soir", "ce midi", "la semaine dernière",
        "cette nuit", "dimanche"]
OPENERS = [
    "Salut c'est {n}, on s'est vus {p} {w}",
    "Coucou c'est {n} {p} 😊",
    "Hey c'est {n}, tu m'as donné ton numéro {p} {w}",
    "Bonsoir, c'est {n} on a parlé {p} {w}",
    "Salut ! C'est {n}, tu te souviens de moi ? {p} {w}",
    "Yo c'est {n} de {p}",
    "Salut c'est {n}, j'espère que tu es bien rentrée",
    "{n} de {p}, ça va ?",
    "Coucou toi, c'est {n} 😉",
    "Salut, c'est qui ? On m'a donné ce numéro {p}",
]
AFTER_REPLY = [
    "Ah ok… j'ai compris", "Sérieux ?", "T'aurais pu juste dire non", "Mdr bien joué",
    "C'est quoi ce numéro ?", "Ok message reçu", "Dommage 😅", "Je suis pas un relou pourtant",
    "Pfff", "Ah d'accord, bonne soirée quand même", "Wow la honte", "Bien vu 😂",
    "C'est ton vrai numéro ou pas ?", "Ok je m'en doutais", "Quel vent 😂", "?",
]


def brushoff(rng: random.Random) -> str:
    return pick(rng, OPENERS).format(n=pick(rng, NAMES), p=pick(rng, PLACES), w=pick(rng, WHEN))


def organic(b: Builder, people: int, start: float, end: float, label: str = LEGIT) -> None:
    """People handed the number as a brush-off; a third write once more after the reply."""
    rng = b.rng
    for _ in range(people):
        n = b.number()
        t = b.daily_time(start, end)
        b.add(t, n, brushoff(rng), label)
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            t += rng.lognormvariate(math.log(120), 0.8)
            b.add(t, n, pick(rng, AFTER_REPLY), label)
        if rng.random() < 0.01:
            b.add(t + rng.uniform(60, DAY), n, "STOP", label)


# Stock phrases of people who write to the number after seeing it (support, testimonies).
S_OPEN = ["Bonjour, je voulais juste dire que", "Je voulais juste vous dire que",
          "Bonsoir, je viens de voir le reportage et", "Je vous ai vus à la télé et",
          "Bonjour, on m'a parlé de ce numéro et", "Coucou, je viens de découvrir ce numéro et"]
S_BODY = ["ça m'est arrivé tellement de fois", "c'est une super idée", "j'aurais aimé avoir ce"
          " numéro à 20 ans", "on m'a suivie jusqu'à chez moi la semaine dernière",
          "je vais le donner à toutes mes copines", "ma fille s'est fait harceler dans le bus",
          "un mec ne voulait pas me lâcher à la sortie du bar", "c'est tellement nécessaire",
          "j'ai déjà donné ce numéro deux fois", "je me suis fait insulter parce que j'ai dit non",
          "personne ne m'a aidée dans le métro", "ça me fait du bien de voir ça",
          "j'ai eu peur de rentrer seule pendant des mois",
          "mon ex m'envoyait cent messages par jour"]
S_DETAIL = ["à {town}", "il y a {k} ans", "quand j'avais {a} ans", "devant mon travail",
            "à la sortie du lycée", "un soir de {mo}", "dans le RER", "en rentrant du boulot"]
S_CLOSE = ["Merci pour ce que vous faites", "Continuez comme ça", "Bon courage à vous",
           "Merci merci merci", "Bravo pour cette initiative", "Force à toutes"]
TOWNS = ["Lyon", "Lille", "Nantes", "Rennes", "Toulouse", "Marseille", "Bordeaux", "Grenoble",
         "Metz", "Tours", "Dijon", "Angers", "Nîmes", "Brest", "Amiens", "Caen", "Reims"]
MONTHS = ["janvier", "mars", "mai", "juillet", "septembre", "novembre", "décembre"]


def detail(rng: random.Random) -> str:
    return pick(rng, S_DETAIL).format(town=pick(rng, TOWNS), k=rng.randint(2, 15),
                                      a=rng.randint(13, 30), mo=pick(rng, MONTHS))


def testimony(rng: random.Random, opener: str | None = None, closer: str | None = None) -> str:
    """A support text in the stock phrases, with a detail of its own."""
    parts = [opener or pick(rng, S_OPEN), pick(rng, S_BODY)]
    if rng.random() < 0.7:
        parts.append(detail(rng))
    text = " ".join(parts) + "."
    if rng.random() < 0.35:
        text += " " + pick(rng, S_BODY).capitalize() + "."
    if closer or rng.random() < 0.75:
        text += " " + (closer or pick(rng, S_CLOSE)) + pick(rng, ["", " !", " 🙏", " ❤️", "."])
    return text


ANOTHER = ["Et aussi", "Autre chose :", "Je repense à un truc,", "Encore une fois",
           "Ah et", "Sinon", "Je voulais aussi dire que", "Re-bonjour,"]


def writer(b: Builder, n: str, t: float, label: str, more: int, gaps: Callable[[], float],
           signoff: bool, habit: bool = False) -> None:
    """A testimony, then ``more`` texts in the same stock phrases: new incidents, half of
    them signed with the same closing words; with ``habit``, every text opens and closes
    the way the first did (people have their way of writing)."""
    rng = b.rng
    opener, closer = pick(rng, S_OPEN), pick(rng, S_CLOSE)
    first = testimony(rng, opener, closer if signoff else None)
    b.add(t, n, first, label)
    # never the same incident twice, and never the same connective twice in a row
    bodies = rng.sample([s for s in S_BODY if s not in first], more)
    links = rng.sample(ANOTHER, min(more, len(ANOTHER)))
    for i, told in enumerate(bodies):
        t += gaps()
        link = opener if habit else links[i % len(links)]
        body = f"{link} {told} {detail(rng)}."
        if signoff and (habit or rng.random() < 0.5):
            body += f" {closer}{pick(rng, ['', ' !', ' 🙏', '.'])}"
        b.add(t, n, body, label)


# -- raid texts -----------------------------------------------------------------------------

R_OPEN = ["Espèce de grosse", "Sale", "T'es qu'une", "Va te faire voir", "Ferme-la",
          "Pauvre", "Bande de", "Tu crois quoi", "Personne t'a demandé ton avis", "Ta gueule"]
R_MEAT = ["féministe de mes deux", "mal baisée", "frustrée de la vie", "cassos", "hystérique",
          "bouffonne", "grosse vache", "tu vas payer chaque SMS", "on va te ruiner",
          "ton numéro tourne sur le forum", "on est des milliers", "c'est nous les relous",
          "réponds-moi si t'es cap", "ton robot va cracher des thunes",
          "la blague va te coûter cher", "personne veut de toi", "t'as cru quoi"]
R_TAIL = ["mdr", "ptdr", "lol", "😂😂", "🤡", "bisous", "on revient demain", "#18-25",
          "cheh", "😘", "🖕"]


def insult(rng: random.Random, k: int | None = None) -> str:
    k = k or rng.randint(2, 4)
    meat = rng.sample(R_MEAT, k)
    text = f"{pick(rng, R_OPEN)} {', '.join(meat)}"
    if rng.random() < 0.6:
        text += " " + pick(rng, R_TAIL)
    return text


# -- worlds: genuine only -------------------------------------------------------------------

def comeback_next_day(seed: int = 1, share: float = 0.25, habit: bool = False) -> World:
    """Brush-off background plus three days of support texts after a magazine feature;
    a quarter of the writers, answered, come back 2 to 30 hours later with another
    incident, opening or signing off as they did the first time."""
    b = Builder(f"comeback_next_day_{share}_{habit}", seed)
    organic(b, 900, 0, 4 * DAY)
    for _ in range(2600):
        n = b.number()
        t = b.daily_time(0, 3.5 * DAY)
        if b.rng.random() < 0.2:  # writes on at once, as testimonies do
            writer(b, n, t, LEGIT, b.rng.randint(1, 2),
                   lambda: b.rng.lognormvariate(math.log(300), 0.5), signoff=True)
            continue
        more = 1 if b.rng.random() < share else 0
        more += 1 if more and b.rng.random() < 0.3 else 0
        writer(b, n, t, LEGIT, more, lambda: b.rng.uniform(2 * HOUR, 30 * HOUR), signoff=True,
               habit=habit)
    return b.world()


def fourth_text(seed: int = 1, habit: bool = False, long: float = 0.15) -> World:
    """Support writers who, answered, go on for 4 to 6 texts within the hour, each signed
    with their own closing words; most write once."""
    b = Builder(f"fourth_text_{habit}_{long}", seed)
    organic(b, 900, 0, 4 * DAY)
    for _ in range(2600):
        n = b.number()
        t = b.daily_time(0, 3.5 * DAY)
        r = b.rng.random()
        more = 0 if r < 0.7 else (b.rng.randint(1, 2) if r < 1 - long else b.rng.randint(3, 5))
        writer(b, n, t, LEGIT, more, lambda: b.rng.lognormvariate(math.log(240), 0.6),
               signoff=True, habit=habit)
    return b.world()


def held_writing_on(seed: int = 1, share: float = 0.3) -> World:
    """Evening news shows the number: 3,000 viewers in an hour, replies held by the surge;
    ``share`` of them send one or two more texts in the same stock phrases before the
    reply comes (no raid)."""
    b = Builder(f"held_writing_on_{share}", seed)
    organic(b, 700, 0, 3 * DAY)
    at = DAY + 20 * HOUR + 15 * MIN
    for _ in range(3000):
        n = b.number()
        t = b.surge_time(at, 3 * MIN, 25 * MIN)
        more = b.rng.randint(1, 2) if b.rng.random() < share else 0
        writer(b, n, t, LEGIT, more, lambda: b.rng.lognormvariate(math.log(300), 0.5),
               signoff=True)
    # the following days, the feature keeps bringing a few writers
    for _ in range(600):
        n = b.number()
        t = b.daily_time(DAY + 22 * HOUR, 3 * DAY)
        writer(b, n, t, LEGIT, 0, lambda: 0.0, signoff=False)
    return b.world()


def thanks_again(seed: int = 1, share: float = 0.15, times: Sequence[int] = (1, 2, 2),
                 delay: tuple[float, float] = (HOUR, 20 * HOUR)) -> World:
    """People who wrote a support text, answered, send the same text once or twice more
    over the next hours (the phone showed it unsent, or they thought nobody read it)."""
    b = Builder(f"thanks_again_{share}_{times}_{delay}", seed)
    organic(b, 900, 0, 4 * DAY)
    for _ in range(2600):
        n = b.number()
        t = b.daily_time(0, 3.5 * DAY)
        body = testimony(b.rng)
        b.add(t, n, body, LEGIT)
        if b.rng.random() < share:
            for _ in range(b.rng.choice(times)):
                t += b.rng.uniform(*delay)
                b.add(t, n, body, LEGIT)
    return b.world()


# -- worlds: raids ------------------------------------------------------------------------

def raid_writers(b: Builder, raiders: int, start: float, end: float, more: tuple[int, int],
                 gap: tuple[float, float], late: float = 0.0, resend: float = 0.0,
                 flat: bool = True) -> None:
    """Raiders composing insults from the forum's shared pieces: one, then ``more`` new
    texts ``gap`` seconds apart; ``late`` share come back after hours; ``resend`` share send
    one of their texts again once after the answer."""
    rng = b.rng
    for _ in range(raiders):
        n = b.number()
        t = rng.uniform(start, end) if flat else b.daily_time(start, end)
        sent = [insult(rng)]
        b.add(t, n, sent[0], RAID)
        for _ in range(rng.randint(*more)):
            t += rng.uniform(*gap)
            sent.append(insult(rng))
            b.add(t, n, sent[-1], RAID)
        if rng.random() < resend:
            t += rng.uniform(10 * MIN, 50 * MIN)
            b.add(t, n, pick(rng, sent), RAID)
        if rng.random() < late:
            t += rng.uniform(2 * HOUR, 20 * HOUR)
            b.add(t, n, insult(rng), RAID)


def writing_on_raid(seed: int = 1) -> World:
    """A forum thread drips raiders in all day (under 20 new numbers per 10 minutes, so no
    surge): each is answered, then sends two or three new insults from the thread's pieces
    within the hour, and stops."""
    b = Builder("writing_on_raid", seed)
    organic(b, 900, 0, 3 * DAY)
    raid_writers(b, 900, DAY + 10 * HOUR, DAY + 23 * HOUR, (1, 2), (60, 900))
    return b.world()


def writing_on_raid_resend(seed: int = 1, share: float = 0.33) -> World:
    """As ``writing_on_raid``, and ``share`` of the raiders paste one of their insults again
    once (half a count for its phrases)."""
    b = Builder(f"writing_on_raid_resend_{share}", seed)
    organic(b, 900, 0, 3 * DAY)
    raid_writers(b, 900, DAY + 10 * HOUR, DAY + 23 * HOUR, (1, 2), (60, 900), resend=share)
    return b.world()


def writing_on_raid_return(seed: int = 1) -> World:
    """As ``writing_on_raid``, and 15% of the raiders come back hours later with one more
    insult (that is reuse by the rules)."""
    b = Builder("writing_on_raid_return", seed)
    organic(b, 900, 0, 3 * DAY)
    raid_writers(b, 900, DAY + 10 * HOUR, DAY + 23 * HOUR, (1, 2), (60, 900), late=0.15)
    return b.world()


def writing_on_raid_surge(seed: int = 1) -> World:
    """The same thread posted at once: 900 raiders in an hour (a surge, replies held)."""
    b = Builder("writing_on_raid_surge", seed)
    organic(b, 900, 0, 3 * DAY)
    rng = b.rng
    for _ in range(900):
        n = b.number()
        t = b.surge_time(DAY + 21 * HOUR, 5 * MIN, 30 * MIN)
        b.add(t, n, insult(rng), RAID)
        for _ in range(rng.randint(1, 2)):
            t += rng.uniform(60, 900)
            b.add(t, n, insult(rng), RAID)
    return b.world()


def brushoff_poison(seed: int = 1) -> World:
    """Forum raiders pose as the men who got the brush-off number: each sends an opener
    like theirs, and comes back in the evening (more than an hour later) with another,
    three or four times; the openers' phrases are everyone's."""
    b = Builder("brushoff_poison", seed)
    organic(b, 2600, 0, 4 * DAY)
    for _ in range(300):
        n = b.number()
        t = b.daily_time(DAY, 2 * DAY)
        name = pick(b.rng, NAMES)
        for _ in range(b.rng.randint(3, 4)):
            body = pick(b.rng, OPENERS).format(n=name, p=pick(b.rng, PLACES),
                                               w=pick(b.rng, WHEN))
            b.add(t, n, body, RAID)
            t += b.rng.uniform(1.1 * HOUR, 6 * HOUR)
    return b.world()


def brushoff_resend(seed: int = 1, share: float = 0.1) -> World:
    """Brush-off numbers only, four days: ``share`` of the men, answered, send their opener
    again once 1 to 30 hours later (they took the reply for a friend's joke)."""
    b = Builder(f"brushoff_resend_{share}", seed)
    rng = b.rng
    for _ in range(3500):
        n = b.number()
        t = b.daily_time(0, 4 * DAY)
        first = brushoff(rng)
        b.add(t, n, first, LEGIT)
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            t += rng.lognormvariate(math.log(120), 0.8)
            b.add(t, n, pick(rng, AFTER_REPLY), LEGIT)
        if rng.random() < share:
            b.add(t + rng.uniform(HOUR, 30 * HOUR), n, first, LEGIT)
    return b.world()


def testimony_poison_resend(seed: int = 1, raiders: int = 200, resend: float = 0.05,
                            start: float = 6 * HOUR) -> World:
    """Support writers for three days (a fifth write on, 5% resend their text once hours
    later); from the sixth hour, forum raiders send testimonies built on three of the
    stock sentences and paste their own twice more, hours apart, so that those sentences
    count as a raid's and the newcomers who write them go unanswered."""
    b = Builder(f"testimony_poison_resend_{raiders}_{resend}_{start}", seed)
    rng = b.rng
    organic(b, 700, 0, 4 * DAY)
    for _ in range(2400):
        n = b.number()
        t = b.daily_time(0, 3.5 * DAY)
        if rng.random() < 0.2:
            writer(b, n, t, LEGIT, rng.randint(1, 2),
                   lambda: rng.lognormvariate(math.log(300), 0.5), signoff=True)
            continue
        body = testimony(rng)
        b.add(t, n, body, LEGIT)
        if rng.random() < resend:
            b.add(t + rng.uniform(HOUR, 20 * HOUR), n, body, LEGIT)
    targets = S_BODY[:3]
    for _ in range(raiders):
        n = b.number()
        t = b.daily_time(start, start + 1.75 * DAY)
        text = f"{pick(rng, S_OPEN)} {pick(rng, targets)}. {pick(rng, S_CLOSE)}"
        for _ in range(3):
            b.add(t, n, text, RAID)
            t += rng.uniform(HOUR, 6 * HOUR)
    return b.world()


def slow_drip_pieces(seed: int = 1) -> World:
    """A week-long thread: 60 raiders a day, evenings, each answered then two new insults
    within the hour from the shared pieces; some resend one once."""
    b = Builder("slow_drip_pieces", seed)
    organic(b, 1400, 0, 7 * DAY)
    for d in range(7):
        raid_writers(b, 60, d * DAY + 18 * HOUR, d * DAY + 23.5 * HOUR, (2, 2), (60, 600),
                     resend=0.3)
    return b.world()


WORLDS: dict[str, Callable[..., World]] = {
    # genuine only
    "comeback_habit": lambda seed=1: comeback_next_day(seed, habit=True),
    "fourth_text": fourth_text,
    "fourth_text_habit": lambda seed=1: fourth_text(seed, habit=True),
    "fourth_text_habit_5pct": lambda seed=1: fourth_text(seed, habit=True, long=0.05),
    "held_writing_on_50": lambda seed=1: held_writing_on(seed, share=0.5),
    "thanks_again": thanks_again,
    "thanks_again_once": lambda seed=1: thanks_again(seed, times=(1,)),
    "thanks_again_once_10pct": lambda seed=1: thanks_again(seed, share=0.10, times=(1,)),
    "thanks_again_once_5pct": lambda seed=1: thanks_again(seed, share=0.05, times=(1,)),
    "brushoff_resend": brushoff_resend,
    "brushoff_resend_5pct": lambda seed=1: brushoff_resend(seed, share=0.05),
    # raids
    "writing_on_raid": writing_on_raid,
    "writing_on_raid_resend": writing_on_raid_resend,
    "writing_on_raid_return": writing_on_raid_return,
    "writing_on_raid_surge": writing_on_raid_surge,
    "brushoff_poison": brushoff_poison,
    "slow_drip_pieces": slow_drip_pieces,
    "testimony_poison_resend": testimony_poison_resend,
    "testimony_poison_noresend": lambda seed=1: testimony_poison_resend(seed, resend=0.0),
    "testimony_poison_late": lambda seed=1: testimony_poison_resend(seed, resend=0.0,
                                                                    start=1.5 * DAY),
}
RAID_FREE = frozenset({
    "comeback_habit", "fourth_text", "fourth_text_habit", "fourth_text_habit_5pct",
    "held_writing_on_50", "thanks_again", "thanks_again_once", "thanks_again_once_10pct",
    "thanks_again_once_5pct", "brushoff_resend", "brushoff_resend_5pct",
})

USAGE = """usage: python -m tests.heldout.redteam7 OUTDIR [NAME ...]

Write the seventh red team's worlds as JSONL traces into OUTDIR (all, or the NAMEs).
Worlds: """ + ", ".join(WORLDS)


def main(argv: Sequence[str] | None = None) -> int:
    return write_worlds(WORLDS, USAGE, argv)


def write_worlds(worlds: dict[str, Callable[[], World]], usage: str,
                 argv: Sequence[str] | None = None) -> int:
    """The command line of a red team's module: write its worlds (or the named ones)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage)
        return 0 if args else 2
    out = Path(args[0])
    names = args[1:] or list(worlds)
    unknown = [n for n in names if n not in worlds]
    if unknown:
        print(f"unknown world(s): {', '.join(unknown)}\n{usage}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        world = worlds[name]()
        path = world.write(out / f"{name}.jsonl")
        print(f"{path}: {len(world.lines)} lines, {len(world.senders(LEGIT))} legit senders, "
              f"{len(world.senders(RAID))} raid senders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
