"""Sixth red team: genuine-only worlds (no raid at all) of shapes not tried before.

Written blind (no reading of the policy, the project's traffic generator, its scenarios or
the other held-out generators). Every world is three to five days of organic background
traffic (people handed the number as a brush-off, day/night cycle) plus one genuine event:

- ``typo_readout``: a celebrity reads a support text on air; 40% of the viewers send it
  verbatim, each with their own small typos (accents dropped, swapped letters, ...);
- ``short_bursts``: in a TV surge, a third of the viewers send 2-3 short, different texts
  within a minute ("Salut" / "c'est qui ?" / "?");
- ``testimonies``: a magazine feature; readers send long multi-sentence testimonies built
  from the same common phrases ("je voulais juste dire", "merci pour ce que vous faites");
  ``testimony_incidents``: 30% of them go on to tell one or two more incidents in further
  SMS; ``testimony_series``: 20% send two or three whole testimonies in a row;
- ``voip_block``: 30% of a surge's viewers text from a VoIP app's numbers, allocated
  close together in one +3375x block;
- ``corporate_day``: an awareness morning at a company: 500 employees on the company's
  consecutive fleet numbers each send their own text within 40 minutes;
- ``formal_readers``: a regional newspaper prints the number; older readers write formally,
  many with the same courteous letter ("Bonjour Madame, Monsieur, ...");
- ``challenge_days``: a viral challenge, participants text "Jour 1", "Jour 2", ... one a day;
- ``plateau_days``: a viral share that stays at a high plateau for three days, people
  sending one to three texts of their own;
- ``two_surges``: two TV programmes an hour apart, some viewers of the first write again;
- ``quiet_4am``: a push notification at 4:10 am wakes a surge while the number is silent;
- ``overseas_surge``: Réunion's evening news (+262 69x numbers, 3 hours ahead of Paris).

Labels: every line is ``"legit"``. No sender's first text is an opt-out keyword. A world is
a pure function of its seed. ``python -m tests.heldout.redteam6 OUTDIR`` writes every trace.
"""

from __future__ import annotations

import json
import math
import random
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LEGIT = "legit"
TO = "+33644649021"
DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0
OPT_OUT = frozenset({"stop", "arret", "arrêt", "unsubscribe", "stopall", "cancel", "end",
                     "quit", "stop sms", "desabonner", "désabonner"})

Line = tuple[float, str, str, str]


@dataclass
class World:
    name: str
    description: str
    lines: list[Line] = field(default_factory=list)

    has_raid = False

    def senders(self, label: str | None = None) -> set[str]:
        return {n for _, n, _, lab in self.lines if label is None or lab == label}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for t, number, body, label in self.lines:
                out.write(json.dumps({"t": round(t, 3), "from": number, "to": TO,
                                      "body": body, "label": label},
                                     ensure_ascii=False) + "\n")
        return path


# --------------------------------------------------------------------------- vocabulary

NAMES = ["Julien", "Thomas", "Nicolas", "Maxime", "Kevin", "Antoine", "Romain", "Hugo",
         "Lucas", "Mehdi", "Karim", "Yanis", "Théo", "Alexandre", "Quentin", "Florian",
         "Sébastien", "Jérémy", "Adrien", "Bastien", "Loïc", "Mathieu", "Vincent", "Arthur",
         "Samir", "Benoît", "Cédric", "Damien", "Enzo", "Rayan", "Ludovic", "Franck"]
WOMEN = ["Camille", "Léa", "Manon", "Chloé", "Sarah", "Inès", "Julie", "Emma", "Clara",
         "Lucie", "Pauline", "Marine", "Océane", "Anaïs", "Mélanie", "Aurélie", "Nadia",
         "Fatou", "Elodie", "Justine", "Margaux", "Yasmine", "Laura", "Audrey"]
PLACES = ["au bar", "à la soirée de Marco", "au concert", "dans le métro", "à la fac",
          "au Dernier Métro", "à la terrasse", "chez Paul", "au festival", "à la salle",
          "au mariage de Sophie", "au Macumba", "au karaoké", "au bowling", "à la plage",
          "à l'anniversaire de Léo", "au match", "dans le train", "au taf", "à la piscine"]
