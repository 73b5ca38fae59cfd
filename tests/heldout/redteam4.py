"""Fourth red team's worlds: new genuine surges and raids that imitate them, written blind.

Written without reading the policy, the project's traffic generator, its scenarios or
the other teams' generators. Each world is a pure function of its seed (standard library
only, seeded ``random.Random``) and is written as a JSONL trace in the trace format of
``docs/scenarios.md``: ``{"t", "from", "to", "body", "label"}``, one label per number,
every number E.164, no sender's first text an opt-out keyword.

t = 0 is a Monday, 00:00 local time; every clock below is local.

``python -m tests.heldout.redteam4 OUTDIR`` writes every world.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

TO = "+33644649021"
LEGIT, RAID = "legit", "raid"
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0

# Any of these alone (any case, with or without accents) is an opt-out at some provider.
OPT_OUT = frozenset({
    "stop", "arret", "arrêt", "unsubscribe", "cancel", "end", "quit", "stopall", "stop all",
    "optout", "opt-out", "opt out", "revoke", "desabonner", "désabonner", "desinscrire",
    "désinscrire", "halt", "remove", "unstop", "fin",
})

# ---------------------------------------------------------------------------- numbers

QC_AREAS = ("514", "438", "450", "579", "418", "581", "819", "873")
US_AREAS = ("212", "646", "917", "347", "305", "786", "213", "310", "415", "512", "702", "404")


def fr_mobile(rng: random.Random) -> str:
    while True:
        head = rng.choice("67")
        rest = f"{rng.randrange(10**8):08d}"
        if not (head == "7" and rest[0] == "5"):  # +3375: virtual-number blocks, not people
            return f"+33{head}{rest}"


def be_mobile(rng: random.Random) -> str:
    return f"+324{rng.choice(('60', '65', '66', '67', '68', '70', '72', '75', '76', '77', '78', '79', '84', '85', '86', '87', '88', '89', '92', '93', '94', '95', '96', '97', '98', '99'))}{rng.randrange(10**6):06d}"  # noqa: E501


def ch_mobile(rng: random.Random) -> str:
    return f"+417{rng.choice('56789')}{rng.randrange(10**7):07d}"


def nanp(rng: random.Random, areas: tuple[str, ...]) -> str:
    return f"+1{rng.choice(areas)}{rng.randrange(2, 10)}{rng.randrange(100):02d}{rng.randrange(10**4):04d}"  # noqa: E501


# ---------------------------------------------------------------------------- world


@dataclass
class World:
    name: str
    lines: list[tuple[float, str, str, str]] = field(default_factory=list)
    ids: str | None = None  # prefix of the message ids it writes (None: no "id" field)

    def senders(self, label: str | None = None) -> set[str]:
        return {n for _, n, _, lab in self.lines if label is None or lab == label}

    @property
    def has_raid(self) -> bool:
        return any(lab == RAID for *_, lab in self.lines)

    def count(self, label: str) -> int:
        return sum(lab == label for *_, lab in self.lines)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for i, (t, number, body, label) in enumerate(self.lines):
                line = {"t": t, "from": number, "to": TO, "body": body, "label": label}
                if self.ids is not None:
                    line["id"] = f"{self.ids}{i:08d}"
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        return path


class Builder:
    """Collects messages; hands out unique numbers; sorts and checks at the end."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(f"redteam4:{name}:{seed}")
        self.used: set[str] = set()
        self.label_of: dict[str, str] = {}
        self.msgs: list[tuple[float, int, str, str, str]] = []
        self.end = 0.0

    def number(self, plan: Callable[[random.Random], str] = fr_mobile) -> str:
        while True:
            n = plan(self.rng)
            if n not in self.used:
                self.used.add(n)
                return n

    def send(self, t: float, number: str, body: str, label: str) -> None:
        if self.end and not 0 <= t < self.end:
            return  # the number goes quiet at the end of the capture
        assert self.label_of.setdefault(number, label) == label, number
        self.msgs.append((round(t, 3), len(self.msgs), number, body, label))

    def conversation(self, t: float, number: str, bodies: Iterable[str], label: str,
                     gap_median: float, gap_sigma: float = 0.8) -> float:
        for i, body in enumerate(bodies):
            if i:
                t += gap_median * math.exp(self.rng.gauss(0, gap_sigma))
            self.send(t, number, body, label)
        return t

    def build(self) -> World:
        self.msgs.sort()
        firsts: dict[str, str] = {}
        for _, _, n, body, _ in self.msgs:
            firsts.setdefault(n, body)
        bad = [n for n, b in firsts.items() if b.strip().lower() in OPT_OUT]
        assert not bad, f"{self.name}: first text is an opt-out for {bad[:3]}"
        return World(self.name, [(t, n, b, lab) for t, _, n, b, lab in self.msgs])


# ---------------------------------------------------------------------------- clock

# Relative activity by local hour of day for people texting a number they were given.
HOURLY = (0.5, 0.3, 0.18, 0.1, 0.07, 0.08, 0.18, 0.4, 0.6, 0.65, 0.7, 0.8,
          0.95, 0.9, 0.8, 0.8, 0.85, 0.95, 1.1, 1.25, 1.35, 1.45, 1.3, 0.9)


