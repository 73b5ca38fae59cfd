"""Worlds as a hurried third party would write them: canned texts from a short list.

Not blind, unlike the red teams: written by the policy's authors after a finding. The
question was what a simple, independent trace generator would most likely do: draw each
genuine text from a short list of canned messages ("Salut c'est qui ?", "Bonjour, on m'a
donné ce numéro"...), let each person send 1 to 3 of them, drawn with replacement, and
paste raid templates with light mutations. So hundreds of unrelated people send the very
same texts, and some send the same text twice, or two texts sharing words, by chance.
Before the fix (``docs/policy.md``, "Repeating is what a raid does"), the defaults lost
up to a quarter of such genuine senders: their chance reuse of the list's phrases looked
like a raid's members reusing their memes.

Pure standard library and seeded: a world is a pure function of its seed.
``python -m tests.heldout.naive OUTDIR`` writes every world.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from functools import partial

from .redteam4 import LEGIT, RAID, World, write_all  # the same trace lines; World.write keeps order

DAY = 86_400.0
DAYS = 3

CANNED = [
    "Bonjour, on m'a donné ce numéro", "Salut c'est qui ?", "Bonsoir, qui est-ce ?",
    "Coucou on s'est vu hier", "Hello, c'est le numéro de Julie ?", "Bonjour",
    "Salut ça va ?", "C'est Marc, du bar", "Tu es qui ?", "On se voit quand ?",
    "Bonjour, je viens de voir le reportage", "Merci pour ce que vous faites",
    "Bravo pour l'initiative", "C'est une super idée", "Je soutiens à 100%",
]
MORE_CANNED = [
    *CANNED,
    "Je viens de voir le reportage", "Bravo !", "Merci pour votre action",
    "C'est génial ce que vous faites", "Bonjour, je vous ai vu à la télé", "Courage à vous",
    "Super initiative", "Merci", "Qui est à l'appareil ?", "Bonjour, c'est pour le rendez-vous",
    "On m'a dit de vous écrire", "Salut, c'est Paul", "Bonsoir, tu te souviens de moi ?",
    "Hey, c'est Thomas de la soirée", "Allô ?",
]
VIEWERS = [
    "Je viens de voir le reportage", "Bravo !", "Merci pour votre action",
    "C'est génial ce que vous faites", "Bonjour, je vous ai vu à la télé", "Courage à vous",
    "Super initiative", "Merci",
]
TEMPLATES = [
    "Tu vas payer chaque SMS sale féministe", "On va vous ruiner avec nos messages",
    "Raid du forum, vous allez fermer bientôt", "Ton numéro va exploser ce soir",
    "Spam spam spam jusqu'à la fermeture",
]
# a text put together from three short lists: opener, sentence, sign-off (512 texts)
OPENERS = ["Bonjour", "Salut", "Bonsoir", "Coucou", "Hello", "Bonjour à vous", "Salut à tous",
           "Hey"]
MIDDLES = ["on m'a donné ce numéro hier soir", "je ne sais pas qui est à l'appareil",
           "c'est bien le numéro de Julie", "je viens de voir votre reportage à la télé",
           "une amie m'a parlé de votre initiative", "je voulais savoir comment ça marche",
           "on s'est croisés au bar samedi", "je trouve votre action super importante"]
CLOSINGS = ["", "Merci", "Bonne soirée", "À bientôt", "Merci beaucoup", "Bonne journée", "😊",
            "Bises"]
SUFFIXES = ["!!", "😂", "lol", "mdr", "...", "🤡"]
WORDS = ["bonjour", "salut", "merci", "pour", "le", "la", "les", "un", "une", "de", "du",
         "des", "on", "nous", "vous", "tu", "je", "il", "elle", "voir", "vu", "hier",
         "soir", "demain", "numéro", "message", "soirée", "bar", "ami", "amie", "qui",
         "quoi", "quand", "pourquoi", "comment", "bien", "super", "top", "vraiment",
         "encore", "juste", "dire", "écrire", "répondre", "attendre", "toujours", "jamais",
         "ici", "là-bas", "ce", "cette", "cela", "avec", "sans", "chez"]


class _Maker:
    """One world under construction: its random source, numbers and lines."""

    def __init__(self, name: str, seed: int) -> None:
        self.rng = random.Random(f"{name}:{seed}")
        self.world = World(name)
        self.used: set[str] = set()

    def number(self) -> str:
        rng = self.rng
        while True:  # random French mobiles: no block of consecutive numbers
            number = f"+33{rng.choice('67')}{rng.randrange(10**8):08d}"
            if number not in self.used and not number.startswith("+3375"):
                self.used.add(number)
                return number

    def add(self, t: float, number: str, body: str, label: str) -> None:
        self.world.lines.append((t, number, body, label))

    def done(self) -> World:
        """The world, its lines in time order."""
        self.world.lines.sort()
        return self.world

    def people(self, count: int, texts: list[str] | None, *, most: int = 3,
               gap_s: float = 300.0, day_night: bool = False, combined: bool = False) -> None:
        """``count`` people over the days, each sending 1 to ``most`` texts drawn from
        ``texts`` with replacement (or put together from three lists, or made of random
        words), minutes apart."""
        rng = self.rng
        for _ in range(count):
            number = self.number()
            t = rng.uniform(0, DAYS * DAY)
            while day_night:  # fewer at night, most in the evening
                hour = t / 3600 % 24
                if rng.random() < (0.15 if hour < 7 else 1.0 if 17 <= hour <= 23 else 0.6):
                    break
                t = rng.uniform(0, DAYS * DAY)
            for _ in range(rng.randint(1, most)):
                body = (rng.choice(texts) if texts else self.combined() if combined
                        else self.sentence())
                self.add(t, number, body, LEGIT)
                t += rng.expovariate(1 / gap_s)

    def combined(self) -> str:
        rng = self.rng
        return f"{rng.choice(OPENERS)}, {rng.choice(MIDDLES)}. {rng.choice(CLOSINGS)}".strip()

    def sentence(self) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(3, 12))
        return " ".join(words).capitalize() + self.rng.choice([".", " ?", " !", ""])

    def mutate(self, text: str) -> str:
        draw = self.rng.random()
        if draw < 0.3:
            return f"{text} {self.rng.choice(SUFFIXES)}"
        if draw < 0.5:
            return text.upper()
        if draw < 0.6:
            return f"{text} {self.rng.randint(1, 999)}"
        return text


def organic_canned(seed: int = 1) -> World:
    """3,000 people over three days, 1-3 texts each from 15 canned messages. No raid."""
    maker = _Maker("organic_canned", seed)
    maker.people(3000, CANNED)
    return maker.done()


def organic_canned_day_night(seed: int = 1) -> World:
    """The same from 30 canned messages, evenings busiest, 10 minutes between texts."""
    maker = _Maker("organic_canned_day_night", seed)
    maker.people(3000, MORE_CANNED, gap_s=600.0, day_night=True)
    return maker.done()


def organic_words(seed: int = 1) -> World:
    """3,000 people writing random sentences from a small vocabulary. No raid."""
    maker = _Maker("organic_words", seed)
    maker.people(3000, None)
    return maker.done()


def organic_combined(seed: int = 1, *, most: int = 3, gap_s: float = 300.0,
                     name: str = "organic_combined") -> World:
    """3,000 people over three days, 1-3 texts each, every text put together from an
    opener, a sentence and a sign-off drawn from lists of 8 (512 texts in all). No raid."""
    maker = _Maker(name, seed)
    maker.people(3000, None, most=most, gap_s=gap_s, combined=True)
    return maker.done()


def organic_combined_slow(seed: int = 1) -> World:
    """The same, half an hour between a person's texts."""
    return organic_combined(seed, gap_s=1800.0, name="organic_combined_slow")


