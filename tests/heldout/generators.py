"""Held-out traffic worlds: traces the defence policy was never tuned on.

Theory of operation
-------------------
Each *world* is a few days (or hours) of inbound SMS to one auto-reply number,
written in the project's JSONL trace format (``t``, ``from``, ``to``, ``body``,
``label``). A world is assembled from independent *sources*:

- organic background: people who were handed the number as a brush-off and
  text it, with a day/night cycle (evenings and late nights are busy, 4-7h is
  dead), some of whom write back once or twice after the auto-reply;
- organic surges: a TV/radio segment (a sharp wave: most curious senders within
  the hour) or a viral social-media post (a slow ramp and a day-long plateau);
- raids: forum or group-chat campaigns, each with its own tactic (unique
  insults with heavy-tailed counts, copy-paste templates with mutations sent
  once per number, scripted floods from rotating virtual numbers, slow burns).

Every source draws from one ``random.Random(seed)`` owned by the world, in a
fixed order, so a world is a pure function of its seed. Numbers are drawn from
a per-world allocator that never hands the same number out twice, so a sender
has exactly one label. The generators are written from what raids and organic
traffic look like in the wild, not from the project's own generator or policy:
they are the benchmark's held-out data. Pure standard library, on purpose.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LEGIT = "legit"
RAID = "raid"

HOUR = 3600.0
MINUTE = 60.0
DAY = 86400.0


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Line:
    """One inbound SMS of a trace."""

    t: float
    sender: str
    body: str
    label: str


@dataclass
class World:
    """A generated trace and what is known about it."""

    name: str
    description: str
    seed: int
    to: str
    start_hour: float = 0.0  # local time of day at t = 0
    lines: list[Line] = field(default_factory=list)

    def hour_of_day(self, t: float) -> float:
        return (self.start_hour + t / HOUR) % 24.0

    @property
    def has_raid(self) -> bool:
        return any(line.label == RAID for line in self.lines)

    def senders(self, label: str | None = None) -> set[str]:
        return {line.sender for line in self.lines if label is None or line.label == label}

    def to_jsonl(self) -> str:
        rows = (
            json.dumps(
                {"t": line.t, "from": line.sender, "to": self.to, "body": line.body,
                 "label": line.label},
                ensure_ascii=False,
            )
            for line in self.lines
        )
        return "".join(f"{row}\n" for row in rows)

    def write(self, path: Path) -> Path:
        path.write_text(self.to_jsonl(), encoding="utf-8")
        return path


class Builder:
    """Collects lines for one world; sorts and rounds them when finished."""

    def __init__(self, name: str, description: str, seed: int, duration_s: float,
                 start_hour: float) -> None:
        self.name = name
        self.description = description
        self.seed = seed
        self.rng = random.Random(seed)
        self.duration_s = duration_s
        self.start_hour = start_hour
        self.numbers = Numbers(self.rng)
        self._lines: list[Line] = []

    def hour_of_day(self, t: float) -> float:
        return (self.start_hour + t / HOUR) % 24.0

    def add(self, t: float, sender: str, body: str, label: str) -> None:
        if 0.0 <= t < self.duration_s and body:
            self._lines.append(Line(round(t, 3), sender, body, label))

    def finish(self, to: str) -> World:
        lines = sorted(self._lines, key=lambda line: line.t)  # stable: ties keep draw order
        return World(self.name, self.description, self.seed, to, self.start_hour, lines)


# --------------------------------------------------------------------------- numbers


US_AREA_CODES = (
    "201", "202", "205", "206", "207", "208", "212", "213", "214", "215", "216", "217",
    "224", "225", "229", "231", "234", "239", "240", "248", "251", "252", "253", "254",
    "267", "269", "270", "281", "301", "302", "303", "304", "305", "307", "308", "309",
    "310", "312", "313", "314", "315", "316", "317", "318", "319", "320", "321", "323",
    "330", "334", "336", "337", "339", "347", "351", "352", "360", "361", "385", "386",
    "401", "402", "404", "405", "406", "407", "408", "409", "410", "412", "413", "414",
    "415", "417", "419", "423", "424", "425", "432", "434", "435", "440", "443", "458",
    "469", "478", "479", "480", "484", "501", "502", "503", "504", "505", "507", "508",
    "509", "510", "512", "513", "515", "516", "517", "518", "520", "530", "540", "541",
    "551", "559", "561", "562", "563", "567", "570", "571", "573", "574", "575", "580",
    "585", "586", "601", "602", "603", "605", "606", "607", "608", "609", "610", "612",
    "614", "615", "616", "617", "618", "619", "620", "623", "626", "630", "631", "636",
    "646", "650", "651", "657", "660", "661", "662", "678", "682", "701", "702", "703",
    "704", "706", "707", "708", "712", "713", "714", "715", "716", "717", "718", "719",
    "720", "724", "727", "731", "732", "734", "737", "740", "747", "754", "757", "760",
    "762", "763", "765", "770", "772", "773", "774", "775", "779", "781", "785", "786",
    "801", "802", "803", "804", "805", "806", "808", "810", "812", "813", "814", "815",
    "816", "817", "818", "828", "830", "831", "832", "843", "845", "847", "848", "850",
    "856", "857", "858", "859", "860", "862", "863", "864", "865", "870", "872", "878",
    "901", "903", "904", "906", "907", "908", "909", "910", "912", "913", "914", "915",
    "916", "917", "918", "919", "920", "925", "928", "929", "931", "936", "937", "940",
    "941", "947", "949", "951", "952", "954", "956", "970", "971", "972", "973", "978",
    "979", "980", "984", "985", "989",
)


class Numbers:
    """E.164 numbers from several national plans, each handed out at most once per world."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _unique(self, draw: Callable[[], str]) -> str:
        for _ in range(1000):
            number = draw()
            if number not in self.used:
                self.used.add(number)
                return number
        raise RuntimeError("number plan exhausted")  # pragma: no cover - 10^8 sized plans

    def _digits(self, n: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(n))

    def fr_mobile(self) -> str:
        """+33 6 xx xx xx xx, or +33 7 [3-8]x xx xx xx (07 mobiles opened in 2010)."""
        if self.rng.random() < 0.78:
            return self._unique(lambda: "+336" + self._digits(8))
        return self._unique(lambda: f"+337{self.rng.randint(3, 8)}" + self._digits(7))

    def fr_virtual(self) -> str:
        """Online/MVNO numbers: +33 7 5x-7x, scattered over the range."""
        return self._unique(lambda: f"+337{self.rng.choice('567')}" + self._digits(7))

    def uk_mobile(self) -> str:
        """+44 7xxx xxxxxx; 070 (personal) and 076 (pagers) are not mobiles."""
        return self._unique(lambda: f"+447{self.rng.choice('45789')}" + self._digits(8))

    def us_number(self) -> str:
        """NANP geographic number: a real area code, an exchange 2-9 (no N11, no 555)."""

        def draw() -> str:
            while True:
                nxx = f"{self.rng.randint(2, 9)}{self.rng.randrange(10)}{self.rng.randrange(10)}"
                if nxx[1:] != "11" and nxx != "555":
                    return f"+1{pick(self.rng, US_AREA_CODES)}{nxx}{self._digits(4)}"

        return self._unique(draw)

    def neighbour(self, plan: str) -> str:
        """A visitor's number from a neighbouring country."""
        prefixes = {
            "fr": ("+324", "+417", "+3526"),  # Belgium, Switzerland, Luxembourg mobiles
            "uk": ("+3538", "+336", "+3519"),  # Ireland, France, Portugal
            "us": ("+1", "+521", "+1"),  # US/Canada, Mexico
        }[plan]
        prefix = self.rng.choice(prefixes)
        if prefix == "+1":
            return self.us_number()
        return self._unique(lambda: prefix + self._digits(11 - len(prefix) + 1))

    def mobile(self, plan: str) -> str:
        if plan == "fr":
            return self.fr_mobile()
        if plan == "uk":
            return self.uk_mobile()
        return self.us_number()

    def local_or_visitor(self, plan: str, visitors: float = 0.03) -> str:
        if self.rng.random() < visitors:
            return self.neighbour(plan)
        return self.mobile(plan)