WHEN = ["hier soir", "samedi", "tout à l'heure", "vendredi", "ce midi", "la semaine dernière",
        "dimanche", "cette nuit", "avant-hier", "jeudi soir"]


def brush_off(rng: random.Random) -> str:
    """A first text from someone handed the number as a brush-off."""
    name = rng.choice(NAMES)
    who = rng.choice(WOMEN)
    forms = [
        f"Salut c'est {name}, on s'est vus {rng.choice(PLACES)} {rng.choice(WHEN)}",
        f"Coucou {who} ! C'est {name} {rng.choice(PLACES)} 😊",
        f"Hey {who}, c'est {name}. Toujours ok pour un verre {rng.choice(WHEN)} ?",
        f"Bonsoir, c'est bien le numéro de {who} ?",
        f"{who} ? c'est {name}, tu m'as donné ton num {rng.choice(PLACES)}",
        f"Yo c {name} {rng.choice(PLACES)} {rng.choice(WHEN)}, tu rentres bien ?",
        f"Bonjour {who}, {name} ici. Ravi de t'avoir rencontrée {rng.choice(WHEN)}",
        f"Slt {who} cv ? {name} {rng.choice(PLACES)}",
    ]
    return rng.choice(forms)


FOLLOW_UPS = ["??", "Pourquoi tu m'as donné ce numéro", "Sérieux ?", "Ok j'ai compris...",
              "Pas drôle", "C'est quoi ce délire", "Ah d'accord", "T'aurais pu dire non",
              "Bon ben bonne soirée", "Mdr bien joué", "Je suis dégoûté", "ok", "Wow.",
              "C'est un fake ?", "Sympa l'accueil", "Donc c'était pas ton numéro ?"]

CHANNELS = ["TF1", "France 2", "M6", "BFM", "Quotidien", "C à vous", "France 3", "Arte",
            "TMC", "LCI", "le JT", "l'émission"]
OPENERS = ["Bonjour", "Bonsoir", "Salut", "Coucou", "Hello", "Bjr", "Slt", "Bonsoir à vous",
           "Bonjour à toute l'équipe", "", "", ""]
PIECES = [
    "je viens de vous voir sur {chan}", "je suis {woman}, {age} ans",
    "bravo pour cette initiative", "c'est vraiment utile ce que vous faites",
    "ça m'est arrivé {when} {place}", "j'ai donné le numéro à un lourd {place}",
    "est-ce que ça marche vraiment ?", "je vais le donner à toutes mes copines",
    "on en a besoin", "enfin une idée simple", "je teste pour voir ce qu'il répond",
    "ma fille m'a parlé de vous", "je suis prof et j'en parlerai à mes élèves",
    "c'est génial, merci", "je partage autour de moi", "j'aurais aimé ça à {age} ans",
    "un mec m'a suivie jusqu'à chez moi {when}", "on fait comment pour aider ?",
    "vous êtes combien derrière ce numéro ?", "je me suis reconnue dans le reportage",
    "courage à vous", "c'est gratuit pour nous ?", "je l'ai enregistré dans mon tel",
    "ma sœur l'utilise déjà", "quelle belle idée", "c'est le numéro du reportage ?",
]
CLOSINGS = ["", "", "", " Merci !", " Bonne soirée", " 👏", " 💪", " ❤️", " Bises",
            " Merci beaucoup", " Bonne continuation", " 🙏"]


def own_text(rng: random.Random) -> str:
    """A viewer's own, mostly distinct, text."""
    parts = rng.sample(PIECES, rng.choice((1, 1, 2, 2, 3)))
    filled = [p.format(chan=rng.choice(CHANNELS), woman=rng.choice(WOMEN),
                       age=rng.randint(14, 67), when=rng.choice(WHEN),
                       place=rng.choice(PLACES)) for p in parts]
    opener = rng.choice(OPENERS)
    body = ", ".join(filled)
    if opener:
        body = f"{opener}, {body}" if rng.random() < 0.6 else f"{opener} {body}"
    else:
        body = body[0].upper() + body[1:]
    if rng.random() < 0.5:
        body += rng.choice((".", " !", "", "..."))
    return body + rng.choice(CLOSINGS)


