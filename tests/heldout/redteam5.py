"""Fifth red team: genuine traffic only, shaped by what phones, carriers and people do.

Written blind (no reading of the policy, of ``sim/traffic/``, of the scenarios or of the
other teams' generators). Every world here is genuine: no raid at all, every line labelled
``legit``. Each world is a few days of ordinary background traffic (people handed the
number as a brush-off, some writing back) plus one surge in which real people, their phones
or their carriers do something ordinary that a raid detector may take for a raid:

- text pasted from a social post, carrying invisible characters, smart quotes, NBSP and
  "bold" mathematical letters, in a few platform-specific variants; one stray zero-width
  character in a few of the copies; a hashtag copied from a caption with its U+200B;
- long texts split by the carrier into 2-4 separate SMS delivered seconds apart (sometimes
  out of order), and a long suggested text pasted and split the same way by thousands;
- the carrier delivering the same SMS twice, seconds or hours later;
- group chats in which one friend forwards a suggested text and the whole group sends it;
- people answering the auto-reply ("ok merci", "c'est qui ?") over the evening while
  newcomers open with the very same words;
- iPhones turning a reaction to the auto-reply into an SMS quoting it
  (``A aimé « ... »``);
- MMS with the text stripped (empty bodies) and emoji-only texts;
- one phone shared by a family; Québec TV at midnight Paris time (+1 numbers);
- a 3 am rerun; a surge of 20,000 people in two hours.

Each world is a pure function of its seed (``random.Random`` only, no clock, no Faker).
``WORLDS`` holds the fifteen behaviours, ``VARIANTS`` a plain control and sweep points (the
same behaviour with fewer people doing it).
``python -m tests.heldout.redteam5 OUTDIR`` writes every world as ``OUTDIR/NAME.jsonl``.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LEGIT = "legit"
RAID = "raid"
TO = "+33644649021"
OPT_OUT = frozenset({"stop", "arret", "arrêt", "unsubscribe", "stopall", "cancel", "end",
                     "quit", "desabonner", "désabonner", "start", "unstop"})
DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0
# The auto-reply as the simulator prints it (``results['reply']['text']``): iPhones quote it.
AUTO_REPLY = ("Bonjour. Ce numero ne repond pas a votre place: la personne qui vous l'a donne "
              "ne souhaitait pas vous donner le sien. Respectez son choix. Non, c'est non.")

Line = tuple[float, str, str, str]


@dataclass
class World:
    name: str
    description: str
    lines: list[Line] = field(default_factory=list)
    has_raid: bool = False

    def count(self, label: str) -> int:
        return sum(1 for line in self.lines if line[3] == label)

    def senders(self, label: str | None = None) -> set[str]:
        return {n for _, n, _, lab in self.lines if label is None or lab == label}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            for t, number, body, label in self.lines:
                record = {"t": t, "from": number, "to": TO, "body": body, "label": label}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return path


class Book:
    """Collects messages and hands out unique numbers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.msgs: list[tuple[float, int, str, str]] = []

    def fr_mobile(self) -> str:
        while True:
            lead = self.rng.choice("66667")
            rest = f"{self.rng.randrange(10**8):08d}"
            if lead == "7" and rest[0] in "59":  # +3375: virtual blocks; +3379: unassigned
                continue
            number = f"+33{lead}{rest}"
            if number not in self.used:
                self.used.add(number)
                return number

    def foreign(self, plan: str) -> str:
        while True:
            if plan == "be":
                number = f"+324{self.rng.choice('6789')}{self.rng.randrange(10**7):07d}"
            elif plan == "ch":
                number = f"+417{self.rng.choice('5789')}{self.rng.randrange(10**7):07d}"
            elif plan == "ca":
                area = self.rng.choice(["514", "438", "450", "579", "418", "581", "819", "873"])
                number = f"+1{area}{self.rng.randrange(2, 10)}{self.rng.randrange(10**6):06d}"
            else:
                raise ValueError(plan)
            if number not in self.used:
                self.used.add(number)
                return number

    def add(self, t: float, number: str, body: str) -> None:
        self.msgs.append((round(max(t, 0.0), 3), len(self.msgs), number, body))

    def world(self, name: str, description: str) -> World:
        ordered = sorted(self.msgs)
        return World(name, description, [(t, n, b, LEGIT) for t, _, n, b in ordered])


# ---------------------------------------------------------------- texts

NAMES = ["Julien", "Thomas", "Nicolas", "Maxime", "Kevin", "Romain", "Antoine", "Mehdi",
         "Karim", "Lucas", "Hugo", "Yanis", "Florian", "Sébastien", "Alexandre", "Jérémy",
         "Mathieu", "Quentin", "Bastien", "Rayan", "Dylan", "Loïc", "Cédric", "Vincent",
         "Benoît", "Adrien", "Samir", "Enzo", "Théo", "Paul"]