# --------------------------------------------------------------------------- time


# Relative activity of people texting a number they were handed, by local hour.
DIURNAL = (
    0.95, 0.70, 0.45, 0.25, 0.12, 0.08, 0.10, 0.22, 0.38, 0.50, 0.58, 0.66,
    0.85, 0.82, 0.70, 0.68, 0.74, 0.88, 1.05, 1.20, 1.30, 1.38, 1.35, 1.18,
)
_DIURNAL_MEAN = sum(DIURNAL) / len(DIURNAL)


def diurnal(hour: float) -> float:
    """Linear interpolation of DIURNAL, normalised to a daily mean of 1."""
    low = int(hour) % 24
    frac = hour - math.floor(hour)
    value = DIURNAL[low] * (1 - frac) + DIURNAL[(low + 1) % 24] * frac
    return value / _DIURNAL_MEAN


def poisson_times(rng: random.Random, rate: Callable[[float], float], t0: float, t1: float,
                  rate_max: float) -> list[float]:
    """Arrival times of a non-homogeneous Poisson process, by thinning."""
    times: list[float] = []
    t = t0
    while True:
        t += rng.expovariate(rate_max)
        if t >= t1:
            return times
        if rng.random() * rate_max <= rate(t):
            times.append(t)


def lognormal_delay(rng: random.Random, median_s: float, sigma: float) -> float:
    return median_s * math.exp(rng.gauss(0.0, sigma))


def pareto_count(rng: random.Random, alpha: float, cap: int) -> int:
    """Heavy-tailed message count per participant: P(K >= k) ~ k^-alpha."""
    u = 1.0 - rng.random()  # in (0, 1]
    return max(1, min(cap, int(u ** (-1.0 / alpha))))


def human_session_times(rng: random.Random, start: float, count: int, *, gap_median: float,
                        burst_mean: float, pause_median: float) -> list[float]:
    """When one person sends ``count`` messages: bursts of typing, then breaks."""
    times = []
    t = start
    left_in_burst = 1 + int(rng.expovariate(1.0 / burst_mean))
    for _ in range(count):
        times.append(t)
        left_in_burst -= 1
        if left_in_burst <= 0:
            t += lognormal_delay(rng, pause_median, 1.0)
            left_in_burst = 1 + int(rng.expovariate(1.0 / burst_mean))
        else:
            t += max(2.5, lognormal_delay(rng, gap_median, 0.7))
    return times


# --------------------------------------------------------------------------- texts


def pick(rng: random.Random, items: Sequence[str]) -> str:
    return items[rng.randrange(len(items))]


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    )


EMOJI = (
    "😂", "🤣", "😅", "😉", "😊", "🙄", "👍", "👏", "🙏", "😘", "🤔", "😳", "💪", "🔥", "❤️", "😭",
)
SMS_FR = (
    ("c'est", "c"), ("salut", "slt"), ("ça va", "cv"), ("bonjour", "bjr"), ("bonsoir", "bsr"),
    ("pourquoi", "pk"), ("quoi", "koi"), ("beaucoup", "bcp"), ("je sais pas", "jsp"),
    ("s'il te plaît", "stp"), ("t'es", "t"), ("quand", "qd"), ("toujours", "tjr"),
    ("demain", "dm1"), ("aujourd'hui", "ajd"), ("vraiment", "vrmt"),
)
SMS_EN = (
    ("you", "u"), ("are", "r"), ("tonight", "tonite"), ("to ", "2 "), ("please", "pls"),
    ("because", "cuz"), ("really", "rly"), ("going to", "gonna"), ("what", "wat"),
    ("okay", "ok"), ("see you", "cya"), ("thanks", "thx"),
)