# --------------------------------------------------------------------------- numbers

class Numbers:
    """Unique E.164 numbers drawn from plans."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _take(self, number: str) -> str | None:
        if number in self.used:
            return None
        self.used.add(number)
        return number

    def fr_mobile(self) -> str:
        while True:
            prefix = self.rng.choice(("6", "6", "6", "7"))
            if prefix == "7":
                prefix += str(self.rng.randint(3, 8))
                rest = 8
            else:
                rest = 8
            digits = "".join(str(self.rng.randint(0, 9)) for _ in range(rest))
            got = self._take(f"+33{prefix}{digits}"[:12])
            if got:
                return got

    def prefixed(self, prefix: str, width: int) -> str:
        while True:
            got = self._take(prefix + "".join(str(self.rng.randint(0, 9))
                                              for _ in range(width)))
            if got:
                return got

    def exact(self, number: str) -> str | None:
        return self._take(number)


# --------------------------------------------------------------------------- timing

def day_weight(hour: float) -> float:
    """Relative activity by hour of day (local time)."""
    table = [0.25, 0.15, 0.08, 0.05, 0.04, 0.05, 0.12, 0.3, 0.5, 0.6, 0.65, 0.7, 0.8, 0.75,
             0.7, 0.7, 0.75, 0.85, 1.0, 1.1, 1.15, 1.1, 0.9, 0.55]
    return table[int(hour) % 24]


def clock_time(rng: random.Random, start: float, end: float) -> float:
    """A time in [start, end) following the day/night cycle (rejection sampling)."""
    while True:
        t = rng.uniform(start, end)
        if rng.random() < day_weight((t % DAY) / HOUR) / 1.15:
            return t


def surge_time(rng: random.Random, t0: float, rise: float, decay: float) -> float:
    return t0 + rng.expovariate(1 / rise) + rng.expovariate(1 / decay)


def gaps(rng: random.Random, count: int, median: float) -> list[float]:
    return [median * math.exp(rng.gauss(0, 0.8)) for _ in range(count)]


def how_many(rng: random.Random, high: int = 3) -> int:
    weights = [1 / k ** 1.6 for k in range(1, high + 1)]
    return rng.choices(range(1, high + 1), weights)[0]


class Builder:
    def __init__(self, seed: int, name: str, days: int = 3) -> None:
        self.rng = random.Random(f"redteam6:{name}:{seed}")
        self.numbers = Numbers(self.rng)
        self.lines: list[Line] = []
        self.days = days
        self.end = days * DAY

    def add(self, t: float, number: str, body: str) -> None:
        if 0 <= t < self.end:
            self.lines.append((t, number, body, LEGIT))

    def sender(self, number: str, first_t: float, texts: list[str],
               median_gap: float = 180.0) -> None:
        t = first_t
        for i, body in enumerate(texts):
            if i:
                t += gaps(self.rng, 1, median_gap)[0]
            self.add(t, number, body)

    def background(self, per_day: int = 160) -> None:
        rng = self.rng
        for _ in range(per_day * self.days):
            number = self.numbers.fr_mobile() if rng.random() < 0.97 else \
                self.numbers.prefixed(rng.choice(("+324", "+4179", "+3519")), 7)
            t = clock_time(rng, 0, self.end)
            texts = [brush_off(rng)]
            for _ in range(how_many(rng) - 1):
                texts.append(rng.choice(FOLLOW_UPS))
            self.sender(number, t, texts, 240.0)

    def viewers(self, count: int, t0: float, rise: float, decay: float,
                make: Callable[[random.Random], list[str]],
                number: Callable[[], str] | None = None, median_gap: float = 150.0) -> None:
        for _ in range(count):
            who = number() if number else self.numbers.fr_mobile()
            self.sender(who, surge_time(self.rng, t0, rise, decay), make(self.rng), median_gap)

    def world(self, name: str, description: str) -> World:
        self.lines.sort(key=lambda line: line[0])
        return World(name, description, self.lines)


def own_texts(rng: random.Random, high: int = 2) -> list[str]:
    return [own_text(rng) for _ in range(how_many(rng, high))]


# --------------------------------------------------------------------------- typos

ACCENTS = str.maketrans("éèêàùçôîÉ", "eeeaucoiE")


def strip_one_accent(text: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(text) if unicodedata.normalize("NFD", c) != c]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + text[i].translate(ACCENTS) + text[i + 1:]


def typo(text: str, rng: random.Random) -> str:
    """One small human slip on a phone keyboard."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    i = rng.choice(letters)
    kind = rng.choice(("accent", "accent", "swap", "drop", "double", "near", "case",
                       "punct", "noaccent_all", "space"))
    near = {"a": "z", "z": "e", "e": "r", "r": "t", "t": "y", "u": "i", "i": "o", "o": "p",
            "s": "d", "n": "b", "m": "l", "l": "k", "c": "v", "p": "o", "d": "f"}
    if kind == "accent":
        return strip_one_accent(text, rng)
    if kind == "noaccent_all":
        return text.translate(ACCENTS)
    if kind == "swap" and i + 1 < len(text) and text[i + 1].isalpha():
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == "drop":
        return text[:i] + text[i + 1:]
    if kind == "double":
        return text[:i] + text[i] + text[i:]
    if kind == "near" and text[i].lower() in near:
        return text[:i] + near[text[i].lower()] + text[i + 1:]
    if kind == "case":
        return text[0].lower() + text[1:]
    if kind == "punct":
        return text.rstrip(".!") if text[-1] in ".!" else text + "!"
    if kind == "space":
        spots = [j for j, c in enumerate(text) if c == " "]
        j = rng.choice(spots)
        return text[:j] + text[j + 1:]
    return strip_one_accent(text, rng)