F_NAMES = ["Camille", "Léa", "Manon", "Chloé", "Sarah", "Inès", "Julie", "Emma", "Laura",
           "Pauline", "Marie", "Sophie", "Nadia", "Amandine", "Océane", "Clara", "Lucie",
           "Anaïs", "Yasmine", "Elodie", "Margaux", "Justine", "Aurélie", "Fatou", "Nina"]
TOWNS = ["Paris", "Lyon", "Marseille", "Lille", "Toulouse", "Nantes", "Rennes", "Bordeaux",
         "Montpellier", "Strasbourg", "Grenoble", "Dijon", "Nice", "Brest", "Tours",
         "Clermont", "Rouen", "Metz", "Angers", "Caen", "Nancy", "Limoges", "Amiens"]
PLACES = ["au bar", "à la soirée de Max", "au concert", "dans le métro", "au Macumba",
          "à la fac", "au festival", "à la salle", "chez Léo", "au resto", "à la plage",
          "au mariage de Kevin", "dans le train", "à la fête de la musique", "au boulot"]
WHEN = ["hier soir", "samedi", "vendredi soir", "tout à l'heure", "la semaine dernière",
        "ce midi", "dimanche", "l'autre soir", ""]


def brush_off(rng: random.Random) -> str:
    name, place, when = rng.choice(NAMES), rng.choice(PLACES), rng.choice(WHEN)
    forms = [
        f"Salut c'est {name}, on s'est vus {place} {when}",
        f"Coucou c'est {name} {place} 😉",
        f"Hey ! C'est {name}, tu te souviens ? {place} {when}",
        f"Bonsoir, c'est {name}. Ravi de t'avoir rencontrée {place}",
        f"Slt c {name} d {place.split()[-1]}",
        f"Salut toi, c'est {name} 😊 bien rentrée ?",
        f"Yo c'est {name}, alors on se le fait ce verre ?",
        f"Bonjour, c'est {name}, on a parlé {place} {when}, tu vas bien ?",
        f"Coucou ! {name} ici, le mec {place} 😄",
        f"Re c'est {name}, je t'avais dit que j'écrirais",
    ]
    return tidy(rng.choice(forms))


def brush_off_followup(rng: random.Random) -> str:
    return rng.choice([
        "??", "C'est quoi ce message ?", "Sérieux ?", "Ok j'ai compris", "Wow. Ok.",
        "Tu m'as donné un faux numéro ?", "C'est une blague ?", "Pfff", "Dommage",
        "Je voulais juste discuter", "Bon ben tant pis", "Haha bien joué", "Ah d'accord...",
        "T'aurais pu le dire en face", "Ok désolé", "Mdr je me suis fait avoir",
    ])


CHANNELS = ["France 2", "TF1", "M6", "France 3", "BFM", "Quotidien", "C à vous", "Arte",
            "LCI", "France Inter", "RTL", "Europe 1"]
PAPERS = ["Le Parisien", "20 Minutes", "Libé", "Ouest-France", "Le Monde", "Konbini",
          "Brut", "Twitter", "Insta", "Facebook", "TikTok", "Madmoizelle"]
OPENERS = ["Bonjour", "Bonsoir", "Salut", "Coucou", "Hello", "Bjr", "Bsr", "Slt", "Hey",
           "Bonsoir à vous", "Bonjour bonjour", ""]
CORE = [
    "je viens de voir le reportage sur {ch}",
    "je vous ai vus sur {ch}",
    "je teste le numéro vu à la télé",
    "c'est vrai que ce numéro répond tout seul ?",
    "super idée, je vais le donner à tous les lourds",
    "bravo pour l'initiative",
    "ça marche vraiment ?",
    "je l'ai vu dans {pa}",
    "qui a eu cette idée ? génial",
    "merci pour ce que vous faites",
    "je vais le partager à mes copines",
    "j'aurais aimé avoir ce numéro à 20 ans",
    "on m'a parlé de vous au boulot",
    "ma fille m'a montré ce numéro",
    "je le garde précieusement",
    "enfin un truc utile",
    "c'est pour voir ce que ça répond",
    "trop bien ce concept",
    "est-ce que c'est gratuit pour celle qui le donne ?",
    "je suis curieux de voir la réponse",
    "mon copain voulait tester",
    "on teste avec les collègues",
    "je l'ai noté dans mon téléphone",
    "c'est qui derrière ce numéro ?",
    "j'adore l'idée",
    "c'est une super initiative, continuez",
    "ça va en calmer plus d'un",
    "je viens de l'envoyer à ma sœur",
    "vu dans {pa}, je teste",
    "premier message pour voir",
]
CLOSERS = ["", "", "", " !", " !!", " 👏", " 😂", " 👍", " merci", " Merci !", " 💪",
           ". {fn}", " - {fn}, {to}", " ({to})", " bonne soirée", " 🙏", " ❤️", " bravo"]


def tidy(text: str) -> str:
    return " ".join(text.split())