def typo(rng: random.Random, text: str) -> str:
    """One slip of the thumb: swap, drop or double a letter."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    i = pick_index(rng, letters)
    kind = rng.random()
    if kind < 0.4 and i + 1 < len(text) and text[i + 1].isalpha():
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind < 0.7:
        return text[:i] + text[i + 1:]
    return text[:i] + text[i] + text[i:]


def pick_index(rng: random.Random, indices: Sequence[int]) -> int:
    return indices[rng.randrange(len(indices))]


def humanize(rng: random.Random, text: str, lang: str, *, sloppiness: float = 1.0) -> str:
    """The way real people type on a phone: abbreviations, no accents, typos, emoji."""
    p = sloppiness
    if rng.random() < 0.35 * p:
        for long, short in SMS_FR if lang == "fr" else SMS_EN:
            if long in text.lower() and rng.random() < 0.6:
                text = _replace_ci(text, long, short)
    if lang == "fr" and rng.random() < 0.45 * p:
        text = strip_accents(text)
    if rng.random() < 0.30 * p:
        text = text.lower()
    elif rng.random() < 0.04 * p:
        text = text.upper()
    if rng.random() < 0.30 * p:
        text = text.rstrip(".!?")
    if rng.random() < 0.25 * p:
        text = typo(rng, text)
        if rng.random() < 0.25:
            text = typo(rng, text)
    if rng.random() < 0.12 * p:
        text += rng.choice(("!!", "!!!", " ?", "??", "...", " !"))
    if rng.random() < 0.22 * p:
        text += (" " if rng.random() < 0.7 else "") + pick(rng, EMOJI) * rng.choice((1, 1, 1, 2, 3))
    return text.strip() or text


def _replace_ci(text: str, old: str, new: str) -> str:
    lowered = text.lower()
    at = lowered.find(old)
    if at < 0:
        return text
    return text[:at] + new + text[at + len(old):]


# Names and places for people texting a number they were handed.
MEN_FR = (
    "Julien", "Kevin", "Thomas", "Nicolas", "Maxime", "Romain", "Alexandre", "Antoine",
    "Mehdi", "Karim", "Yassine", "Lucas", "Hugo", "Florian", "Jérémy", "Sébastien",
    "Mathieu", "Guillaume", "Benoît", "Anthony", "Jordan", "Dylan", "Quentin", "Loïc",
    "Rémi", "Bastien", "Adrien", "Cédric", "Franck", "Olivier", "Samir", "Théo",
)
WOMEN_FR = (
    "Camille", "Léa", "Manon", "Sarah", "Julie", "Laura", "Chloé", "Marine", "Emma",
    "Inès", "Pauline", "Élodie", "Clara", "Océane", "Anaïs", "Mélanie", "Justine", "Lucie",
)
PLACES_FR = (
    "au bar hier soir", "à la soirée de Max", "en boîte samedi", "dans le métro",
    "à la salle de sport", "au mariage de Seb", "au concert", "à la fac", "chez Paul",
    "à la fête de la musique", "au Starbucks", "à l'arrêt de bus", "au festival",
    "à la laverie", "au karaoké", "sur la terrasse", "à l'afterwork",
)
MEN_EN = (
    "Tom", "Jack", "Harry", "Josh", "Dan", "Mike", "Chris", "Ryan", "Liam", "Callum",
    "Jamie", "Connor", "Ben", "Matt", "Alex", "Kieran", "Tyler", "Brandon", "Jake",
    "Kyle", "Dylan", "Nathan", "Sam", "Luke", "Aaron", "Marcus", "Raj", "Omar",
)
WOMEN_EN = (
    "Sophie", "Emily", "Jess", "Hannah", "Chloe", "Amy", "Lauren", "Megan", "Katie",
    "Ashley", "Brittany", "Sarah", "Olivia", "Grace", "Holly", "Priya", "Zoe", "Ellie",
)
PLACES_EN = (
    "at the bar last night", "at Dave's party", "at the club on Saturday", "on the tube",
    "at the gym", "at the wedding", "at the gig", "at uni", "at the pub quiz",
    "in the queue at Tesco", "at the bus stop", "at the festival", "at karaoke",
    "at the work drinks", "at the beer garden", "on the train home",
)


def given_number_text(rng: random.Random, lang: str) -> str:
    """First text from someone who was handed the number and thinks it is hers."""
    if lang == "fr":
        me, her, place = pick(rng, MEN_FR), pick(rng, WOMEN_FR), pick(rng, PLACES_FR)
        frames = (
            f"Salut c'est {me}, on s'est vus {place}",
            f"Coucou {her} ! C'est {me} 😉",
            f"Bonsoir, c'est bien le numéro de {her} ?",
            f"Hey c'est {me}, tu te souviens de moi ? {place.capitalize()}",
            f"Salut {her}, c'est {me} {place}. Ça te dit un verre cette semaine ?",
            f"Coucou c'est {me}, j'ai passé une super soirée avec toi",
            f"Bonjour {her}, c'est {me}. J'espère que tu es bien rentrée",
            f"Yo c'est {me} ! Alors tu fais quoi ce soir ?",
            f"{her} ? C'est {me}, on a parlé {place}",
            f"Salut, c'est {me}. Tu m'as donné ton numéro {place}",
            f"Hello c'est {me} 😊 dispo ce week-end ?",
            f"Bonsoir mademoiselle, c'est {me}",
            "Coucou toi",
            f"C'est {me}",
        )
    else:
        me, her, place = pick(rng, MEN_EN), pick(rng, WOMEN_EN), pick(rng, PLACES_EN)
        frames = (
            f"Hey it's {me} from {place.split(' ', 1)[1]}",
            f"Hi {her}! It's {me}, we met {place} 😊",
            f"Is this {her}?",
            f"hey {her}, {me} here. Great meeting you {place}",
            f"Hey you, it's {me}. Fancy a drink this week?",
            f"Hi, it's {me}. Hope you got home ok",
            f"{her}? It's {me}, we talked {place}",
            f"Hey it's {me}! What are you up to tonight?",
            f"Hello gorgeous, {me} here 😉",
            f"hey its {me} lol. you gave me this number {place}",
            "Hey stranger",
            f"It's {me}",
            f"Hi {her}, it was really nice talking to you {place}",
        )
    return humanize(rng, pick(rng, frames), lang)


def after_reply_text(rng: random.Random, lang: str) -> str:
    """What a real person writes after the auto-reply (or after no answer yet)."""
    if lang == "fr":
        frames = (
            "?", "Allo ?", "Ah ok...", "Sérieux ?", "Mdr bien joué", "C'est nul comme réponse",
            "Tu aurais pu juste dire non", "Ok j'ai compris", "Pfff", "Dommage",
            "Je savais que c'était trop beau", "Haha ok je l'ai mérité", "Ok bonne soirée",
            "T'es sérieuse là ?", "C'est qui ?", "Ptdr", "Bon ok",
        )
    else:
        frames = (
            "?", "hello?", "ah ok...", "seriously?", "lol fair enough", "wow ok",
            "you could have just said no", "ok got it", "ouch", "shame",
            "knew it was too good to be true", "haha ok I deserved that", "ok have a good night",
            "is this a joke?", "who is this?", "lmao", "fine",
        )
    return humanize(rng, pick(rng, frames), lang, sloppiness=0.6)


OPT_OUT_FR = ("STOP", "Stop", "ARRET", "stop")
OPT_OUT_EN = ("STOP", "Stop", "stop", "UNSUBSCRIBE")

CHANNELS_FR = ("France 2", "TF1", "BFM", "M6", "Quotidien", "France Inter", "C à vous")
CHANNELS_EN_UK = ("the One Show", "BBC News", "Radio 1", "This Morning", "Sky News", "ITV")
CHANNELS_EN_US = ("the news", "Good Morning America", "NPR", "the Today show", "CNN")
SOCIAL_FR = ("Twitter", "Facebook", "Insta", "Snap", "un groupe WhatsApp", "TikTok")
SOCIAL_EN = ("Twitter", "Facebook", "Insta", "TikTok", "Reddit", "the group chat")

# Very short texts that many strangers send word for word.
COMMON_SHORT_FR = ("Test", "test", "Coucou", "Bonjour", "Salut", "Mdr", "😂", "Allo", "Hello")
COMMON_SHORT_EN = ("Test", "test", "Hello", "Hi", "hi", "lol", "😂", "Hey", "Testing")


def curious_text(rng: random.Random, lang: str, channel: str) -> str:
    """First text from a stranger who heard about the number on TV, radio or online."""
    roll = rng.random()
    if roll < 0.28:  # the same few short words as thousands of others
        return pick(rng, COMMON_SHORT_FR if lang == "fr" else COMMON_SHORT_EN)
    if lang == "fr":
        greet = pick(rng, ("", "", "Bonjour, ", "Salut ! ", "Coucou, ", "Bonsoir, ", "Hello "))
        core = pick(rng, (
            "c'est vrai que ça marche ?", f"je viens de voir le reportage sur {channel}",
            "trop bien l'idée", "je voulais tester", "c'est pour tester", "qui est là ?",
            f"vu sur {channel}, génial ce concept", "bravo pour l'initiative",
            "alors ça répond ?", "ma copine m'a parlé de ce numéro", "excellent",
            "j'adore le principe", "quelqu'un lit les messages ?", "c'est un robot ?",
            "il faudrait ça dans toutes les villes", "c'est payant pour vous ?",
            "enfin une bonne idée", f"on vient de vous voir sur {channel} avec mes parents",
            "c'est une blague ?", "je vais le donner à tous les lourds",
            "ça fait combien de messages aujourd'hui ?", "vous êtes combien derrière ?",
            "génie", "je suis fan", "respect", "haha c'est qui qui a eu l'idée",
        ))
        tail = pick(rng, ("", "", "", " 😂", " !", " bravo", " mdr", " merci", " 👏"))
    else:
        greet = pick(rng, ("", "", "Hi, ", "Hello! ", "Hey ", "Evening, ", "Morning "))
        core = pick(rng, (
            "does this actually work?", f"just saw you on {channel}", "love the idea",
            "just testing", "testing testing", "who's there?", f"saw this on {channel}",
            "genius idea", "does it reply?", "my sister told me about this number",
            "brilliant", "is anyone reading these?", "is this a bot?",
            "every city needs this", "does this cost you money?", "finally a good idea",
            f"we just watched the bit on {channel}", "is this a joke?",
            "giving this to every creep from now on", "how many texts have you had today?",
            "legend", "so good", "respect", "who came up with this",
        ))
        tail = pick(rng, ("", "", "", " 😂", "!", " well done", " lol", " thanks", " 👏"))
    text = greet + core + tail
    return humanize(rng, text[0].upper() + text[1:], lang)


def curious_followup(rng: random.Random, lang: str) -> str:
    if lang == "fr":
        frames = ("Ah ok ça marche 😂", "Mdr génial", "Merci !", "Trop fort", "Haha bien vu",
                  "Je le garde", "Ok c'est un robot", "Bravo", "Je partage !", "Top")
    else:
        frames = ("Ha it works 😂", "lol brilliant", "Thanks!", "Amazing", "haha nice",
                  "Saving this", "ok it's a bot", "Well done", "Sharing this!", "Top")
    return humanize(rng, pick(rng, frames), lang, sloppiness=0.5)


# Raid texts. Forum raids mix hand-written insults with the forum's in-jokes.
RAID_FR_OPEN = (
    "Réponds", "Alors", "Eh", "Salut", "Coucou", "Bonsoir", "Oh", "Dis donc", "Hé", "Bon",
    "Allez", "Wesh", "Yo", "Tiens",
)
RAID_FR_ADDRESS = (
    "la relou", "madame la féministe", "la pro du râteau", "la standardiste",
    "le numéro bidon", "la comique", "le robot", "la génie", "la rageuse", "l'hystérique",
    "la princesse", "la reine du vent", "la championne", "la boss du refus",
)
RAID_FR_BODY = (
    "ça coûte combien ce message ?", "on va te ruiner à 16 centimes le SMS",
    "tu vas payer chaque réponse", "le forum te passe le bonjour",
    "tu croyais vraiment que ça passerait ?", "c'est qui le relou maintenant ?",
    "compte tes SMS ce soir", "ton forfait va pleurer", "on est des milliers",
    "réponds si t'es pas un robot", "ça fait combien là ?", "bon courage pour la facture",
    "personne t'a demandé ton avis", "t'as voulu jouer", "tu fermes quand ?",
    "je t'écris jusqu'à demain", "encore un", "et un de plus", "t'aimes les SMS ?",
    "ça te plaît l'attention ?", "on t'a vue à la télé", "t'as pas honte ?",
    "c'est la fête ce soir", "je suis pas relou je suis curieux", "réponds moi stp",
)
RAID_FR_TAIL = (
    "", "", "", " mdr", " ptdr", " AYAAA", " ISSOU", " 😂😂", " 🤡", " lol", " 🤣", " !!!",
    " (le 18-25 te salue)", " #RaidDuSiècle", " - la team", " 16cts", "...",
)
RAID_FR_MEMES = ("AYAAAA", "ISSOU", "Le 18-25 vous salue", "Ok boomer", "🤡🤡🤡", "Réponds",
                 "RISITAS", "0,16€ 😂")
RAID_EN_OPEN = ("Reply", "So", "Hey", "Hi", "Oi", "Yo", "Well", "Listen", "Ok", "Hello")
RAID_EN_ADDRESS = (
    "rejection hotline", "miss no-means-no", "the bot", "princess", "queen of rejection",
    "genius", "tv star", "karen", "professional ghost", "the fake number",
)
RAID_EN_BODY = (
    "how much is this text costing you?", "enjoy the bill", "we're gonna bankrupt this number",
    "the forum says hi", "did you really think this would work?", "who's the creep now?",
    "count your texts tonight", "there's thousands of us", "reply if you're not a bot",
    "how many is that now?", "good luck with the invoice", "nobody asked", "you wanted attention",
    "when are you shutting this down?", "I'll text all night", "another one", "and another",
    "saw you on tv lol", "aren't you embarrassed?", "party tonight", "reply to me pls",
    "each reply costs money right?", "this is what you get",
)
RAID_EN_TAIL = ("", "", "", " lol", " lmao", " 😂😂", " 🤡", " xD", "!!!", " /b/ says hi",
                " #bankruptthebot", " 16p", "...")
RAID_EN_MEMES = ("lmao", "🤡🤡🤡", "Reply", "ok boomer", "get rekt", "cope", "ratio", "💸💸💸")


def unique_insult(rng: random.Random, lang: str, signature: str = "") -> str:
    """A hand-written raid message: a new combination every time, forum in-jokes included."""
    if rng.random() < 0.08:
        text = pick(rng, RAID_FR_MEMES if lang == "fr" else RAID_EN_MEMES)
    elif lang == "fr":
        text = (f"{pick(rng, RAID_FR_OPEN)} {pick(rng, RAID_FR_ADDRESS)}, "
                f"{pick(rng, RAID_FR_BODY)}{pick(rng, RAID_FR_TAIL)}")
        if rng.random() < 0.3:
            text += " " + pick(rng, RAID_FR_BODY)
    else:
        text = (f"{pick(rng, RAID_EN_OPEN)} {pick(rng, RAID_EN_ADDRESS)}, "
                f"{pick(rng, RAID_EN_BODY)}{pick(rng, RAID_EN_TAIL)}")
        if rng.random() < 0.3:
            text += " " + pick(rng, RAID_EN_BODY)
    if signature and rng.random() < 0.5:
        text += f" {signature}"
    return humanize(rng, text, lang, sloppiness=0.8)


# Copy-paste raid texts (forum opening posts and group-chat messages).
TEMPLATES_FR = (
    "Bonjour, je vous écris suite à votre passage à la télé. Je trouve votre démarche "
    "ridicule et je compte vous envoyer un message toutes les heures jusqu'à ce que "
    "vous fermiez ce numéro.",
    "Salut c'est Kevin, on s'est rencontrés au bar, tu m'as donné ce numéro, tu te "
    "souviens ? Réponds vite sinon je viens te chercher à la sortie.",
    "Message de la part de tout le forum : chaque réponse de ce robot vous coûte 16 "
    "centimes, on est des milliers et on a toute la nuit devant nous. Bonne chance.",
    "Madame, votre numéro anti-relous est une insulte faite aux hommes. Nous allons le "
    "saturer jusqu'à ce que l'opérateur le coupe. Cordialement, les relous.",
)
TEMPLATES_EN = (
    "Hi, I'm texting because you said rejection is free. It isn't: every reply costs "
    "you money and there are thousands of us. See you on the invoice.",
    "Hey it's Mike from the bar, you gave me this number remember? Text me back or I'll "
    "keep texting every hour until you do.",
    "Message from the whole forum: this bot pays for every reply it sends. We have all "
    "weekend. Shut it down or pay up. Regards, the creeps.",
    "Dear rejection hotline, your number is an insult to men everywhere and we will keep "
    "flooding it until your carrier pulls the plug. Have a nice day.",
    "Congratulations! You have been selected for our survey on fake numbers. Reply YES to "
    "continue or reply to this message with your real number.",
)
SYNONYMS = {
    "hi": ("hey", "hello", "yo"), "thousands": ("hundreds", "loads", "tons"),
    "every": ("each",), "money": ("cash", "£££", "$$$"), "whole": ("entire",),
    "keep": ("continue",), "flooding": ("spamming", "hitting"), "bonjour": ("salut", "bonsoir"),
    "milliers": ("centaines", "plein"), "ridicule": ("débile", "stupide", "nulle"),
    "numéro": ("num", "numero"), "réponds": ("répond", "reponds"), "vite": ("stp", "maintenant"),
    "nuit": ("soirée", "semaine"), "saturer": ("spammer", "inonder"),
}
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "x": "х"}  # Cyrillic look-alikes
ZERO_WIDTH = "\u200b"


def mutate(rng: random.Random, text: str, lang: str, *, edits: int) -> str:
    """A copy-paste with hand edits: a raider's attempt at not looking like the template."""
    words = text.split()
    for _ in range(edits):
        roll = rng.random()
        i = rng.randrange(len(words))
        if roll < 0.22:
            key = words[i].lower().strip(",.:!?")
            if key in SYNONYMS:
                words[i] = pick(rng, SYNONYMS[key])
            else:
                words[i] = typo(rng, words[i])
        elif roll < 0.36 and len(words) > 8:
            del words[i]
        elif roll < 0.50:
            words.insert(i, pick(rng, ("vraiment", "grave", "lol", "putain", "franchement",
                                        "mdr", "bref")) if lang == "fr" else
                         pick(rng, ("really", "literally", "lol", "honestly", "like", "tbh")))
        elif roll < 0.60:
            words[i] = words[i].upper()
        elif roll < 0.70:
            words = words[: max(8, len(words) - rng.randint(3, 10))]
        elif roll < 0.78:
            words.insert(0, pick(rng, ("Re", "Encore moi", "Bis", "Cc")) if lang == "fr" else
                         pick(rng, ("Re", "Me again", "Again", "Oi")))
        elif roll < 0.86:
            words.append(pick(rng, EMOJI) * rng.randint(1, 4))
        elif roll < 0.93:
            words[i] = "".join(
                HOMOGLYPHS.get(ch, ch) if rng.random() < 0.5 else ch for ch in words[i]
            )
        else:
            words[i] = words[i] + ZERO_WIDTH
    out = " ".join(words)
    if rng.random() < 0.3:
        out = out.lower()
    if lang == "fr" and rng.random() < 0.3:
        out = strip_accents(out)
    return out