# --------------------------------------------------------------------------- worlds

READOUT = "Je te crois. Tu n'es pas seule. Ensemble contre le harcèlement de rue."


def typo_readout(seed: int = 1, share: float = 0.4) -> World:
    """A celebrity reads a support text on air; ``share`` of viewers send it with typos."""
    b = Builder(seed, f"typo_readout:{share}")
    b.background()

    def make(rng: random.Random) -> list[str]:
        if rng.random() < share:
            text = READOUT
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                text = typo(text, rng)
            return [text] + ([own_text(rng)] if rng.random() < 0.15 else [])
        return own_texts(rng)

    b.viewers(3000, DAY + 20.7 * HOUR, 4 * MINUTE, 30 * MINUTE, make)
    return b.world("typo_readout", f"{share:.0%} send the read-out text with their typos")


SHORT = ["Salut", "Bonjour", "c'est qui ?", "?", "Allô", "ça marche comment ?",
         "C'est quoi ce numéro", "Hello", "Coucou", "Test", "Y a quelqu'un ?", "Bonsoir",
         "Vous êtes qui", "??", "Ça fonctionne ?", "Re", "C'est pour quoi ?", "Oui ?"]


def short_bursts(seed: int = 1, share: float = 0.35) -> World:
    """``share`` of a surge's viewers send 2-3 short, different texts within a minute."""
    b = Builder(seed, f"short_bursts:{share}")
    b.background()
    rng = b.rng
    for _ in range(3000):
        number = b.numbers.fr_mobile()
        t = surge_time(rng, DAY + 20.9 * HOUR, 3 * MINUTE, 25 * MINUTE)
        if rng.random() < share:
            for k, body in enumerate(rng.sample(SHORT, rng.choice((2, 2, 3)))):
                b.add(t + k * rng.uniform(6, 25), number, body)
        else:
            b.sender(number, t, own_texts(rng))
    return b.world("short_bursts", f"{share:.0%} send 2-3 short texts within a minute")