def organic_combined_chatty(seed: int = 1) -> World:
    """The same, 1 to 5 texts each."""
    return organic_combined(seed, most=5, name="organic_combined_chatty")


def surge_canned(seed: int = 1) -> World:
    """800 canned organic senders, then a TV surge: 3,000 viewers within the hour, each
    texting one of 8 canned messages, 30% of them two or three. No raid."""
    maker = _Maker("surge_canned", seed)
    maker.people(800, CANNED)
    rng = maker.rng
    for _ in range(3000):
        number, t = maker.number(), 1.8 * DAY + rng.expovariate(1 / 900)
        for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3)):
            maker.add(t, number, rng.choice(VIEWERS), LEGIT)
            t += rng.expovariate(1 / 120)
    return maker.done()


def same_text_everyone(seed: int = 1) -> World:
    """2,500 people all writing "Bonjour", once or twice. No raid."""
    maker = _Maker("same_text_everyone", seed)
    maker.people(2500, ["Bonjour"], most=2, gap_s=200.0)
    return maker.done()


def raid_on_canned(seed: int = 1) -> World:
    """2,000 canned organic senders; on day 2 a raid: 500 raiders paste one of 5 templates
    (Pareto counts, a minute apart, light mutations), 400 paste one once, 10 scripts send
    one 300 times, 5 s apart."""
    maker = _Maker("raid_on_canned", seed)
    maker.people(2000, CANNED)
    rng, t0 = maker.rng, 1.5 * DAY
    for _ in range(500):
        number, t = maker.number(), t0 + rng.expovariate(1 / 3600)
        template = rng.choice(TEMPLATES)
        for _ in range(min(200, int(rng.paretovariate(1.2)))):
            maker.add(t, number, maker.mutate(template), RAID)
            t += rng.expovariate(1 / 60)
    for _ in range(400):
        maker.add(t0 + rng.expovariate(1 / 7200), maker.number(),
                  maker.mutate(rng.choice(TEMPLATES)), RAID)
    for _ in range(10):
        number, t = maker.number(), t0 + rng.uniform(0, 3600)
        for _ in range(300):
            maker.add(t, number, rng.choice(TEMPLATES), RAID)
            t += 5.0
    return maker.done()