def scripted_suffix(rng: random.Random, style: str) -> str:
    """The random tail a script appends so no two texts are byte-identical."""
    if style == "hex":
        return "#" + "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(5, 8)))
    if style == "digits":
        return f"[{rng.randrange(10**6):06d}]"
    if style == "emoji":
        return "".join(pick(rng, EMOJI) for _ in range(rng.randint(2, 6)))
    if style == "words":
        pool = ("alpha", "river", "stone", "orbit", "maple", "crane", "delta", "pixel",
                "lemon", "cobalt", "tiger", "ember", "nova", "quartz", "willow", "atlas")
        return " ".join(pick(rng, pool) for _ in range(rng.randint(2, 4)))
    return "ref " + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))


# --------------------------------------------------------------------------- sources


def organic_background(b: Builder, *, plan: str, lang: str, per_day: float,
                       curious_share: float = 0.2, channel: str = "") -> None:
    """People handed the number (and a few who heard of it), with a day/night cycle."""
    rng = b.rng

    def rate(t: float) -> float:
        return per_day / DAY * diurnal(b.hour_of_day(t))

    rate_max = per_day / DAY * max(DIURNAL) / _DIURNAL_MEAN
    for t in poisson_times(rng, rate, 0.0, b.duration_s, rate_max):
        sender = b.numbers.local_or_visitor(plan)
        if rng.random() < curious_share:
            b.add(t, sender, curious_text(rng, lang, channel or "internet"), LEGIT)
        else:
            b.add(t, sender, given_number_text(rng, lang), LEGIT)
        follow_ups = rng.choices((0, 1, 2, 3), weights=(56, 27, 12, 5))[0]
        at = t
        for _ in range(follow_ups):
            at += lognormal_delay(rng, 4 * MINUTE, 1.6)  # minutes, sometimes the next day
            b.add(at, sender, after_reply_text(rng, lang), LEGIT)
        if rng.random() < 0.01:  # opts out, well after the reply has had time to arrive
            at += HOUR + lognormal_delay(rng, 5 * HOUR, 1.0)
            b.add(at, sender, pick(rng, OPT_OUT_FR if lang == "fr" else OPT_OUT_EN), LEGIT)