TESTIMONY = [
    "Je voulais juste dire merci pour ce que vous faites.",
    "Merci pour ce que vous faites, vraiment.",
    "Je voulais juste vous dire que ça m'est arrivé aussi.",
    "Ça m'est arrivé tellement de fois que je ne compte plus.",
    "Je n'en avais jamais parlé à personne.",
    "J'avais {age} ans la première fois.",
    "C'était {place}, {when}, un homme d'une quarantaine d'années.",
    "Je me suis sentie complètement seule ce jour-là.",
    "Personne autour de moi n'a rien dit.",
    "Depuis je change de trottoir quand je rentre le soir.",
    "Ma fille a {age} ans et j'ai peur pour elle.",
    "Aujourd'hui je donne votre numéro sans hésiter.",
    "Continuez, vous faites du bien à beaucoup de femmes.",
    "Je vous embrasse fort.",
    "Merci d'exister.",
    "J'ai lu l'article et j'ai pleuré.",
    "Je voulais juste dire que vous n'êtes pas seules.",
    "Il m'a suivie jusqu'à mon immeuble.",
    "J'ai mis des années à comprendre que ce n'était pas ma faute.",
    "Mon copain ne comprend pas pourquoi ça me touche autant.",
]


def testimony_sentences(rng: random.Random) -> tuple[str, list[str], str]:
    """A reader's testimony: greeting, sentences built from common phrases, signature."""
    first = rng.choice(("Bonjour,", "Bonsoir,", "Bonjour à vous,", "Hello,", ""))
    core = [rng.choice(TESTIMONY[:3]), *rng.sample(TESTIMONY[3:], rng.randint(2, 6))]
    if rng.random() < 0.7:
        core.append(rng.choice(("Merci pour ce que vous faites.", "Merci d'exister.",
                                "Je voulais juste dire merci.", "Bon courage à vous.")))
    sentences = [s.format(age=rng.randint(11, 45), place=rng.choice(PLACES),
                          when=rng.choice(WHEN)) for s in core]
    signature = rng.choice(("", "", f" {rng.choice(WOMEN)}", f" {rng.choice(WOMEN)}, "
                                                             f"{rng.randint(17, 70)} ans"))
    return first, sentences, signature


def testimony(rng: random.Random) -> str:
    first, sentences, signature = testimony_sentences(rng)
    return f"{first} {' '.join(sentences)}{signature}".strip()


def testimony_parts(rng: random.Random) -> list[str]:
    """The same testimony typed as 2-3 SMS in a row, the story cut between sentences."""
    first, sentences, signature = testimony_sentences(rng)
    while len(sentences) < 3:
        sentences.append(rng.choice(TESTIMONY[3:]).format(
            age=rng.randint(11, 45), place=rng.choice(PLACES), when=rng.choice(WHEN)))
    parts = min(len(sentences), rng.choice((2, 2, 3)))
    cuts = sorted(rng.sample(range(1, len(sentences)), parts - 1))
    chunks = [sentences[a:b] for a, b in zip([0, *cuts], [*cuts, len(sentences)], strict=True)]
    texts = [" ".join(chunk) for chunk in chunks]
    texts[0] = f"{first} {texts[0]}".strip()
    texts[-1] += signature
    return texts


THANKS = ["Merci pour ce que vous faites", "Merci pour ce que vous faites 🙏",
          "Je voulais juste dire merci", "Merci pour votre réponse, merci pour ce que vous faites",
          "Merci d'exister", "merci pour ce que vous faites vraiment", "Merci ❤️",
          "Je voulais juste dire merci pour ce que vous faites.", "Merci beaucoup 🙏"]


INCIDENT_OPEN = ["Une autre fois,", "Et aussi,", "Autre chose :", "Il y a eu aussi",
                 "Je me souviens aussi :", "Une autre histoire :", "Et encore,", "Pareil,"]


def incidents_texts(rng: random.Random) -> list[str]:
    """A testimony, then one or two more SMS, each telling another incident."""
    texts = [testimony(rng)]
    for _ in range(rng.choice((1, 1, 2))):
        story = rng.sample(TESTIMONY[3:13] + TESTIMONY[17:], rng.randint(2, 3))
        texts.append(f"{rng.choice(INCIDENT_OPEN)} " + " ".join(
            s.format(age=rng.randint(11, 45), place=rng.choice(PLACES), when=rng.choice(WHEN))
            for s in story))
    return texts