def curious(rng: random.Random) -> str:
    """A viewer's own first text: opener + one or two ideas + closer, with typing noise."""
    parts = [rng.choice(OPENERS)]
    core = rng.choice(CORE)
    if rng.random() < 0.25:
        core = core + ", " + rng.choice(CORE)
    parts.append(core)
    text = ", ".join(p for p in parts if p) if parts[0] else core[0].upper() + core[1:]
    text += rng.choice(CLOSERS)
    text = text.format(ch=rng.choice(CHANNELS), pa=rng.choice(PAPERS), fn=rng.choice(F_NAMES),
                       to=rng.choice(TOWNS))
    roll = rng.random()
    if roll < 0.2:
        text = text.lower()
    elif roll < 0.27:
        text = text.replace("é", "e").replace("è", "e").replace("à", "a").replace("ç", "c")
    elif roll < 0.32 and len(text) > 8:
        i = rng.randrange(1, len(text) - 1)
        text = text[:i] + text[i + 1:]
    return tidy(text)


def curious_followup(rng: random.Random) -> str:
    return rng.choice([
        "Haha trop bien", "Génial merci", "Ok ça marche !", "Parfait 👍", "Top",
        "Merci pour la réponse", "J'adore la réponse", "Bien vu", "Excellent 😂",
        "Je vais le donner ce soir alors", "Et ça coûte combien ?", "Qui paie les SMS ?",
        "Vous êtes une asso ?", "Comment on vous aide ?", "Bravo encore",
    ])


# ---------------------------------------------------------------- shapes

def day_weight(t: float) -> float:
    """Hour-of-day activity: quiet at night, peaks at lunch and in the evening."""
    hour = (t % DAY) / HOUR
    lunch = 0.6 * math.exp(-((hour - 12.5) / 2.5) ** 2)
    return 0.08 + lunch + math.exp(-((hour - 21.5) / 2.2) ** 2)


def clock_time(rng: random.Random, start: float, end: float) -> float:
    """A time in [start, end) drawn with the hour-of-day profile (rejection sampling)."""
    while True:
        t = rng.uniform(start, end)
        if rng.random() < day_weight(t) / 1.1:
            return t


def surge_time(rng: random.Random, t0: float, rise: float, decay: float) -> float:
    """Arrival after a broadcast: a quick rise then an exponential decay."""
    return t0 + rng.expovariate(1 / rise) + rng.expovariate(1 / decay)


def gap(rng: random.Random, median: float, sigma: float = 0.8) -> float:
    return median * math.exp(rng.gauss(0, sigma))


def background(book: Book, days: float, per_day: int) -> None:
    """Ordinary traffic: brush-offs (some write back), curious people who heard of it."""
    rng = book.rng
    for _ in range(int(days * per_day)):
        t = clock_time(rng, 0, days * DAY)
        number = book.fr_mobile()
        if rng.random() < 0.7:
            book.add(t, number, brush_off(rng))
            for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
                t += gap(rng, 4 * MINUTE)
                book.add(t, number, brush_off_followup(rng))
        else:
            book.add(t, number, curious(rng))
            if rng.random() < 0.25:
                book.add(t + gap(rng, 3 * MINUTE), number, curious_followup(rng))


def viewer(book: Book, t: float, number: str | None = None, body: str | None = None,
           follow: float = 0.2) -> str:
    """One ordinary viewer: a first text, sometimes a follow-up after the auto-reply."""
    rng = book.rng
    number = number or book.fr_mobile()
    book.add(t, number, body if body is not None else curious(rng))
    if rng.random() < follow:
        book.add(t + 30 + gap(rng, 3 * MINUTE), number, curious_followup(rng))
    return number


def base(seed: int, days: float = 3.0, per_day: int = 180) -> Book:
    book = Book(random.Random(f"redteam5:{seed}"))
    background(book, days, per_day)
    return book


# ---------------------------------------------------------------- unicode artefacts

ZW = ["\u200b", "\ufeff", "\u2060", "\u200e", "\u200f", "\u200c", "\u200d"]


def bold(text: str) -> str:
    """Mathematical bold letters, as "fancy text" generators on Instagram make them."""
    out = []
    for ch in text:
        if "A" <= ch <= "Z":
            out.append(chr(0x1D400 + ord(ch) - ord("A")))
        elif "a" <= ch <= "z":
            out.append(chr(0x1D41A + ord(ch) - ord("a")))
        else:
            out.append(ch)
    return "".join(out)


def smart(text: str) -> str:
    return text.replace("'", "\u2019").replace(" !", "\u00a0!").replace(" ?", "\u00a0?")