def press_surge(b: Builder, *, at: float, senders: int, plan: str, lang: str,
                channels: Sequence[str], median_delay_s: float = 9 * MINUTE) -> None:
    """A TV or radio mention: thousands of genuine strangers, most within the hour."""
    rng = b.rng
    for _ in range(senders):
        t = at + lognormal_delay(rng, median_delay_s, 0.85)
        _curious_sender(b, t, plan, lang, pick(rng, channels))


def viral_share(b: Builder, *, start: float, senders: int, plan: str, lang: str,
                channels: Sequence[str], ramp_s: float, plateau_s: float, decay_s: float,
                post_quote: str) -> None:
    """A post shared online: a ramp, a day-long plateau shaped by the clock, a slow decay."""
    rng = b.rng

    def shape(t: float) -> float:
        x = t - start
        if x < 0:
            return 0.0
        level = min(1.0, x / ramp_s)
        if x > ramp_s + plateau_s:
            level *= math.exp(-(x - ramp_s - plateau_s) / decay_s)
        return level * diurnal(b.hour_of_day(t))

    # Draw exactly `senders` arrival times from the shape (rejection sampling).
    end = start + ramp_s + plateau_s + 6 * decay_s
    peak = max(DIURNAL) / _DIURNAL_MEAN
    times: list[float] = []
    while len(times) < senders:
        t = rng.uniform(start, end)
        if rng.random() * peak <= shape(t):
            times.append(t)
    for t in sorted(times):
        if rng.random() < 0.07:  # people who copy the post's own words, each in their way
            sender = b.numbers.local_or_visitor(plan)
            b.add(t, sender, humanize(rng, post_quote, lang), LEGIT)
        else:
            _curious_sender(b, t, plan, lang, pick(rng, channels))