def testimonies(seed: int = 1, share: float = 0.6, parts: float = 0.0,
                thanks: float = 0.0, incidents: float = 0.0, series: float = 0.0) -> World:
    """A magazine feature; ``share`` of readers send a long testimony of common phrases,
    ``parts`` of those type it as 2-3 SMS in a row, ``thanks`` of them write a short
    thank-you after the auto-reply, ``incidents`` tell one or two more incidents after it,
    ``series`` send two or three whole testimonies in a row, one per incident."""
    b = Builder(seed, f"testimonies:{share}:{parts}:{thanks}:{incidents}:{series}", days=4)
    b.background()
    rng = b.rng

    def make(r: random.Random) -> list[str]:
        if r.random() < share:
            roll = r.random()
            if roll > 1 - series:
                return [testimony(r) for _ in range(r.choice((2, 2, 3)))]
            if roll < incidents:
                return incidents_texts(r)
            texts = testimony_parts(r) if roll < incidents + parts else [testimony(r)]
            if r.random() < thanks:
                texts.append(r.choice(THANKS))
            return texts
        return own_texts(r)

    # The article is online at 7:00 on day 1 and read all day, then less on day 2.
    for day, count in ((1, 1300), (2, 500)):
        for _ in range(count):
            t = clock_time(rng, day * DAY + 7 * HOUR, (day + 1) * DAY)
            b.sender(b.numbers.fr_mobile(), t, make(rng), 100.0)
    return b.world("testimonies", f"{share:.0%} send long testimonies of shared phrases, "
                                  f"{parts:.0%} of them in 2-3 SMS")


def voip_block(seed: int = 1, share: float = 0.3) -> World:
    """``share`` of a surge's viewers use a VoIP app whose numbers sit in one block."""
    b = Builder(seed, f"voip_block:{share}")
    b.background()
    rng = b.rng
    # The app hands out numbers from +33756 12xxxx, roughly in order of sign-up.
    cursor = rng.randint(0, 3000)

    def voip() -> str:
        nonlocal cursor
        while True:
            cursor += rng.choice((1, 1, 2, 3, 5, 8))
            got = b.numbers.exact(f"+3375612{cursor % 10_000:04d}")
            if got:
                return got

    def number() -> str:
        return voip() if rng.random() < share else b.numbers.fr_mobile()

    b.viewers(2500, DAY + 21 * HOUR, 4 * MINUTE, 30 * MINUTE, own_texts, number)
    return b.world("voip_block", f"{share:.0%} of viewers on one VoIP app's number block")


def corporate_day(seed: int = 1, employees: int = 500) -> World:
    """An awareness morning: employees on consecutive fleet numbers text within 40 min."""
    b = Builder(seed, f"corporate_day:{employees}")
    b.background()
    rng = b.rng
    base = 670_120_000
    fleet = sorted(rng.sample(range(base, base + 1000), employees))
    start = DAY + 10 * HOUR + 15 * MINUTE   # the HR mail lands at 10:15 on day 2
    for n in fleet:
        t = start + rng.expovariate(1 / (8 * MINUTE))
        texts = own_texts(rng)
        if rng.random() < 0.2:
            texts[0] = rng.choice(("Test depuis le bureau 🙂", "Test", "Test 1 2 1 2",
                                   "Coucou c'est pour la journée de sensibilisation",
                                   "Bonjour, je teste suite au mail des RH"))
        b.sender(f"+33{n}", t, texts, 120.0)
    return b.world("corporate_day", f"{employees} employees on consecutive fleet numbers")


FORMAL = [
    "Bonjour Madame, Monsieur, j'ai lu votre article dans le journal. "
    "Je vous remercie pour votre action. Cordialement.",
    "Bonjour Madame, Monsieur,\nJe vous félicite pour cette initiative.\nCordialement",
    "Bonjour Madame, Monsieur, je souhaiterais avoir des renseignements. Cordialement.",
    "Madame, Monsieur, bravo pour votre initiative. Salutations distinguées.",
    "Bonjour Madame, Monsieur, est-ce bien le numéro paru dans le journal ? Merci.",
]