def platform_variant(rng: random.Random, text: str, platform: str) -> str:
    """What a copy from one platform's app carries along with the text."""
    if platform == "insta":      # fancy bold first words, ZWSP between lines
        words = text.split(" ")
        head = bold(" ".join(words[:3]))
        return smart(head + "\u200b " + " ".join(words[3:]))
    if platform == "tiktok":     # BOM and word joiners from the caption editor
        return "\ufeff" + smart(text).replace(" ", "\u2060 ", 2)
    if platform == "twitter":    # direction marks around the quote, NBSP
        return "\u200e« " + smart(text) + " »\u200f"
    if platform == "facebook":   # plain copy, trailing NBSP and emoji
        return text + "\u00a0✊"
    if platform == "whatsapp":   # bold markers kept as asterisks
        return "*" + text + "*"
    raise ValueError(platform)


def sprinkle(rng: random.Random, text: str, chance: float = 0.5,
             chars: tuple[str, ...] = tuple(ZW)) -> str:
    """A user's own stray invisible character (keyboard suggestion, cursor slip)."""
    if rng.random() >= chance:
        return text
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(chars) + text[i:]


# ---------------------------------------------------------------- worlds

PRIME = 2 * DAY + 20 * HOUR + 45 * MINUTE   # Wednesday 20:45 (t = 0 is Monday 00:00)


def press_control(seed: int = 1, viewers: int = 3500) -> World:
    """Control: a plain TV surge, own texts only."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        viewer(book, surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE))
    return book.world("press_control", "control: 3 days of background and a plain TV surge")


SLOGANS = [
    "Non c'est non. Mon numéro, c'est moi qui le donne.",
    "Je soutiens le numéro anti-relous ! Respectez les femmes.",
    "Message reçu : je partage pour que ça s'arrête.",
    "Stop au harcèlement de rue, merci pour ce numéro !",
]
PLATFORMS = ["insta", "tiktok", "twitter", "facebook", "whatsapp"]


def paste_invisible(seed: int = 1, viewers: int = 4000, share: float = 0.35,
                    again: float = 0.08, artefacts: bool = True,
                    platforms: tuple[str, ...] = tuple(PLATFORMS), stray: float = 0.5,
                    chars: tuple[str, ...] = tuple(ZW)) -> World:
    """A social post suggests texts of support; a share paste one, with the platform's
    invisible characters, smart quotes, NBSP and bold letters; 8% send it again the next
    evening when the post comes back in their feed."""
    book = base(seed)
    rng = book.rng
    t0 = PRIME - 20 * HOUR  # Wednesday 00:45: posted overnight, shared all day
    for _ in range(viewers):
        t = clock_time(rng, t0, t0 + 2 * DAY) if rng.random() < 0.6 else \
            surge_time(rng, t0 + 19 * HOUR, 20 * MINUTE, 90 * MINUTE)
        if rng.random() < share:
            body = rng.choice(SLOGANS)
            if artefacts:
                body = platform_variant(rng, body, rng.choice(platforms))
                body = sprinkle(rng, body, stray, chars)
            number = viewer(book, t, body=body, follow=0.1)
            if rng.random() < again:
                book.add(t + 20 * HOUR + gap(rng, 2 * HOUR, 0.4), number, body)
        else:
            viewer(book, t)
    return book.world("paste_invisible",
                      f"social post pasted by {share:.0%} with invisible characters, some twice")


def split_segments(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def needs_ucs2(text: str) -> bool:
    gsm = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
              "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
    return any(ch not in gsm for ch in text)


STORY = [
    "Il y a deux ans un type m'a suivie du métro jusqu'à chez moi parce que je n'avais pas "
    "voulu lui donner mon numéro.",
    "J'ai donné un faux numéro des dizaines de fois, et à chaque fois j'avais peur qu'il "
    "appelle devant moi pour vérifier.",
    "Au boulot un client insistait tous les jours, j'ai fini par changer de poste.",
    "Ma fille de 16 ans se fait aborder à la sortie du lycée par des adultes, c'est "
    "insupportable.",
    "Je suis un homme et je trouve ça très bien, on devrait apprendre à nos fils à accepter "
    "un non.",
    "Le pire c'est quand ils deviennent insultants après le refus, ça arrive tout le temps.",
    "Je vais imprimer le numéro et le mettre dans mon sac, comme ça je n'aurai plus à mentir.",
    "Quand j'étais serveuse je recevais des messages de clients qui avaient trouvé mon "
    "numéro je ne sais comment.",
    "Merci du fond du cœur pour ce que vous faites, vraiment, ça fait du bien de se sentir "
    "soutenue.",
    "On en parlait justement avec mes amies hier soir, on a toutes une histoire comme ça.",
]


def long_text(rng: random.Random) -> str:
    parts = [rng.choice(["Bonjour,", "Bonsoir,", "Bonsoir à toute l'équipe,", "Salut,"])]
    parts += rng.sample(STORY, rng.randint(2, 3))
    parts.append(rng.choice(["Bravo.", "Continuez !", "Merci 🙏", f"{rng.choice(F_NAMES)}",
                             "Courage à toutes.", ""]))
    text = tidy(" ".join(parts))
    return text.lower() if rng.random() < 0.15 else text


def deliver_split(book: Book, t: float, number: str, text: str) -> None:
    """The carrier splits a long SMS and the gateway delivers the parts as separate SMS,
    0.3-4 s apart; one time in ten the parts arrive out of order."""
    rng = book.rng
    size = 67 if needs_ucs2(text) else 153
    parts = split_segments(text, size)
    offsets = sorted(rng.uniform(0.3, 4.0) * i for i in range(len(parts)))
    if len(parts) > 1 and rng.random() < 0.1:
        rng.shuffle(offsets)
    for part, dt in zip(parts, offsets, strict=True):
        book.add(t + dt, number, part)


def carrier_split(seed: int = 1, viewers: int = 3500, share: float = 0.35) -> World:
    """A debate show: a share of viewers write their story, 2-5 segments each, which the
    carrier delivers as separate SMS seconds apart."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 6 * MINUTE, 40 * MINUTE)
        if rng.random() < share:
            number = book.fr_mobile()
            deliver_split(book, t, number, long_text(rng))
        else:
            viewer(book, t)
    return book.world("carrier_split", f"{share:.0%} of viewers' long texts split by the carrier")