def _curious_sender(b: Builder, t: float, plan: str, lang: str, channel: str) -> None:
    rng = b.rng
    sender = b.numbers.local_or_visitor(plan)
    b.add(t, sender, curious_text(rng, lang, channel), LEGIT)
    extra = rng.choices((0, 1, 2), weights=(78, 17, 5))[0]
    at = t
    for _ in range(extra):
        at += lognormal_delay(rng, 70.0, 1.0)
        b.add(at, sender, curious_followup(rng, lang), LEGIT)


def forum_raid_unique(b: Builder, *, posts: Sequence[tuple[float, int]], plan: str, lang: str,
                      alpha: float, cap: int) -> None:
    """Forum raid, hand-written: every participant types their own insults.

    Message counts per participant are heavy-tailed (a few keep going for hundreds
    of messages, most stop after one or two); people join after each forum post.
    """
    rng = b.rng
    for post_at, participants in posts:
        for _ in range(participants):
            sender = b.numbers.mobile(plan)
            count = pareto_count(rng, alpha, cap)
            start = post_at + lognormal_delay(rng, 14 * MINUTE, 1.1)
            heavy = count >= 60
            signature = pick(rng, ("", "", "", "-- Jean-Kevin", "signé le forum", "xoxo",
                                   "(c'est encore moi)" if lang == "fr" else "(me again)"))
            times = human_session_times(
                rng, start, count,
                gap_median=7.0 if heavy else 35.0,       # heavy senders paste and resend fast
                burst_mean=40.0 if heavy else 6.0,
                pause_median=25 * MINUTE,
            )
            for t in times:
                b.add(t, sender, unique_insult(rng, lang, signature), RAID)