def two_shot_raid_on_canned(seed: int = 1) -> World:
    """2,000 canned organic senders; 600 raiders each paste a template twice, 1-6 h apart."""
    maker = _Maker("two_shot_raid_on_canned", seed)
    maker.people(2000, CANNED)
    rng = maker.rng
    for _ in range(600):
        number, t = maker.number(), 1.2 * DAY + rng.expovariate(1 / 7200)
        template = rng.choice(TEMPLATES)
        maker.add(t, number, maker.mutate(template), RAID)
        maker.add(t + rng.uniform(3600, 6 * 3600), number, maker.mutate(template), RAID)
    return maker.done()


def small_raid_on_canned(seed: int = 1) -> World:
    """1,500 canned organic senders; 40 raiders send 2-12 copies of one of 2 templates."""
    maker = _Maker("small_raid_on_canned", seed)
    maker.people(1500, CANNED)
    rng = maker.rng
    for _ in range(40):
        number, t = maker.number(), 1.5 * DAY + rng.expovariate(1 / 1800)
        template = rng.choice(TEMPLATES[:2])
        for _ in range(rng.randint(2, 12)):
            maker.add(t, number, maker.mutate(template), RAID)
            t += rng.expovariate(1 / 120)
    return maker.done()


def drip_on_canned(seed: int = 1) -> World:
    """2,000 canned organic senders; 1,500 raiders paste one template once each, spread
    over the three days (the drip the defaults do not catch: docs/policy.md)."""
    maker = _Maker("drip_on_canned", seed)
    maker.people(2000, CANNED)
    for _ in range(1500):
        maker.add(maker.rng.uniform(0, DAYS * DAY), maker.number(),
                  maker.mutate(maker.rng.choice(TEMPLATES)), RAID)
    return maker.done()


_MAKERS: dict[str, Callable[..., World]] = {
    f.__name__: f for f in (organic_canned, organic_canned_day_night, organic_words,
                            organic_combined, organic_combined_slow, organic_combined_chatty,
                            surge_canned, same_text_everyone, raid_on_canned,
                            two_shot_raid_on_canned, small_raid_on_canned, drip_on_canned)
}
# every world with seeds 1 and 2, the canned-text worlds with three more, the combined
# ones with one more
WORLDS: dict[str, Callable[[], World]] = {
    f"{name}_s{seed}": partial(make, seed)
    for name, make in _MAKERS.items()
    for seed in ((1, 2, 3, 4, 5) if "canned" in name else (1, 2, 3) if "combined" in name
                 else (1, 2))
}


def main(argv: list[str]) -> int:
    return write_all(WORLDS, "tests.heldout.naive", argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