SUGGESTED = ("Bonjour, je soutiens le numéro anti-relous. Aucune femme ne devrait avoir à "
             "donner un faux numéro pour qu'on la laisse tranquille. Non, c'est non, et ce "
             "n'est pas à nous de nous justifier. Je partage ce message pour que ça change.")


def split_suggested(seed: int = 1, viewers: int = 4000, share: float = 0.3) -> World:
    """A long suggested text (257 characters) goes round: a share paste it whole, the
    carrier splits it into two SMS, so thousands send the same two parts seconds apart."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 10 * MINUTE, 70 * MINUTE)
        if rng.random() < share:
            text = SUGGESTED if rng.random() < 0.7 else SUGGESTED.replace("'", "\u2019")
            deliver_split(book, t, book.fr_mobile(), text)
        else:
            viewer(book, t)
    return book.world("split_suggested",
                      f"{share:.0%} paste a 257-character text the carrier splits in two")


def carrier_duplicates(seed: int = 1, viewers: int = 3500, share: float = 0.12) -> World:
    """The carrier delivers a share of SMS twice (new message id): half a few seconds
    later, half hours later when the sender's phone reconnects and resends."""
    book = base(seed)
    rng = book.rng
    common = ["Test", "test", "Bonsoir", "Coucou", "Bonjour", "Ça marche ?", "Salut", "Allo ?"]
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE)
        body = rng.choice(common) if rng.random() < 0.15 else curious(rng)
        number = viewer(book, t, body=body)
        if rng.random() < share:
            late = rng.random() < 0.5
            delay = gap(rng, 3 * HOUR, 0.7) if late else rng.uniform(1, 20)
            book.add(t + delay, number, body)
    return book.world("carrier_duplicates", f"carrier redelivers {share:.0%} of first texts")


FORWARD_TEXTS = [
    "Non c'est non 💪", "Laisse-la tranquille", "Respecte son choix", "Elle a dit non",
    "Je soutiens 💜", "Solidarité avec toutes les femmes", "Bravo pour ce numéro",
    "On est toutes avec vous", "Plus jamais de faux numéros", "Merci pour elles",
    "Le consentement c'est simple", "Stop aux relous 😤", "Girl power ✊", "Vive les filles",
    "Team anti-relous", "Bien joué les filles", "Je partage !", "C'est génial ce truc",
    "Test du numéro anti-relous", "Hello depuis le groupe des copines 😂",
]