def template_drip(b: Builder, *, waves: Sequence[tuple[float, int]], plan: str, lang: str,
                  templates: Sequence[str], median_delay_s: float, sigma: float,
                  two_shot: float = 0.0) -> None:
    """Copy-paste campaign: each participant pastes a template once, with edits, from their own
    phone (or a fresh app number), spread out over hours or days after each call to action."""
    rng = b.rng
    for wave_at, participants in waves:
        for _ in range(participants):
            sender = b.numbers.mobile(plan)
            t = wave_at + lognormal_delay(rng, median_delay_s, sigma)
            text = pick(rng, templates)
            b.add(t, sender, mutate(rng, text, lang, edits=rng.randint(0, 4)), RAID)
            if rng.random() < two_shot:
                t += lognormal_delay(rng, 2 * HOUR, 1.0)
                b.add(t, sender, mutate(rng, pick(rng, templates), lang, edits=rng.randint(1, 4)),
                      RAID)


def scripted_flood(b: Builder, *, start: float, messages: int, new_number: Callable[[], str],
                   bases: Sequence[str], concurrent: int, per_number: tuple[int, int],
                   gap_s: tuple[float, float]) -> None:
    """A script with a pool of virtual numbers: each number sends a quota and is retired.

    The script keeps ``concurrent`` numbers busy, each sending every ``gap_s`` seconds
    (with jitter), swaps a retired number for a fresh random one from the provider,
    pauses when the provider throttles it, and switches text and suffix style on restart.
    """
    rng = b.rng
    pending: list[tuple[float, int, str, int]] = []  # (next_t, slot, number, left)
    for slot in range(concurrent):
        pending.append((start + rng.uniform(0, gap_s[1]), slot,
                        new_number(), rng.randint(*per_number)))
    base, style = pick(rng, bases), pick(rng, ("hex", "digits", "emoji", "words", "ref"))
    next_pause = start + lognormal_delay(rng, 18 * MINUTE, 0.4)
    pause_until = -1.0
    sent = 0
    while sent < messages:
        pending.sort()
        t, slot, number, left = pending.pop(0)
        if t >= next_pause:  # throttled: the whole script stops, then restarts
            pause_until = next_pause + rng.uniform(2 * MINUTE, 9 * MINUTE)
            next_pause = pause_until + lognormal_delay(rng, 18 * MINUTE, 0.4)
            if rng.random() < 0.5:
                base, style = pick(rng, bases), pick(rng, ("hex", "digits", "emoji", "words",
                                                           "ref"))
        if t < pause_until:
            t = pause_until + rng.uniform(0, gap_s[0])
        text = f"{base} {scripted_suffix(rng, style)}"
        if rng.random() < 0.3:
            text = f"{scripted_suffix(rng, 'digits')} {text}"
        b.add(t, number, text, RAID)
        sent += 1
        left -= 1
        if left <= 0:
            number, left = new_number(), rng.randint(*per_number)
        pending.append((t + rng.uniform(*gap_s), slot, number, left))


def slow_burn(b: Builder, *, participants: int, plan: str, lang: str,
              templates: Sequence[str], days: float, alpha: float, cap: int,
              template_share: float) -> None:
    """A group chat that keeps the joke going for days: a few messages each evening."""
    rng = b.rng
    for _ in range(participants):
        sender = b.numbers.mobile(plan)
        count = pareto_count(rng, alpha, cap)
        uses_template = rng.random() < template_share
        joined = rng.uniform(0, days * DAY * 0.8)
        remaining = count
        day = 0
        while remaining > 0:
            # an evening session (17h-1h local) on some day after joining
            day_start = joined + day * DAY
            hour_now = b.hour_of_day(day_start)
            to_evening = ((rng.uniform(17, 25) - hour_now) % 24) * HOUR
            session_at = day_start + to_evening
            in_session = min(remaining, 1 + int(rng.expovariate(1 / 3.0)))
            t = session_at
            for _ in range(in_session):
                text = (mutate(rng, pick(rng, templates), lang, edits=rng.randint(0, 3))
                        if uses_template and rng.random() < 0.7 else unique_insult(rng, lang))
                b.add(t, sender, text, RAID)
                t += max(3.0, lognormal_delay(rng, 90.0, 1.0))
            remaining -= in_session
            day += rng.choice((1, 1, 1, 2, 3))


# --------------------------------------------------------------------------- worlds


def uk_tv_surge(seed: int = 101) -> World:
    """a. UK: a prime-time TV segment and its late repeat. No raid at all."""
    b = Builder("uk_tv_surge", _doc(uk_tv_surge), seed, 26 * HOUR, start_hour=12.0)
    organic_background(b, plan="uk", lang="en", per_day=420, channel="the telly")
    press_surge(b, at=6 * HOUR + 40 * MINUTE, senders=3600, plan="uk", lang="en",
                channels=CHANNELS_EN_UK)
    press_surge(b, at=11 * HOUR + 15 * MINUTE, senders=420, plan="uk", lang="en",
                channels=CHANNELS_EN_UK, median_delay_s=6 * MINUTE)
    return b.finish(to="+447700900417")


def fr_viral_share(seed: int = 202) -> World:
    """b. France: a post shared on social media; a slow ramp, a day-long plateau. No raid."""
    b = Builder("fr_viral_share", _doc(fr_viral_share), seed, 44 * HOUR, start_hour=0.0)
    organic_background(b, plan="fr", lang="fr", per_day=300)
    viral_share(b, start=8.5 * HOUR, senders=6400, plan="fr", lang="fr", channels=SOCIAL_FR,
                ramp_s=2.5 * HOUR, plateau_s=11 * HOUR, decay_s=3 * HOUR,
                post_quote="Donnez ce numéro aux lourds qui insistent, il leur répondra à votre "
                           "place")
    return b.finish(to="+33756482913")