def formal_readers(seed: int = 1, identical: float = 0.45) -> World:
    """A regional newspaper; older readers write formally, ``identical`` with a stock letter."""
    b = Builder(seed, f"formal_readers:{identical}")
    b.background()
    rng = b.rng
    for day, count in ((1, 900), (2, 350)):
        for _ in range(count):
            t = clock_time(rng, day * DAY + 7 * HOUR, day * DAY + 19 * HOUR)
            if rng.random() < identical:
                text = rng.choices(FORMAL, (5, 3, 3, 2, 2))[0]
                if rng.random() < 0.3:
                    text += f"\n{rng.choice(('Mme', 'M.', 'Madame', 'Monsieur'))} " \
                            f"{rng.choice(('Martin', 'Bernard', 'Dubois', 'Leroy', 'Moreau'))}"
            else:
                text = "Bonjour Madame, Monsieur, " + own_text(rng).lower() + " Cordialement."
            texts = [text]
            if rng.random() < 0.1:
                texts.append("Je vous remercie de votre réponse.")
            b.sender(b.numbers.fr_mobile(), t, texts, 600.0)
    return b.world("formal_readers", f"{identical:.0%} of readers send a stock formal letter")


def challenge_days(seed: int = 1, participants: int = 700) -> World:
    """A viral challenge: participants text "Jour N" once a day for five days."""
    b = Builder(seed, f"challenge_days:{participants}", days=6)
    b.background()
    rng = b.rng
    for _ in range(participants):
        number = b.numbers.fr_mobile()
        joined = rng.choices((1, 2, 3), (6, 3, 1))[0]
        style = rng.choice(("Jour {n}", "Jour {n} ✅", "jour {n}", "Jour {n} #DefiSansRelou",
                            "J{n}", "Jour {n} 💪", "Day {n}", "Jour {n} !"))
        last = min(5, joined + rng.choice((1, 2, 3, 4, 4, 4)))
        for n, day in enumerate(range(joined, last + 1), start=1):
            if rng.random() < 0.12:
                continue   # forgot that day
            t = day * DAY + rng.gauss(21 * HOUR, 1.2 * HOUR)
            body = style.format(n=n)
            if rng.random() < 0.1:
                body += " " + rng.choice(("on lâche rien", "facile", "dur aujourd'hui",
                                          "qui est encore là ?"))
            b.add(t, number, body)
    return b.world("challenge_days", f"{participants} people text 'Jour N' daily")


def plateau_days(seed: int = 1, per_day: int = 2500, days: int = 3, high: int = 3) -> World:
    """A viral share that stays at a high plateau for ``days`` days."""
    b = Builder(seed, f"plateau_days:{per_day}:{days}:{high}", days=days + 1)
    b.background()
    rng = b.rng
    for _ in range(per_day * days):
        t = clock_time(rng, DAY, (days + 1) * DAY)
        b.sender(b.numbers.fr_mobile(), t, own_texts(rng, high))
    return b.world("plateau_days", f"{per_day} genuine senders a day for {days} days")


def two_surges(seed: int = 1, again: float = 0.15) -> World:
    """Two TV programmes an hour apart; ``again`` of the first's viewers write again."""
    b = Builder(seed, f"two_surges:{again}")
    b.background()
    rng = b.rng
    first: list[str] = []
    for _ in range(2200):
        number = b.numbers.fr_mobile()
        first.append(number)
        b.sender(number, surge_time(rng, DAY + 19.9 * HOUR, 3 * MINUTE, 20 * MINUTE),
                 own_texts(rng))
    for _ in range(2200):
        b.sender(b.numbers.fr_mobile(),
                 surge_time(rng, DAY + 21 * HOUR, 3 * MINUTE, 25 * MINUTE), own_texts(rng))
    for number in rng.sample(first, int(again * len(first))):
        t = surge_time(rng, DAY + 21 * HOUR, 3 * MINUTE, 25 * MINUTE)
        b.add(t, number, rng.choice(("Encore vous !", "Je vous revois sur l'autre chaîne",
                                     "Re-bonsoir", own_text(rng))))
    return b.world("two_surges", f"two surges an hour apart, {again:.0%} write again")