def group_chats(seed: int = 1, groups: int = 320, viewers: int = 2500,
                own_after: float = 0.2, pool: int = len(FORWARD_TEXTS),
                retyped: float = 0.15, stray: float = 0.5) -> World:
    """One friend in a group chat forwards the number with a text to send; the group's
    members (4-15) each send that very text within minutes; one in five then writes
    something of their own. Groups pick from a few popular texts."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        viewer(book, surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE))
    for _ in range(groups):
        t_fwd = clock_time(rng, PRIME - 6 * HOUR, PRIME + 30 * HOUR)
        text = rng.choice(FORWARD_TEXTS[:pool])
        for _ in range(rng.randint(4, 15)):
            t = t_fwd + gap(rng, 6 * MINUTE, 1.0)
            body = sprinkle(rng, text.lower(), stray) if rng.random() < retyped else text
            number = viewer(book, t, body=body, follow=0.0)
            if rng.random() < own_after:
                book.add(t + gap(rng, 5 * MINUTE), number, curious_followup(rng))
    return book.world("group_chats", f"{groups} group chats each send one forwarded text")


CHATTER = ["ok merci", "Ok merci", "c'est qui ?", "C'est qui ?", "???", "mdr", "Qui êtes-vous ?",
           "Ah ok", "d'accord", "Merci", "lol", "Hein ?", "Quoi ?", "C'est qui svp"]


def autoreply_chatter(seed: int = 1, viewers: int = 3500, share: float = 0.4) -> World:
    """Evening of a prank-share: a share answer the auto-reply again and again over the
    evening with short stock replies; newcomers given the number as a prank ("texte ce
    numéro") open with the same words ("C'est qui ?", "Salut")."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME - 2 * HOUR, 20 * MINUTE, 90 * MINUTE)
        first = rng.choice([*CHATTER, "Salut", "Coucou", "Bonsoir"]) if rng.random() < 0.3 \
            else curious(rng)
        number = viewer(book, t, body=first, follow=0.0)
        if rng.random() < share:
            for _ in range(rng.randint(1, 5)):
                t += gap(rng, 25 * MINUTE, 1.0)
                book.add(t, number, rng.choice(CHATTER))
    return book.world("autoreply_chatter",
                      f"{share:.0%} answer the auto-reply 1-5 times with stock replies")


TAPBACKS = ["A aimé « {r} »", "A adoré « {r} »", "A ri de « {r} »", "A mis en évidence « {r} »",
            "A réagi avec 👍 à « {r} »", "A réagi avec 😂 à « {r} »", "Liked “{r}”",
            "Loved “{r}”", "Laughed at “{r}”"]


def tapbacks(seed: int = 1, viewers: int = 4000, share: float = 0.25) -> World:
    """iPhones send a reaction to an SMS as a text quoting it: a share of viewers react to
    the auto-reply, all with the same long quote, seconds to minutes after it arrives."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE)
        number = viewer(book, t, follow=0.1)
        if rng.random() < share:
            weights = [40, 25, 20, 3, 4, 3, 3, 1, 1]
            form = rng.choices(TAPBACKS, weights)[0]
            book.add(t + 15 + gap(rng, 90.0, 1.0), number, form.format(r=AUTO_REPLY))
    return book.world("tapbacks",
                      f"{share:.0%} of viewers' iPhones send a reaction quoting the reply")


def empty_media(seed: int = 1, viewers: int = 3500, share: float = 0.15) -> World:
    """A poster on TV: a share photograph it and send the photo; the MMS reaches the SMS
    number with its text stripped (an empty body), often followed by a text; others send
    emoji only."""
    book = base(seed)
    rng = book.rng
    emoji = ["👍", "❤️", "👏", "💪", "😂", "🙏", "✊", "👍👍", "💜", "🔥"]
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE)
        roll = rng.random()
        if roll < share:
            number = viewer(book, t, body="", follow=0.0)
            if rng.random() < 0.5:
                book.add(t + gap(rng, 40.0), number, curious(rng))
            if rng.random() < 0.2:
                book.add(t + gap(rng, 5.0), number, "")  # second photo
        elif roll < share + 0.08:
            viewer(book, t, body=rng.choice(emoji), follow=0.3)
        else:
            viewer(book, t)
    return book.world("empty_media", f"{share:.0%} send a photo (empty body), 8% emoji only")


FAMILY = ["C'est sa sœur, je teste aussi", "Coucou c'est la maman, bravo !",
          "Moi c'est le petit frère mdr", "C'est le papa, excellente initiative",
          "Sa fille ici, trop bien", "C'est encore nous, la cousine cette fois",
          "Re, c'est la grand-mère, je trouve ça formidable", "C'est Mamie 😘 bravo les filles"]


def family_phone(seed: int = 1, viewers: int = 3000, share: float = 0.25) -> World:
    """A share of viewers are families on one phone: 2-5 members text one after the other
    over the evening, each their own message, from the same number."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE)
        number = viewer(book, t, follow=0.05)
        if rng.random() < share:
            for _ in range(rng.randint(1, 4)):
                t += gap(rng, 8 * MINUTE, 1.0)
                book.add(t, number, rng.choice(FAMILY) if rng.random() < 0.6 else curious(rng))
    return book.world("family_phone", f"{share:.0%} of numbers are shared by a family")


QC = ["Allo, j'ai vu ça à TVA, c'est ben bon comme idée", "Bonsoir de Montréal !",
      "Salut de Québec, on devrait avoir ça icitte",
      "Allô, c'est tu vrai que ça répond tout seul ?",
      "Bravo la France, on veut la même affaire au Québec", "Hi, saw this on CTV, love it",
      "C'est vraiment cool, je l'envoie à mes chums de filles", "Test de Sherbrooke",
      "Allo! Je teste ça", "Ben voyons, c'est génial", "Bonjour, est-ce que ça marche au Canada?",
      "Je l'ai vu au Téléjournal", "Hello from Ottawa, great idea", "Allô allô",
      "Wow, super initiative, merci", "C'est malade cette idée-là"]


def quebec_night(seed: int = 1, viewers: int = 2500) -> World:
    """Québec's 18:00 news (00:00 in Paris) runs the story: +1 numbers from 514/418/...
    text between midnight and 3 am Paris time; a Belgian and Swiss tail the next day."""
    book = base(seed)
    rng = book.rng
    t0 = 3 * DAY  # Thursday 00:00 Paris = Wednesday 18:00 Montréal
    for _ in range(viewers):
        t = surge_time(rng, t0 + 10 * MINUTE, 5 * MINUTE, 35 * MINUTE)
        number = book.foreign("ca")
        body = tidy(rng.choice(QC) + rng.choice(["", "", " !", " 😂", " 👍", " merci"]))
        if rng.random() < 0.2:
            body = body.lower()
        viewer(book, t, number=number, body=body, follow=0.15)
    for _ in range(300):
        plan = rng.choice(["be", "ch"])
        viewer(book, clock_time(rng, t0 + 8 * HOUR, t0 + 2 * DAY), number=book.foreign(plan))
    return book.world("quebec_night", "Québec TV at midnight Paris time: +1 numbers at night")


def night_rerun(seed: int = 1, viewers: int = 3000, rerun: int = 700) -> World:
    """The report airs at 20:45 and is rerun at 03:10: insomniacs, night-shift workers and
    students text between 3 and 5 am, many with the very words of the evening's viewers."""
    book = base(seed)
    rng = book.rng
    evening: list[str] = []
    for _ in range(viewers):
        body = curious(rng)
        evening.append(body)
        viewer(book, surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE), body=body)
    t0 = PRIME + 6 * HOUR + 25 * MINUTE   # 03:10
    for _ in range(rerun):
        t = surge_time(rng, t0, 4 * MINUTE, 25 * MINUTE)
        body = rng.choice(evening) if rng.random() < 0.3 else curious(rng)
        if rng.random() < 0.3:
            body = tidy(body + rng.choice([" (rediff)", " insomnie 😅", " de garde cette nuit"]))
        viewer(book, t, body=body)
    return book.world("night_rerun", f"TV report then its 03:10 rerun ({rerun} night viewers)")