def weekly(t: float) -> float:
    """Weekend nights (Fri 18:00 - Sun 06:00) are busier, Sunday evening quieter."""
    day, hour = int(t // DAY) % 7, (t % DAY) / HOUR
    if (day == 4 and hour >= 18) or day == 5 or (day == 6 and hour < 6):
        return 1.6
    if day == 6:
        return 0.85
    return 1.0


def clock_time(rng: random.Random, start: float, end: float,
               shape: Callable[[float], float] | None = None, peak: float = 1.6) -> float:
    """A time in [start, end) drawn by rejection from the hour-of-day (and weekly) profile."""
    top = max(HOURLY) * peak
    while True:
        t = rng.uniform(start, end)
        w = HOURLY[int(t % DAY // HOUR)] * (shape(t) if shape else 1.0)
        if rng.random() * top < w:
            return t


def burst_delay(rng: random.Random, rise: float, decay: float) -> float:
    """Delay after a broadcast: a short rise then an exponential tail."""
    return rng.expovariate(1 / rise) + rng.expovariate(1 / decay)


# ---------------------------------------------------------------------------- texts

NAMES = ("Julien", "Kevin", "Thomas", "Nicolas", "Maxime", "Antoine", "Romain", "Alexandre",
         "Hugo", "Lucas", "Mehdi", "Karim", "Yanis", "Sofiane", "Quentin", "Florian", "Baptiste",
         "Pierre", "Jérémy", "Mathieu", "Sébastien", "Adrien", "Clément", "Théo", "Nathan",
         "Bilal", "Rayan", "Anthony", "Jordan", "Benoît", "Guillaume", "Vincent", "Loïc",
         "Damien", "Arthur", "Paul", "Enzo", "Dylan", "Samir", "Olivier", "Fabien", "Cédric",
         "Jonathan", "Steven", "Valentin", "Corentin", "Axel", "Léo", "Raphaël", "Gaëtan")
PLACES = ("au bar", "à la soirée de Léa", "au concert", "à la fac", "à la salle", "dans le métro",
          "au Macumba", "chez Manon", "à l'anniv de Max", "au festival", "à la BU",
          "au kebab", "dans le bus", "au mariage de Sarah", "à la fête de la musique",
          "au Wagon", "au afterwork", "à la plage", "au match", "à la laverie")
WHEN = ("hier soir", "samedi", "vendredi soir", "tout à l'heure", "ce soir", "la semaine dernière",
        "dimanche", "hier", "l'autre soir", "jeudi")
GREET = ("Salut", "Coucou", "Bonsoir", "Hello", "Slt", "Cc", "Hey", "Bonjour", "Yo", "Re")


def brushoff_opener(rng: random.Random) -> str:
    g, n, p, w = rng.choice(GREET), rng.choice(NAMES), rng.choice(PLACES), rng.choice(WHEN)
    forms = (
        f"{g} c'est {n}, on s'est vus {p} {w}",
        f"{g} ! C'est {n} {p}, tu te souviens de moi ?",
        f"{n} ici 🙂 tu m'as donné ton num {p} {w}",
        f"{g} c moi {n} {p}",
        f"{g}, c'est {n}. Bien rentrée {w} ?",
        f"{g} c'est {n} on a parlé {p} {w}, ça te dit un verre un de ces jours ?",
        f"{g} {rng.choice(('😊', '😉', '🙂', ''))} c'est {n} de {w}",
        f"Hey c'est {n} ! T'es toujours partante pour {rng.choice(('le ciné', 'un café', 'un verre', 'samedi'))} ?",  # noqa: E501
        f"{g} c {n} du {rng.choice(('bar', 'concert', 'métro', 'taf', 'club'))} 😁",
        f"{g}, j'espère que c'est le bon numéro, c'est {n} {p}",
    )
    text = rng.choice(forms)
    if rng.random() < 0.15:
        text = text.lower()
    return text


FOLLOWUPS = ("???", "C'est quoi ce message", "Ah ok j'ai compris 😅", "Bien joué...",
             "Sérieux ? un numéro anti-relous ?", "Pardon si j'ai été lourd", "Ok bon tant pis",
             "Mdr j'avoue je l'ai mérité", "Tu pouvais juste dire non", "C'est un robot ?",
             "Ah d'accord. Bonne soirée quand même", "Je suis pas relou pourtant",
             "Trop fort le coup du numéro 😂", "Ok message reçu", "Dommage", "T'es sérieuse là ?",
             "Ça m'apprendra", "Haha bien vu", "Bon ben j'aurai essayé", "ok")


def followup(rng: random.Random) -> str:
    text = rng.choice(FOLLOWUPS)
    if rng.random() < 0.3:
        text += rng.choice((" 😂", " lol", " mdr", "!", " 🙄", " 😔"))
    return text


MEDIA_FR = ("à la radio", "sur France Inter", "à la télé", "sur Insta", "sur Twitter",
            "dans le journal", "sur TikTok", "au JT", "sur RTL", "dans 20 Minutes")
CURIOUS = ("C'est vrai ce numéro anti-relous ?", "Je teste 😄", "Génial l'idée bravo",
           "Je viens de voir ça {m}, trop bien", "Bonjour, je teste le numéro entendu {m}",
           "Trop bien cette initiative", "Hello je veux voir la réponse",
           "Excellente idée, je le donne direct au prochain lourd",
           "Ça marche vraiment ?", "Coucou le robot", "Je l'ai entendu {m} et je veux voir",
           "Bravo pour ce numéro, enfin !", "Je vais le donner à tous les relous 😂",
           "On m'a dit d'envoyer un message ici", "Curieuse de voir ce que ça répond",
           "C'est qui derrière ce numéro ?", "J'adore le concept", "Merci pour ce service",
           "Je l'enregistre dans mes contacts direct", "Test test", "Allô ?", "Qui est là ?",
           "Salut, j'ai vu le reportage {m}", "Vous êtes combien derrière ce numéro ?")
SHORT = ("Test", "test", "Coucou", "Salut", "Bonjour", "Hello", "Slt", "Cc", "Bonsoir", "Yo")


def curious(rng: random.Random, media: tuple[str, ...] = MEDIA_FR) -> str:
    if rng.random() < 0.12:
        return rng.choice(SHORT)
    text = rng.choice(CURIOUS).format(m=rng.choice(media))
    r = rng.random()
    if r < 0.2:
        text = f"{rng.choice(GREET)} ! {text}"
    elif r < 0.35:
        text += rng.choice((" 😂", " 👏", " 👍", " !!", " ❤️", " haha", " 😄"))
    if rng.random() < 0.1:
        text = text.lower()
    return text


INSULTS = ("t'es qu'une mytho", "ton numéro bidon va te coûter cher", "on va te ruiner mdr",
           "alors ça paye combien un sms ?", "relou toi-même", "féministe de mes deux",
           "personne veut de toi de toute façon", "ferme-la", "va te faire voir",
           "le 18-25 te passe le bonjour", "ça va coûter combien ce soir ?", "cheh",
           "t'as cru que t'allais nous échapper", "pleure", "ayaa la facture",
           "bouffonne va", "qui t'a demandé ton avis", "ton robot il sert à rien",
           "on est des milliers et on s'arrête pas", "t'es vraiment pathétique",
           "mais t'es qui toi", "ton service de merde", "rends l'argent", "boloss",
           "on va faire exploser ton forfait", "c'est le début de la fin pour toi")
RAID_TAGS = ("JVC", "18-25", "Risitas", "⚡", "💸", "😂😂", "🤡", "Ayaa", "OSEF", "RIP")


def insult(rng: random.Random) -> str:
    parts = rng.sample(INSULTS, rng.choice((1, 1, 1, 2)))
    text = " ".join(parts)
    r = rng.random()
    if r < 0.3:
        text = text.capitalize()
    elif r < 0.45:
        text = text.upper()
    if rng.random() < 0.35:
        text += " " + rng.choice(RAID_TAGS)
    if rng.random() < 0.2:
        text += rng.choice((" !!!", " ?", " lol", " mdr", "..."))
    return text


def mutate(rng: random.Random, text: str) -> str:
    """What a paster does to a forum template: a suffix, a case change, a typo, an emoji."""
    r = rng.random()
    if r < 0.25:
        text += " " + str(rng.randrange(1, 999))
    elif r < 0.4:
        text += " " + rng.choice(RAID_TAGS)
    elif r < 0.5:
        text = text.upper()
    elif r < 0.6 and len(text) > 8:
        i = rng.randrange(1, len(text) - 1)
        text = text[:i] + text[i + 1:]
    elif r < 0.7:
        text = text + rng.choice(("!", "!!", " 😂", " 🤡"))
    return text


def pareto_count(rng: random.Random, alpha: float, cap: int) -> int:
    return min(cap, int(rng.paretovariate(alpha)))


def organic(b: Builder, start: float, end: float, senders: int, *, weekly_cycle: bool = False,
            chatty: float = 0.25, stop_share: float = 0.01,
            plans: tuple[tuple[Callable[[random.Random], str], float], ...] = ((fr_mobile, 1.0),),
            ) -> None:
    """People handed the number as a brush-off; some write back after the auto-reply."""
    rng = b.rng
    shape = weekly if weekly_cycle else None
    funcs, weights = zip(*plans, strict=True)
    for _ in range(senders):
        number = b.number(rng.choices(funcs, weights)[0])
        t = clock_time(rng, start, end, shape)
        bodies = [brushoff_opener(rng)]
        if rng.random() < chatty:
            bodies += [followup(rng) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        t = b.conversation(t, number, bodies, LEGIT, gap_median=3 * MIN)
        if rng.random() < stop_share:
            b.send(t + rng.uniform(1, 40) * MIN, number, rng.choice(("STOP", "Stop", "stop")),
                   LEGIT)


def surge(b: Builder, at: float, viewers: int, rise: float, decay: float,
          text: Callable[[random.Random], str], *, second: float = 0.25,
          plan: Callable[[random.Random], str] = fr_mobile) -> None:
    """Curious people after a broadcast: one text, a quarter send another minutes later."""
    rng = b.rng
    for _ in range(viewers):
        number = b.number(plan)
        t = at + burst_delay(rng, rise, decay)
        bodies = [text(rng)]
        while rng.random() < second and len(bodies) < 4:
            bodies.append(followup(rng) if rng.random() < 0.6 else text(rng))
        b.conversation(t, number, bodies, LEGIT, gap_median=2.5 * MIN)


def raiders(b: Builder, n: int, start: float, spread: Callable[[random.Random], float],
            first: Callable[[random.Random], str], rest: Callable[[random.Random], str], *,
            alpha: float = 1.3, cap: int = 150, gap: float = 50.0,
            plan: Callable[[random.Random], str] = fr_mobile) -> None:
    """Forum raiders: Pareto message counts, fast bursts with occasional long pauses."""
    rng = b.rng
    for _ in range(n):
        number = b.number(plan)
        t = start + spread(rng)
        count = pareto_count(rng, alpha, cap)
        b.send(t, number, first(rng), RAID)
        for _ in range(count - 1):
            t += gap * math.exp(rng.gauss(0, 1.0))
            if rng.random() < 0.05:
                t += rng.expovariate(1 / (70 * MIN))
            b.send(t, number, rest(rng), RAID)


def wave(rise: float, decay: float) -> Callable[[random.Random], float]:
    return lambda rng: burst_delay(rng, rise, decay)


# ---------------------------------------------------------------------------- worlds


def press_morning_show(seed: int = 1) -> World:
    """No raid: a 7:20 morning-show segment on Tuesday, replayed at the 13h news, and an
    article the same afternoon. Varied curious texts, 12% just 'Test' or 'Coucou'."""
    b = Builder("press_morning_show", seed)
    b.end = 3 * DAY
    organic(b, 0, b.end, 420)
    surge(b, DAY + 7 * HOUR + 20 * MIN, 2600, 3 * MIN, 35 * MIN, curious)
    surge(b, DAY + 13 * HOUR + 15 * MIN, 1500, 2 * MIN, 25 * MIN, curious)
    surge(b, DAY + 16 * HOUR, 700, 20 * MIN, 3 * HOUR, curious)
    return b.build()


def radio_spot_hourly(seed: int = 1) -> World:
    """No raid: a national radio spot every hour at :15, 7h-19h, for two days. The spot
    says 'testez-le, envoyez simplement Bonjour': a third of the listeners do, word for word."""
    b = Builder("radio_spot_hourly", seed)
    b.end = 3 * DAY

    def text(rng: random.Random) -> str:
        if rng.random() < 0.33:
            return rng.choice(("Bonjour", "Bonjour", "Bonjour", "bonjour", "Bonjour !", "BONJOUR"))
        return curious(rng, ("à la radio", "sur France Inter", "sur RTL", "à la pub radio"))

    organic(b, 0, b.end, 350)
    for day in (1, 2):
        for hour in range(7, 20):
            listeners = int(b.rng.uniform(110, 240) * (1.5 if hour in (7, 8, 18) else 1.0))
            surge(b, day * DAY + hour * HOUR + 15 * MIN, listeners, 1.5 * MIN, 9 * MIN, text)
    return b.build()


TWEET_TEXTS = ("Bisou 😘", "Bisou 😘", "Bisou 😘", "bisou 😘", "Bisou😘", "Bisous 😘",
               "bisou", "Bisou 😘😘", "😘")


def _tweet_text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return rng.choice(TWEET_TEXTS)
    if r < 0.75:
        return rng.choice(("C'est Nekfeu qui m'envoie 😂", "Je viens de la part de Nekfeu",
                           "Nekfeu m'a dit de t'envoyer un bisou", "La team Nekfeu est là 😘",
                           "Il est 2h du mat et je fais ce que Nekfeu dit 😂",
                           "Coucou de la part d'un fan de Nekfeu",
                           "Envoyé depuis le tweet de Nekfeu"))
    return curious(rng, ("sur Twitter", "sur X", "dans un tweet"))


def celebrity_tweet_2am(seed: int = 1) -> World:
    """No raid: a rapper tweets the number at 02:10 Wednesday night ('envoyez-leur un
    bisou 😘'). Night owls answer within the hour, the rest when they wake up; half send
    the tweet's own 'Bisou 😘'. Some send a few emoji in a row."""
    b = Builder("celebrity_tweet_2am", seed)
    b.end = 4 * DAY
    organic(b, 0, b.end, 500)
    at = 2 * DAY + 2 * HOUR + 10 * MIN
    surge(b, at, 2600, 2 * MIN, 30 * MIN, _tweet_text, second=0.3)
    # the morning: people who wake up to the tweet, 7h-11h
    surge(b, 2 * DAY + 7 * HOUR, 2200, 40 * MIN, 2 * HOUR, _tweet_text, second=0.2)
    # and the retweets of the next evening
    surge(b, 2 * DAY + 19 * HOUR, 900, 30 * MIN, 2.5 * HOUR, _tweet_text)
    return b.build()


WORKSHEET = "Je refuse le harcèlement de rue"


def _worksheet(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return WORKSHEET
    if r < 0.75:
        return rng.choice(("je refuse le harcèlement de rue", "Je refuse le harcelement de rue",
                           "Je refuse le harcèlement de rue !", "je refuse le harcelement de rue",
                           "Je refuse le harcèlement de rue.", "JE REFUSE LE HARCÈLEMENT DE RUE",
                           "Je refuse le harcélement de rue", "je refuse le harcelemnt de rue"))
    if r < 0.9:
        return WORKSHEET + rng.choice((" 💪", " ✊", " !!", " 🙅‍♀️", " - 4e B", " (classe de 3e)"))
    return rng.choice(("Bonjour, je suis en classe et on doit envoyer un message",
                       "C'est pour l'exercice de EMC", "Coucou c'est pour le cours", "test"))


def school_worksheet_week(seed: int = 1) -> World:
    """No raid: an awareness campaign in schools. All week, whole classes (22-32 pupils)
    text the worksheet's sentence in the same ten minutes of a lesson; a quarter write
    again ('ça a marché', 'mdr le robot'), some several times."""
    b = Builder("school_worksheet_week", seed)
    b.end = 7 * DAY
    organic(b, 0, b.end, 700, weekly_cycle=True)
    rng = b.rng
    slots = (8 * HOUR + 20 * MIN, 9 * HOUR + 15 * MIN, 10 * HOUR + 25 * MIN, 11 * HOUR + 20 * MIN,
             13 * HOUR + 45 * MIN, 14 * HOUR + 40 * MIN, 15 * HOUR + 45 * MIN, 16 * HOUR + 40 * MIN)
    for day in range(5):
        day_slots = slots[:4] if day == 2 else slots  # Wednesday afternoon: no school
        for slot in day_slots:
            for _ in range(rng.randrange(1, 4)):  # classes at once, other schools
                at = day * DAY + slot + rng.uniform(0, 25 * MIN)
                for _ in range(rng.randrange(22, 33)):
                    number = b.number()
                    t = at + rng.expovariate(1 / (2.5 * MIN))
                    bodies = [_worksheet(rng)]
                    while rng.random() < 0.28 and len(bodies) < 5:
                        bodies.append(rng.choice(("ça a marché", "mdr le robot", "il m'a répondu",
                                                  "c nul", "ok", "ça marche pas ?", "Madame j'ai reçu",  # noqa: E501
                                                  "😂😂", "ça coûte des sous ?", WORKSHEET)))
                    b.conversation(t, number, bodies, LEGIT, gap_median=1.5 * MIN)
    return b.build()


POSTER = "Pas de relous dans le métro"
POSTER_VARIANTS = ("Pas de relous dans le métro", "Pas de relous dans le métro",
                   "Pas de relous dans le metro", "pas de relous dans le métro",
                   "Pas de relous dans le métro !", "Pas de relou dans le métro",
                   "PAS DE RELOUS DANS LE MÉTRO", "Pas de relous dans le métro 🚇")


def _poster_text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return POSTER
    if r < 0.65:
        return rng.choice(POSTER_VARIANTS)
    return curious(rng, ("dans le métro", "sur une affiche", "sur l'affiche de la ligne 13",
                         "dans le RER"))


def _commute(t: float) -> float:
    day, hour = int(t // DAY) % 7, (t % DAY) / HOUR
    weekday = day < 5
    peaks = math.exp(-((hour - 8.3) / 0.7) ** 2) * 3 + math.exp(-((hour - 18.2) / 0.9) ** 2) * 3
    base = 0.4 if 6 <= hour <= 23 else 0.05
    return (peaks if weekday else peaks * 0.3) + base


def _poster_campaign(b: Builder, start: float, days: int, per_day: int) -> None:
    rng = b.rng
    for _ in range(days * per_day):
        while True:  # commuters, shaped by the rush hours, not the bar hours
            t = rng.uniform(start, start + days * DAY)
            if rng.random() * 3.6 < _commute(t):
                break
        number = b.number()
        bodies = [_poster_text(rng)]
        while rng.random() < 0.22 and len(bodies) < 4:
            bodies.append(followup(rng))
        b.conversation(t, number, bodies, LEGIT, gap_median=2 * MIN)


def metro_poster(seed: int = 1) -> World:
    """No raid: posters in the metro for two weeks suggest the text 'Pas de relous dans le
    métro'. Commuters text it at rush hour on weekdays; 45% word for word."""
    b = Builder("metro_poster", seed)
    b.end = 14 * DAY
    organic(b, 0, b.end, 1200, weekly_cycle=True)
    _poster_campaign(b, DAY, 13, 380)
    return b.build()


def metro_poster_raid(seed: int = 1) -> World:
    """The same poster campaign, and a forum raid that spams the poster's own sentence
    (plus variants, a few insults) over three evenings, from day 5."""
    b = Builder("metro_poster_raid", seed)
    b.end = 10 * DAY
    organic(b, 0, b.end, 800, weekly_cycle=True)
    _poster_campaign(b, DAY, 9, 380)

    def raid_text(r: random.Random) -> str:
        x = r.random()
        if x < 0.55:
            return POSTER
        if x < 0.8:
            return r.choice(POSTER_VARIANTS)
        return insult(r)

    for evening, size in ((4, 350), (5, 250), (7, 150)):
        raiders(b, size, evening * DAY + 20 * HOUR + 30 * MIN, wave(6 * MIN, 70 * MIN),
                raid_text, raid_text, alpha=1.05, cap=250)
    return b.build()


def chatty_conversations(seed: int = 1) -> World:
    """No raid: people who take the auto-reply for a person or a chatbot and talk to it,
    3-5 messages each, minutes apart; some come back the next day."""
    b = Builder("chatty_conversations", seed)
    b.end = 5 * DAY
    rng = b.rng
    organic(b, 0, b.end, 600, chatty=0.4)
    for _ in range(2300):
        number = b.number()
        t = clock_time(rng, 0, b.end)
        bodies = [brushoff_opener(rng) if rng.random() < 0.6 else curious(rng)]
        bodies += [followup(rng) if rng.random() < 0.7 else rng.choice(CURIOUS).format(m="ici")
                   for _ in range(rng.randrange(2, 5))]
        t = b.conversation(t, number, bodies, LEGIT, gap_median=2 * MIN)
        if rng.random() < 0.15:
            b.conversation(t + rng.uniform(14, 30) * HOUR, number,
                           [followup(rng) for _ in range(rng.randrange(1, 3))], LEGIT,
                           gap_median=3 * MIN)
    return b.build()


LONG_PARTS = ("« Numéro anti-relous » mon œil 🤡🤡", "Voilà ce qu’on pense de ton « service » 💩",
              "Chaque SMS c’est 16 centimes pour toi 💸💸💸 on est des centaines",
              "Tu vas pleurer en voyant la facture à la fin du mois 😭😭😭",
              "Féminisme de façade, on t’a vue venir 👀", "On t’envoie le roman 📖 à chaque fois",
              "Le forum te passe le bonjour 👋 et il est pas près de s’arrêter",
              "Petite pensée pour ton opérateur qui va se régaler 🤑",
              "Tu l’as cherché, assume maintenant 😈", "Allez, encore un, et encore un ✌️",
              "C’était « drôle » au début hein ? 😏", "🔥🔥🔥 RAID EN COURS 🔥🔥🔥")


def _long_ucs2(rng: random.Random) -> str:
    text = " ".join(rng.sample(LONG_PARTS, rng.randrange(3, 7)))
    if rng.random() < 0.4:
        text += " " + "".join(rng.choices("😂🤡💸🔥😈👋🤑😭", k=rng.randrange(3, 15)))
    if rng.random() < 0.3:
        text += f" #{rng.randrange(1, 10000)}"
    return text


def ucs2_long_raid(seed: int = 1) -> World:
    """A raid whose texts are long UCS-2 (emoji, « » and ’): each message 2-5 segments,
    built from a dozen shared sentences shuffled, so no two are the same."""
    b = Builder("ucs2_long_raid", seed)
    b.end = 4 * DAY
    organic(b, 0, b.end, 700)
    surge(b, DAY + 20 * HOUR, 500, 3 * MIN, 30 * MIN, curious)
    raiders(b, 400, 2 * DAY + 21 * HOUR, wave(10 * MIN, 90 * MIN), _long_ucs2, _long_ucs2,
            alpha=0.9, cap=300, gap=80.0)
    return b.build()


def slow_accelerating_raid(seed: int = 1) -> World:
    """A raid that starts with a handful of people and doubles every day for a week, as a
    thread climbs a forum; new raiders every day, each 1-10 messages, evenings mostly."""
    b = Builder("slow_accelerating_raid", seed)
    b.end = 7 * DAY
    organic(b, 0, b.end, 1400, weekly_cycle=True)
    rng = b.rng
    for day in range(7):
        for _ in range(3 * 2 ** day):
            number = b.number()
            t = clock_time(rng, day * DAY, (day + 1) * DAY)
            bodies = [insult(rng) for _ in range(min(10, pareto_count(rng, 1.4, 10)))]
            b.conversation(t, number, bodies, RAID, gap_median=70.0, gap_sigma=1.1)
    return b.build()


TEMPLATES = ("Coucou la féministe, tu comptes rembourser les 16 centimes ?",
             "Bonjour je suis relou et fier de l'être, bisous du forum",
             "Message de soutien à ton opérateur téléphonique 💸",
             "Ceci est un SMS relou certifié conforme",
             "Salut ! Je viens pour la facture, elle est où ?")


def two_shot_raid(seed: int = 1) -> World:
    """1,200 raiders each send exactly two messages, 2-8 hours apart (once at lunch, once
    in the evening, as the thread asks: 'deux chacun, pas plus, faut pas se faire griller')."""
    b = Builder("two_shot_raid", seed)
    b.end = 3 * DAY
    organic(b, 0, b.end, 900)
    rng = b.rng
    for _ in range(1200):
        number = b.number()
        t = DAY + 11 * HOUR + burst_delay(rng, 20 * MIN, 5 * HOUR)
        first = mutate(rng, rng.choice(TEMPLATES)) if rng.random() < 0.6 else insult(rng)
        second = insult(rng) if rng.random() < 0.7 else mutate(rng, rng.choice(TEMPLATES))
        b.send(t, number, first, RAID)
        b.send(t + rng.uniform(2, 8) * HOUR, number, second, RAID)
    return b.build()


def foreign_plan_raid(seed: int = 1) -> World:
    """A francophone forum raid from Belgian, Swiss and Québécois numbers, and US app
    numbers (TextNow-style); genuine visitors from the same plans are in the background."""
    b = Builder("foreign_plan_raid", seed)
    b.end = 4 * DAY
    organic(b, 0, b.end, 1100, plans=((fr_mobile, 0.85), (be_mobile, 0.06), (ch_mobile, 0.05),
                                      (lambda r: nanp(r, QC_AREAS), 0.04)))
    surge(b, DAY + 19 * HOUR, 600, 3 * MIN, 30 * MIN, curious, plan=be_mobile)

    def pick(rng: random.Random) -> str:
        x = rng.random()
        if x < 0.35:
            return be_mobile(rng)
        if x < 0.6:
            return ch_mobile(rng)
        if x < 0.85:
            return nanp(rng, QC_AREAS)
        return nanp(rng, US_AREAS)

    def text(rng: random.Random) -> str:
        if rng.random() < 0.35:
            return mutate(rng, rng.choice(TEMPLATES))
        return insult(rng) + rng.choice(("", "", " tabarnak", " une fois", " 🇧🇪", " 🇨🇭", " 🇨🇦"))

    raiders(b, 700, 2 * DAY + 21 * HOUR, wave(8 * MIN, 100 * MIN), text, text, alpha=1.05,
            cap=300, plan=pick)
    return b.build()


def brushoff_then_insult(seed: int = 1) -> World:
    """Raiders open with a perfect brush-off opener ('Salut c'est Kevin, on s'est vus au
    bar hier soir'), wait for the auto-reply, then send 3-30 insults, over two evenings."""
    b = Builder("brushoff_then_insult", seed)
    b.end = 4 * DAY
    organic(b, 0, b.end, 1400, weekly_cycle=True)
    rng = b.rng
    for _ in range(420):
        number = b.number()
        t = rng.choice((DAY, 2 * DAY)) + 20 * HOUR + burst_delay(rng, 15 * MIN, 80 * MIN)
        b.send(t, number, brushoff_opener(rng), RAID)
        t += rng.uniform(40, 300)
        n = min(30, 2 + pareto_count(rng, 1.1, 40))
        b.conversation(t, number, [insult(rng) for _ in range(n)], RAID, gap_median=40.0)
    return b.build()


def quiet_then_300(seed: int = 1) -> World:
    """A very quiet number (about ten messages a day for ten days), then one evening a
    small group raid of exactly 300 messages from 28 people in two hours."""
    b = Builder("quiet_then_300", seed)
    b.end = 10 * DAY
    organic(b, 0, b.end, 75)
    rng = b.rng
    counts = [1] * 28
    for _ in range(300 - 28):
        counts[min(27, int(rng.paretovariate(0.9)) - 1)] += 1
    at = 8 * DAY + 21 * HOUR
    for count in counts:
        number = b.number()
        t = at + rng.uniform(0, 40 * MIN)
        bodies = [insult(rng) if rng.random() < 0.7 else mutate(rng, rng.choice(TEMPLATES))
                  for _ in range(count)]
        b.conversation(t, number, bodies, RAID, gap_median=25.0)
    assert sum(counts) == 300
    return b.build()


def organic_month(seed: int = 1) -> World:
    """No raid, the control: a whole month of brush-off traffic with weekly cycles
    (Friday and Saturday nights), two local-press mentions and one 'Test' day."""
    b = Builder("organic_month", seed)
    b.end = 30 * DAY
    organic(b, 0, b.end, 4200, weekly_cycle=True, chatty=0.3)
    surge(b, 9 * DAY + 12 * HOUR, 250, 10 * MIN, 2 * HOUR, curious)
    surge(b, 22 * DAY + 18 * HOUR, 300, 10 * MIN, 2 * HOUR, curious)
    return b.build()


def tweet_raid_mimic(seed: int = 1) -> World:
    """A raid that imitates the 2 am tweet surge: the same night, a forum tells people to
    send the tweet's 'Bisou 😘' over and over, in the middle of the genuine fans."""
    b = Builder("tweet_raid_mimic", seed)
    b.end = 4 * DAY
    organic(b, 0, b.end, 500)
    at = 2 * DAY + 2 * HOUR + 10 * MIN
    surge(b, at, 2400, 2 * MIN, 30 * MIN, _tweet_text, second=0.3)
    surge(b, 2 * DAY + 7 * HOUR, 1800, 40 * MIN, 2 * HOUR, _tweet_text, second=0.2)

    def text(rng: random.Random) -> str:
        return rng.choice(TWEET_TEXTS) if rng.random() < 0.8 else insult(rng)

    raiders(b, 600, at + 25 * MIN, wave(5 * MIN, 60 * MIN), text, text, alpha=1.05, cap=250)
    return b.build()


def _poll_text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.78:
        return rng.choice(("OUI", "OUI", "Oui", "oui", "Oui.", "OUI !", "oui 😔",
                           "Oui malheureusement"))
    if r < 0.9:
        return rng.choice(("Oui, plusieurs fois", "Oui dans le bus tous les jours",
                           "Oui et personne n'a rien fait", "Oui, au travail",
                           "Oui quand j'avais 14 ans", "OUI comme toutes mes copines"))
    return curious(rng, ("à la télé", "dans l'émission"))


def tv_poll_oui(seed: int = 1) -> World:
    """No raid: a prime-time debate asks viewers to text OUI if they have ever been
    harassed in the street; 4,000 do within twenty minutes, four in five with the one
    word, and the host repeats the call at the end of the show."""
    b = Builder("tv_poll_oui", seed)
    b.end = 3 * DAY
    organic(b, 0, b.end, 450)
    surge(b, DAY + 21 * HOUR + 5 * MIN, 4000, 1 * MIN, 6 * MIN, _poll_text, second=0.12)
    surge(b, DAY + 22 * HOUR + 35 * MIN, 1500, 1 * MIN, 5 * MIN, _poll_text, second=0.12)
    return b.build()


WHO = ("un mec", "un type", "un gars", "deux mecs", "un vieux", "un relou", "le voisin",
       "un collègue", "un inconnu", "un mec bourré", "un livreur", "un gars de ma fac")
DID = ("m'a suivie", "m'a demandé mon num", "m'a sifflée", "m'a collé", "m'a insultée",
       "m'a attendue", "m'a parlé pendant 20 min", "voulait pas me lâcher", "m'a prise en photo",
       "m'a proposé de me raccompagner", "a pas arrêté de me fixer", "m'a touché le bras")
WHERE = ("dans le bus", "dans le métro", "à la sortie du lycée", "au supermarché",
         "devant chez moi", "à la gare", "dans le tram", "au parc", "en sortant du taf",
         "à la boulangerie", "sur le quai", "à la piscine", "au Mcdo", "en soirée")
AFTER = ("j'aurais trop aimé avoir ce numéro", "la prochaine fois je donne le vôtre",
         "j'ai rien osé dire", "j'ai fait semblant de téléphoner", "ma pote l'a envoyé bouler",
         "personne a rien dit", "j'ai changé de wagon", "merci pour ce que vous faites",
         "c'est pour ça que j'écoute l'émission", "je vais le mettre en favori")


def _testimony(rng: random.Random) -> str:
    parts = [rng.choice(WHO), rng.choice(DID), rng.choice(WHERE), rng.choice(WHEN)]
    if rng.random() < 0.7:
        parts.append(rng.choice(AFTER))
    if rng.random() < 0.4:
        parts.insert(0, rng.choice(("bah moi", "moi", "franchement", "perso", "ouais", "alors")))
    return " ".join(parts)


def _fragments(rng: random.Random) -> list[str]:
    """One line per SMS: a sentence cut at word boundaries, 2 to 6 pieces."""
    words = _testimony(rng).split()
    if rng.random() < 0.5:
        words = [rng.choice(GREET), *words]
    cuts = sorted(rng.sample(range(1, len(words)), min(len(words) - 1, rng.randrange(1, 6))))
    parts = [" ".join(words[i:j]) for i, j in zip([0, *cuts], [*cuts, len(words)], strict=True)]
    if rng.random() < 0.3:
        parts.append(rng.choice(("😂", "❤️", "merci", "bonne soirée", "bisous", "voilà", "mdr")))
    return [p.capitalize() if rng.random() < 0.4 else p for p in parts]


def split_texters(seed: int = 1) -> World:
    """No raid: a youth radio show at 21h asks listeners for their stories; four in five
    type one line per SMS (a sentence cut into 2-6 pieces seconds apart), the rest send
    it whole. Every story is their own."""
    b = Builder("split_texters", seed)
    b.end = 3 * DAY
    organic(b, 0, b.end, 500)
    rng = b.rng
    for day, listeners in ((1, 1800), (2, 900)):
        at = day * DAY + 21 * HOUR + 10 * MIN
        for _ in range(listeners):
            number = b.number()
            t = at + burst_delay(rng, 3 * MIN, 40 * MIN)
            bodies = _fragments(rng) if rng.random() < 0.8 else [_testimony(rng).capitalize()]
            b.conversation(t, number, bodies, LEGIT, gap_median=12.0, gap_sigma=0.7)
    return b.build()


RESENDS = ("??", "?", "Allô ?", "allo", "ça marche pas ?", "y a quelqu'un ?", "Hello ??",
           "Il répond pas", "Je comprends pas ça marche ?", "???", "re", "ça bug ?")


def impatient_resend(seed: int = 1, same: float = 0.1, name: str = "impatient_resend",
                     gap: float = 75.0, copies: tuple[int, int] = (1, 3)) -> World:
    """No raid: a TV show gives the number at 20:50; the network is slow and replies are
    late, so one viewer in five writes again a minute or two later ('??', 'Allô ?'), and
    one in ten sends their own text again once or twice, as a phone's 'retry' does.
    ``gap``: the median seconds between a viewer's messages (added after the fourth
    team's report: people who wait ten minutes for an answer before sending again);
    ``copies``: how many more times a resender sends its text, a range as randrange's."""
    b = Builder(name, seed)
    b.end = 3 * DAY
    organic(b, 0, b.end, 500)
    rng = b.rng
    at = DAY + 20 * HOUR + 50 * MIN
    for _ in range(3200):
        number = b.number()
        t = at + burst_delay(rng, 2 * MIN, 25 * MIN)
        first = (curious(rng, ("à la télé", "dans l'émission")) if rng.random() < 0.6
                 else _testimony(rng).capitalize())
        bodies = [first]
        r = rng.random()
        if r < 0.2:
            bodies += [rng.choice(RESENDS) for _ in range(rng.randrange(1, 4))]
        elif r < 0.2 + same:
            bodies += [first] * rng.randrange(*copies)
        b.conversation(t, number, bodies, LEGIT, gap_median=gap, gap_sigma=0.6)
    return b.build()


def _francophone_text(rng: random.Random) -> str:
    text = curious(rng, ("sur la RTBF", "à la RTS", "au téléjournal", "sur La Une", "à la télé"))
    if rng.random() < 0.1:
        text += rng.choice((" une fois", " septante fois merci", " 🇧🇪", " 🇨🇭", " nonante pour cent des filles sont concernées"))  # noqa: E501
    return text


def be_ch_tv_surge(seed: int = 1) -> World:
    """No raid: the Belgian and Swiss evening news run the story at 19:30 the same day:
    thousands of +32 and +41 numbers write to a French number, on top of French traffic."""
    b = Builder("be_ch_tv_surge", seed)
    b.end = 3 * DAY
    organic(b, 0, b.end, 500)
    at = DAY + 19 * HOUR + 30 * MIN
    surge(b, at + 12 * MIN, 2600, 2 * MIN, 25 * MIN, _francophone_text, plan=be_mobile)
    surge(b, at + 20 * MIN, 1500, 2 * MIN, 25 * MIN, _francophone_text, plan=ch_mobile)
    surge(b, at + 5 * HOUR, 500, 20 * MIN, 3 * HOUR, _francophone_text, plan=be_mobile)
    return b.build()


WORLDS: dict[str, Callable[[], World]] = {
    "press_morning_show": press_morning_show,
    "radio_spot_hourly": radio_spot_hourly,
    "celebrity_tweet_2am": celebrity_tweet_2am,
    "school_worksheet_week": school_worksheet_week,
    "metro_poster": metro_poster,
    "tv_poll_oui": tv_poll_oui,
    "split_texters": split_texters,
    "impatient_resend": impatient_resend,
    "impatient_resend_5pct": partial(impatient_resend, same=0.05, name="impatient_resend_5pct"),
    "impatient_resend_late": partial(impatient_resend, gap=600.0, name="impatient_resend_late"),
    "impatient_resend_many": partial(impatient_resend, copies=(2, 5),
                                     name="impatient_resend_many"),
    "impatient_nudge_only": partial(impatient_resend, same=0.0, name="impatient_nudge_only"),
    "be_ch_tv_surge": be_ch_tv_surge,
    "chatty_conversations": chatty_conversations,
    "organic_month": organic_month,
    "metro_poster_raid": metro_poster_raid,
    "tweet_raid_mimic": tweet_raid_mimic,
    "ucs2_long_raid": ucs2_long_raid,
    "slow_accelerating_raid": slow_accelerating_raid,
    "two_shot_raid": two_shot_raid,
    "foreign_plan_raid": foreign_plan_raid,
    "brushoff_then_insult": brushoff_then_insult,
    "quiet_then_300": quiet_then_300,
    # the same worlds with other seeds: the defaults' margin on them is a handful of raiders
    "two_shot_raid_s2": partial(two_shot_raid, 2),
    "quiet_then_300_s3": partial(quiet_then_300, 3),
    "slow_accelerating_raid_s4": partial(slow_accelerating_raid, 4),
}


def main(argv: list[str] | None = None) -> int:
    return write_all(WORLDS, "tests.heldout.redteam4", sys.argv[1:] if argv is None else argv)


def write_all(worlds: dict[str, Callable[[], World]], module: str, args: list[str]) -> int:
    """``python -m MODULE OUTDIR``: write every world of ``worlds`` into OUTDIR."""
    if len(args) != 1 or args[0].startswith("-"):  # --help is no directory
        print(f"usage: python -m {module} OUTDIR", file=sys.stderr)
        return 0 if args in (["-h"], ["--help"]) else 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, make in worlds.items():
        world = make()
        world.write(out / f"{name}.jsonl")
        print(f"{name}: {len(world.lines)} lines "
              f"({world.count(LEGIT)} legit, {world.count(RAID)} raid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