def quiet_4am(seed: int = 1, count: int = 1500) -> World:
    """A news app push at 4:10 am: a surge while the number is silent."""
    b = Builder(seed, f"quiet_4am:{count}")
    b.background(120)
    b.viewers(count, DAY + 4 * HOUR + 10 * MINUTE, 2 * MINUTE, 35 * MINUTE, own_texts)
    return b.world("quiet_4am", f"{count} genuine senders from 4:10 am")


def overseas_surge(seed: int = 1, count: int = 2200) -> World:
    """Réunion 1ère's 19:00 news (16:00 in Paris): +262 692/693 numbers."""
    b = Builder(seed, f"overseas_surge:{count}")
    b.background()
    rng = b.rng

    def number() -> str:
        return b.numbers.prefixed(rng.choice(("+262692", "+262693")), 6)

    def make(r: random.Random) -> list[str]:
        texts = own_texts(r)
        if r.random() < 0.3:
            texts[0] = r.choice(("Bonjour la Réunion 1ère ", "Bonsoir depuis Saint-Denis ",
                                 "Salut depuis St Pierre ", "Kosa i lé ? ")) + texts[0]
        return texts

    b.viewers(count, DAY + 16 * HOUR, 4 * MINUTE, 30 * MINUTE, make, number)
    return b.world("overseas_surge", f"{count} Réunion viewers, +262 numbers")




def _variant(name: str, make: Callable[..., World], shift: int = 0,
             **kwargs: float) -> Callable[..., World]:
    """``make`` with other settings (``shift``: another seed) under its own name."""
    def world(seed: int = 1) -> World:
        made = make(seed + shift, **kwargs)
        made.name = name
        return made
    return world


def control(seed: int = 1) -> World:
    """Background traffic only: the control."""
    b = Builder(seed, "control")
    b.background()
    return b.world("control", "three days of organic traffic only")


WORLDS: dict[str, Callable[..., World]] = {
    "typo_readout": typo_readout,
    "short_bursts": short_bursts,
    "testimonies": testimonies,
    "voip_block": voip_block,
    "corporate_day": corporate_day,
    "formal_readers": formal_readers,
    "challenge_days": challenge_days,
    "plateau_days": plateau_days,
    "two_surges": two_surges,
    "quiet_4am": quiet_4am,
    "overseas_surge": overseas_surge,
    "testimony_incidents": _variant("testimony_incidents", testimonies, incidents=0.3),
    "testimony_series": _variant("testimony_series", testimonies, series=0.2),
}

# Sweep points and other seeds of the lost worlds (measured coverage in test_redteam6.py).
VARIANTS: dict[str, Callable[..., World]] = {
    "control": control,
    "plateau_one_day": _variant("plateau_one_day", plateau_days, per_day=2400, days=1),
    "plateau_two_texts": _variant("plateau_two_texts", plateau_days, high=2),
    "corporate_day_200": _variant("corporate_day_200", corporate_day, employees=200),
    "corporate_day_100": _variant("corporate_day_100", corporate_day, employees=100),
    "voip_block_10pct": _variant("voip_block_10pct", voip_block, share=0.1),
    "voip_block_5pct": _variant("voip_block_5pct", voip_block, share=0.05),
    "testimony_incidents_20pct": _variant("testimony_incidents_20pct", testimonies,
                                          incidents=0.2),
    "testimony_series_10pct": _variant("testimony_series_10pct", testimonies, series=0.1),
    "testimony_series_10pct_s2": _variant("testimony_series_10pct_s2", testimonies, shift=1,
                                          series=0.1),
    "testimony_parts_40pct": _variant("testimony_parts_40pct", testimonies, parts=0.4),
    "testimony_thanks_30pct": _variant("testimony_thanks_30pct", testimonies, thanks=0.3),
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):  # --help is no directory
        print("usage: python -m tests.heldout.redteam6 OUTDIR", file=sys.stderr)
        return 0 if argv in (["-h"], ["--help"]) else 2
    out = Path(argv[0])
    for name, make in {**WORLDS, **VARIANTS}.items():
        world = make()
        world.write(out / f"{name}.jsonl")
        print(f"{name}: {len(world.lines)} lines, {len(world.senders(LEGIT))} senders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