def mega_surge(seed: int = 1, viewers: int = 20_000) -> World:
    """Twenty thousand people in two hours: the report on the 20:00 news of both main
    channels at once, then the social networks; the usual short openers are common."""
    book = base(seed, per_day=200)
    rng = book.rng
    shorts = ["Test", "test", "Bonsoir", "Coucou", "Bonjour", "Salut", "Allo ?", "Ça marche ?",
              "Hello", "Coucou 👋"]
    for _ in range(viewers):
        t = surge_time(rng, PRIME - 45 * MINUTE, 8 * MINUTE, 35 * MINUTE)
        if t > PRIME + 2 * HOUR + 15 * MINUTE:       # stragglers spread over the night
            t = PRIME + 2 * HOUR + rng.expovariate(1 / (3 * HOUR))
        body = rng.choice(shorts) if rng.random() < 0.12 else curious(rng)
        viewer(book, t, body=body, follow=0.12)
    return book.world("mega_surge", f"{viewers} people in two hours")


def one_zero_width(seed: int = 1, copies: int = 1) -> World:
    """The plain Facebook paste (no artefact at all), except for ``copies`` pasted lines
    that carry one U+200B somewhere, as a caption copied with its spacing character does."""
    world = paste_invisible(seed=seed, again=0.0, platforms=("facebook",), stray=0.0)
    rng = random.Random(f"redteam5:one_zero_width:{seed}")
    pasted = {platform_variant(rng, slogan, "facebook") for slogan in SLOGANS}
    where = [i for i, line in enumerate(world.lines) if line[2] in pasted]
    for i in sorted(rng.sample(where, copies)):
        t, number, body, label = world.lines[i]
        j = rng.randrange(1, len(body))
        world.lines[i] = (t, number, body[:j] + "\u200b" + body[j:], label)
    world.description = f"a pasted slogan, {copies} copies with one U+200B"
    return world


HASHTAGS = ["#NumeroAntiRelous", "#numéroantirelous", "#NonCestNon", "#antirelous",
            "#harcèlementderue"]


def caption_hashtag(seed: int = 1, viewers: int = 3500, share: float = 0.1) -> World:
    """An Instagram reel: captions use U+200B to keep their blank lines, so a share of
    viewers who copy the caption's hashtag into their own text carry it along."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 10 * MINUTE, 60 * MINUTE)
        body = curious(rng)
        if rng.random() < share:
            body = body + " \u200b" + rng.choice(HASHTAGS)
        viewer(book, t, body=body)
    return book.world("caption_hashtag",
                      f"{share:.0%} of own texts end with a hashtag copied with a U+200B")


SIGNATURES = ["Envoyé de mon iPhone", "Envoyé depuis mon smartphone Samsung Galaxy",
              "Envoyé depuis Yahoo Mail pour Android", "-- Envoyé via SMS Orange",
              "Sent from my iPhone", "Envoyé depuis mon mobile Huawei"]


def signatures(seed: int = 1, viewers: int = 3500, share: float = 0.2) -> World:
    """A share of phones (and e-mail-to-SMS apps) append a fixed signature line, so
    hundreds of different texts end with the very same words."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE)
        body = curious(rng)
        if rng.random() < share:
            body = body + "\n\n" + rng.choice(SIGNATURES)
        viewer(book, t, body=body)
    return book.world("signatures", f"{share:.0%} of phones append a fixed signature")