def fr_forum_unique(seed: int = 303) -> World:
    """c. France: forum raid, hand-written insults, heavy-tailed counts, two waves."""
    b = Builder("fr_forum_unique", _doc(fr_forum_unique), seed, 60 * HOUR, start_hour=12.0)
    organic_background(b, plan="fr", lang="fr", per_day=260)
    forum_raid_unique(b, posts=((8.5 * HOUR, 1000), (24.5 * HOUR, 450)), plan="fr", lang="fr",
                      alpha=1.15, cap=700)
    return b.finish(to="+33681273640")


def us_template_drip(seed: int = 404) -> World:
    """d. US: copy-paste templates with edits, one message per number, drip over two days."""
    b = Builder("us_template_drip", _doc(us_template_drip), seed, 60 * HOUR, start_hour=8.0)
    organic_background(b, plan="us", lang="en", per_day=380)
    template_drip(b, waves=((10 * HOUR, 1300), (28 * HOUR, 900), (40 * HOUR, 500)),
                  plan="us", lang="en", templates=TEMPLATES_EN, median_delay_s=2 * HOUR,
                  sigma=1.1)
    return b.finish(to="+13125550144")


def us_scripted_flood(seed: int = 505) -> World:
    """e. US: a script floods from a rotating pool of random virtual numbers, random suffixes."""
    b = Builder("us_scripted_flood", _doc(us_scripted_flood), seed, 30 * HOUR,
                start_hour=7.0)
    organic_background(b, plan="us", lang="en", per_day=520)
    scripted_flood(
        b, start=14 * HOUR, messages=38_000, new_number=b.numbers.us_number,
        bases=("Reply to this message", "Hey, are you there? Answer me",
               "This number costs you money for every reply", "Text me back"),
        concurrent=45, per_number=(12, 45), gap_s=(3.0, 9.0),
    )
    return b.finish(to="+14155550123")


def fr_mixed_press_raid(seed: int = 606) -> World:
    """f. France: the 8 pm news features the number, a forum raid piles on 45 minutes later."""
    b = Builder("fr_mixed_press_raid", _doc(fr_mixed_press_raid), seed, 48 * HOUR,
                start_hour=12.0)
    organic_background(b, plan="fr", lang="fr", per_day=280)
    press_surge(b, at=8 * HOUR + 5 * MINUTE, senders=3800, plan="fr", lang="fr",
                channels=CHANNELS_FR)
    press_surge(b, at=11 * HOUR + 40 * MINUTE, senders=600, plan="fr", lang="fr",
                channels=CHANNELS_FR, median_delay_s=5 * MINUTE)
    forum_raid_unique(b, posts=((8 * HOUR + 50 * MINUTE, 600), (24.5 * HOUR, 250)), plan="fr",
                      lang="fr", alpha=1.25, cap=400)
    template_drip(b, waves=((8 * HOUR + 55 * MINUTE, 700), (24.5 * HOUR, 300),
                            (30 * HOUR, 250)),
                  plan="fr", lang="fr", templates=TEMPLATES_FR, median_delay_s=25 * MINUTE,
                  sigma=0.9, two_shot=0.1)
    scripted_flood(
        b, start=13 * HOUR, messages=2800, new_number=b.numbers.fr_virtual,
        bases=("Réponds", "Alors ça coûte combien ?", "Encore un SMS pour toi"),
        concurrent=12, per_number=(10, 30), gap_s=(4.0, 12.0),
    )
    return b.finish(to="+33644117852")


def uk_slow_burn(seed: int = 707) -> World:
    """g. UK: a group chat keeps a low-rate raid going for five days, mixed into organic."""
    b = Builder("uk_slow_burn", _doc(uk_slow_burn), seed, 5 * DAY, start_hour=9.0)
    organic_background(b, plan="uk", lang="en", per_day=330)
    press_surge(b, at=2 * DAY + 8 * HOUR, senders=220, plan="uk", lang="en",
                channels=("local radio", "Radio 1"), median_delay_s=12 * MINUTE)
    slow_burn(b, participants=260, plan="uk", lang="en", templates=TEMPLATES_EN, days=5,
              alpha=1.3, cap=120, template_share=0.4)
    return b.finish(to="+447700900981")


def fr_quiet_week(seed: int = 808) -> World:
    """h. France: three ordinary days, organic traffic only (a control world)."""
    b = Builder("fr_quiet_week", _doc(fr_quiet_week), seed, 3 * DAY, start_hour=0.0)
    organic_background(b, plan="fr", lang="fr", per_day=450)
    return b.finish(to="+33699881204")


def _doc(fn: Callable[..., World]) -> str:
    return (fn.__doc__ or "").strip()


WORLDS: dict[str, Callable[[int], World]] = {
    fn.__name__: fn
    for fn in (uk_tv_surge, fr_viral_share, fr_forum_unique, us_template_drip,
               us_scripted_flood, fr_mixed_press_raid, uk_slow_burn, fr_quiet_week)
}

# Worlds with no raid line at all: the traps for a policy that sees raids everywhere.
RAID_FREE_WORLDS = frozenset({"uk_tv_surge", "fr_viral_share", "fr_quiet_week"})

DEFAULT_SEEDS: dict[str, int] = {
    "uk_tv_surge": 101, "fr_viral_share": 202, "fr_forum_unique": 303,
    "us_template_drip": 404, "us_scripted_flood": 505, "fr_mixed_press_raid": 606,
    "uk_slow_burn": 707, "fr_quiet_week": 808,
}


def build(name: str, seed: int | None = None) -> World:
    """Generate one world by name; the default seed is the benchmark's."""
    return WORLDS[name](DEFAULT_SEEDS[name] if seed is None else seed)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.heldout.generators",
        description="Write the held-out benchmark worlds as JSONL traces.",
    )
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=None, help="override every world's seed")
    parser.add_argument("--world", action="append", choices=sorted(WORLDS),
                        help="only this world (repeatable)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name in args.world or WORLDS:
        world = build(name, args.seed)
        path = world.write(args.outdir / f"{name}.jsonl")
        raid = sum(line.label == RAID for line in world.lines)
        print(f"{path}: {len(world.lines)} messages, {raid} raid, "
              f"{len(world.senders())} senders", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