def stop_start(seed: int = 1, viewers: int = 3500, share: float = 0.06) -> World:
    """After the reply a share text STOP (it 'costs them'), then START minutes or hours
    later, then a text of their own again; a few send Stop twice."""
    book = base(seed)
    rng = book.rng
    for _ in range(viewers):
        t = surge_time(rng, PRIME, 4 * MINUTE, 30 * MINUTE)
        number = viewer(book, t, follow=0.1)
        if rng.random() < share:
            t += 60 + gap(rng, 4 * MINUTE)
            book.add(t, number, rng.choice(["STOP", "Stop", "stop", "STOP SMS", "Arret"]))
            if rng.random() < 0.2:
                t += gap(rng, 2 * MINUTE)
                book.add(t, number, "STOP")
            t += gap(rng, 40 * MINUTE, 1.2)
            book.add(t, number, rng.choice(["START", "Start", "UNSTOP", "start"]))
            book.add(t + gap(rng, 3 * MINUTE), number, curious(rng))
    return book.world("stop_start", f"{share:.0%} send STOP, then START, then text again")


def _named(name: str, make: Callable[..., World], **settings: object) -> Callable[[], World]:
    """A world from a generator with some settings, under its own name."""

    def build(seed: int = 1) -> World:
        world = make(seed=seed, **settings)
        world.name = name
        return world

    build.__doc__ = make.__doc__
    return build


ZW_STRAY = ("\u200b", "\ufeff", "\u2060")
# Fifteen behaviours, each at the share measured in the report.
WORLDS: dict[str, Callable[[], World]] = {
    "paste_invisible": _named("paste_invisible", paste_invisible),
    # the same post copied from Facebook, clean; 1% of copies carry one stray U+200B,
    # U+FEFF or U+2060 somewhere (a cursor slip on a caption, a keyboard's suggestion)
    "stray_zero_width": _named("stray_zero_width", paste_invisible, again=0.0,
                               platforms=("facebook",), stray=0.01, chars=ZW_STRAY),
    "caption_hashtag": _named("caption_hashtag", caption_hashtag),
    "group_chats": _named("group_chats", group_chats),
    "carrier_split": _named("carrier_split", carrier_split),
    "split_suggested": _named("split_suggested", split_suggested),
    "carrier_duplicates": _named("carrier_duplicates", carrier_duplicates),
    "autoreply_chatter": _named("autoreply_chatter", autoreply_chatter),
    "tapbacks": _named("tapbacks", tapbacks),
    "empty_media": _named("empty_media", empty_media),
    "family_phone": _named("family_phone", family_phone),
    "quebec_night": _named("quebec_night", quebec_night),
    "night_rerun": _named("night_rerun", night_rerun),
    "mega_surge": _named("mega_surge", mega_surge),
    "stop_start": _named("stop_start", stop_start),
}
# The control, and sweep points: the losing behaviours with fewer people doing them.
VARIANTS: dict[str, Callable[[], World]] = {
    "press_control": _named("press_control", press_control),
    "one_zero_width": _named("one_zero_width", one_zero_width),
    "stray_zero_width_0p2": _named("stray_zero_width_0p2", paste_invisible, again=0.0,
                                   platforms=("facebook",), stray=0.002, chars=ZW_STRAY),
    "stray_zero_width_0p5": _named("stray_zero_width_0p5", paste_invisible, again=0.0,
                                   platforms=("facebook",), stray=0.005, chars=ZW_STRAY),
    "insta_paste_5pct": _named("insta_paste_5pct", paste_invisible, again=0.0,
                               platforms=("insta",), stray=0.0, share=0.05),
    "caption_hashtag_2pct": _named("caption_hashtag_2pct", caption_hashtag, share=0.02),
    "caption_hashtag_5pct": _named("caption_hashtag_5pct", caption_hashtag, share=0.05),
    "group_chats_80": _named("group_chats_80", group_chats, groups=80),
    "group_chats_160": _named("group_chats_160", group_chats, groups=160),
    "group_chats_no_zero_width": _named("group_chats_no_zero_width", group_chats, stray=0.0),
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):  # --help is no directory
        print("usage: python -m tests.heldout.redteam5 OUTDIR", file=sys.stderr)
        return 0 if argv in (["-h"], ["--help"]) else 2
    out = Path(argv[0])
    for name, make in {**WORLDS, **VARIANTS}.items():
        world = make()
        world.write(out / f"{name}.jsonl")
        print(f"{name}: {len(world.lines)} lines, {len(world.senders(LEGIT))} senders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
