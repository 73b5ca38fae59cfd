"""Message texts: French, varied, cheap to draw.

Faker (fr_FR, seeded per scenario) fills pools of first names, towns and word-salad
sentences once; every message is then drawn from those pools and small grammars with the
source's own ``random.Random``, so a whole scenario costs a few list look-ups per message.

Legit people write many different things; the raid copies a handful of forum templates with
small mutations (typos, case, emoji, added words, numbers), and some raiders write their own
insults. The insults stay of the "relou / féminazie / lol" kind: the point is the cost, not
the words.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# ----------------------------------------------------------------------------- pools


@dataclass(frozen=True)
class Pools:
    first_names: tuple[str, ...]
    towns: tuple[str, ...]
    sentences: tuple[str, ...]


@lru_cache(maxsize=1)
def _faker() -> Any:
    from faker import Faker  # slow to import and build: once per process

    return Faker("fr_FR")


@lru_cache(maxsize=8)
def build_pools(seed: int) -> Pools:
    """Pools of names, towns and sentences for one scenario seed (memoised: they are pure)."""
    fake = _faker()
    fake.seed_instance(seed)
    names = tuple(dict.fromkeys(fake.first_name() for _ in range(600)))
    towns = tuple(dict.fromkeys(fake.city() for _ in range(300)))
    sentences = tuple(fake.sentence(nb_words=6 + i % 8) for i in range(1500))
    return Pools(names, towns, sentences)


def pick(rng: random.Random, options: Sequence[str]) -> str:
    return options[int(rng.random() * len(options))]


_NO_ACCENTS = str.maketrans("éèêëàâùûôîïç", "eeeeaauuoiic")


def casual(rng: random.Random, text: str) -> str:
    """How people type on a phone: often no accents, sometimes all lower case."""
    roll = rng.random()
    if roll < 0.35:
        text = text.translate(_NO_ACCENTS)
    if rng.random() < 0.25:
        text = text.lower()
    if rng.random() < 0.15:
        text = text.rstrip(" ?!.")
    return text


# ----------------------------------------------------------------------------- legit

_GREETINGS = ("Salut", "Coucou", "Bonsoir", "Hello", "Slt", "Cc", "Hey", "Bonjour", "Re",
              "Yo", "Bonsoir bonsoir", "Coucou toi", "Hello hello")
_INTRODUCTIONS = (
    "c'est {name}", "c'est {name} de ce soir", "c'est moi {name}", "c'est {name} du bar",
    "c'est {name}, on s'est vus à {place}", "c'est le gars du métro", "c'est {name} de la "
    "soirée chez {other}", "c'est {name} le pote de {other}", "c'est {name} du concert",
    "c'est {name} de {town}", "on s'est croisés à {place}", "c'est {name} (le grand brun)",
    "c'est {name}, tu m'as donné ton numéro tout à l'heure", "",
)
_PLACES = ("la soirée", "la fac", "la salle de sport", "la terrasse", "la fête de {other}",
           "l'arrêt de bus", "la boulangerie", "la gare", "la piscine", "l'anniversaire de "
           "{other}", "la manif", "la file du cinéma", "la laverie")
_QUESTIONS = (
    "ça va ?", "tu es bien rentrée ?", "t'as passé une bonne soirée ?", "on se voit quand ?",
    "tu fais quoi ce week-end ?", "j'ai adoré te parler", "tu m'avais dit de t'écrire",
    "on boit un verre demain ?", "tu es libre jeudi ?", "t'es sur snap ?", "réponds stp",
    "je pensais à toi", "j'espère que c'est le bon numéro", "tu te souviens de moi ?",
    "tu m'as pas dit ton nom de famille", "on se refait ça quand tu veux", "t'es où ?",
    "envoie une photo", "pourquoi tu réponds pas ?", "je passe te chercher à 20h ?",
    "on va au ciné samedi ?", "c'était sympa hier", "tu bosses demain ?",
)
_CURIOUS = (
    "Test", "test test", "C'est le numéro anti-relous ?", "Une amie m'a parlé de ce numéro, "
    "je teste", "Bravo pour l'initiative !", "Est-ce que ça marche vraiment ?",
    "Je veux voir la réponse automatique", "Je teste le numéro", "Super idée, je le donnerai "
    "au prochain lourd", "C'est pour tester", "J'ai vu ça sur Twitter, génial",
    "Comment on fait pour soutenir le projet ?", "Ça coûte combien ce service ?",
    "Qui a eu cette idée ? Merci", "Ma coloc m'a donné ce numéro en rigolant",
    "Je l'ai partagé à toutes mes copines", "Est-ce que le numéro marche aussi pour les "
    "hommes harcelés ?", "C'est gratuit pour moi d'envoyer un SMS ici ?",
    "J'ai lu l'article dans {media}, je teste", "Une collègue m'a donné ce 06, c'est quoi ?",
)
_MEDIA = ("Libé", "le Parisien", "Konbini", "Le Monde", "20 Minutes", "Madmoizelle",
          "Le HuffPost", "Brut", "Twitter", "Facebook", "Insta")
_REACTIONS = (
    "Haha bien joué", "Ok j'ai compris", "Sérieux ?", "Pff", "Donc c'était un faux numéro ?",
    "Dommage...", "Pas drôle", "Message reçu", "Merci pour la réponse", "Génial",
    "Lol", "Je comprends, désolé", "Tu aurais pu juste dire non", "Qui est derrière ce "
    "numéro ?", "C'est un robot ?", "Bien vu", "Ah d'accord...", "Trop fort", "Je me sens "
    "bête là", "Vous répondez à tout le monde ?", "Et si je veux vraiment la revoir ?",
    "Ok ok je n'insiste pas", "C'est qui {name} alors ?", "Je vais le donner à mes potes",
)
_SMILEYS = (" :)", " ;)", " 😉", " 😊", " 😘", " 🙂", " 😁", " 😅", " 👍", " 😂", " 🤔")


def smiley(rng: random.Random, chance: float = 0.3) -> str:
    """A trailing smiley, sometimes: an emoji also makes the message UCS-2."""
    return pick(rng, _SMILEYS) if rng.random() < chance else ""


def _fill(rng: random.Random, pools: Pools, template: str) -> str:
    if "{" not in template:
        return template
    return template.format(
        name=pick(rng, pools.first_names), other=pick(rng, pools.first_names),
        town=pick(rng, pools.towns), place=_fill(rng, pools, pick(rng, _PLACES)),
        media=pick(rng, _MEDIA),
    )


def organic_first(rng: random.Random, pools: Pools) -> str:
    """Someone who was given the number, or who heard of it and tries it."""
    if rng.random() < 0.35:
        text = _fill(rng, pools, pick(rng, _CURIOUS))
    else:
        parts = [pick(rng, _GREETINGS)]
        intro = _fill(rng, pools, pick(rng, _INTRODUCTIONS))
        if intro:
            parts.append(" " + intro + ",")
        if rng.random() < 0.8:
            parts.append(" " + pick(rng, _QUESTIONS))
        text = "".join(parts).rstrip(",")
    return casual(rng, text) + smiley(rng)


def organic_followup(rng: random.Random, pools: Pools) -> str:
    """What people write after the automatic reply."""
    if rng.random() < 0.15:
        return casual(rng, pick(rng, _QUESTIONS))
    return casual(rng, _fill(rng, pools, pick(rng, _REACTIONS))) + smiley(rng)


_CHANNELS = ("TF1", "France 2", "M6", "BFM", "LCI", "France 3", "Canal+", "C8", "TMC")
_SHOWS = ("JT de 20h", "JT de 13h", "Quotidien", "Petit Journal", "Zone Interdite", "20h")
_PRESS = (
    "Je viens de voir le reportage sur {channel}", "Vu au {show}, je teste !",
    "C'est le numéro du reportage ?", "Bonsoir, je vous ai vus à la télé",
    "Bravo à vous deux, très beau reportage", "Je viens de vous voir sur {channel}, "
    "quelle bonne idée", "Est-ce que c'est vraiment un robot qui répond ?",
    "Ma fille m'a dit d'essayer ce numéro après le {show}", "Je teste après {channel}",
    "Bonjour, c'est {name} de {town}, je vous soutiens", "{name}, {age} ans, je teste",
    "Reportage vu à l'instant, j'envoie pour voir", "C'est bien le 06 anti-relous ?",
    "Super concept, il faudrait ça partout", "Le numéro de la télé ?",
    "Mon mari ne me croit pas que ça marche", "Je suis prof, je vais en parler à mes élèves",
    "Et ça vous coûte combien chaque réponse ?", "Bonsoir depuis {town} !",
    "Courage pour le harcèlement que vous subissez", "Comment on fait un don ?",
    "Je voulais juste voir ce que ça répond", "Coucou, vu sur {channel} ce soir",
)


_SIGN_OFFS = ("", "", "", "", " Bonne soirée", " Merci !", " Bravo", " Bisous", " Courage",
              " {name}", " {name}, {town}", " {name} ({age} ans)", " Belle initiative",
              " Je partage", " Continuez", " Bonne soirée à vous deux")


def press_first(rng: random.Random, pools: Pools) -> str:
    """A viewer who just saw the TV report: each in their own words."""
    roll = rng.random()
    if roll < 0.12:
        text = _fill(rng, pools, pick(rng, _CURIOUS))
    elif roll < 0.2:
        text = pick(rng, pools.sentences)  # people write about anything at all
    else:
        text = pick(rng, _PRESS)
        if rng.random() < 0.3:
            text = text.rstrip(" !?.") + ". " + pick(rng, _PRESS)
    if rng.random() < 0.4:
        text = pick(rng, _GREETINGS) + (", " if rng.random() < 0.5 else " ") + (
            text[0].lower() + text[1:])
    text += pick(rng, _SIGN_OFFS)
    if "{" in text:
        text = text.format(
            channel=pick(rng, _CHANNELS), show=pick(rng, _SHOWS), age=rng.randint(16, 74),
            name=pick(rng, pools.first_names), town=pick(rng, pools.towns),
        )
    return casual(rng, text) + smiley(rng)


# ----------------------------------------------------------------------------- raid

RAID_TEMPLATES = (
    "Bonsoir, je suis relou et fier de l'être. Le 18-25 te salue",
    "Message de la part du forum 18-25 : ton numéro va te coûter cher, 16 centimes par SMS",
    "Salut la féminazie, je respecte ton consentement : je t'envoie juste un petit SMS",
    "Ayaa le numéro anti-relou, on est plus relous que toi",
    "Coucou c'est les kheys, on vient vider ta cagnotte",
    "Le consentement c'est important, alors je consens à t'envoyer ce message",
    "Tu voulais des relous ? Tu as le forum en entier",
    "Bonjour madame, je souhaite un rendez-vous avec le robot anti-relou",
    "C'est Kevin du métro, tu m'as donné ce numéro, pourquoi tu réponds pas ?",
    "Allo ? Allo ? Ici le forum, ça fait combien de SMS là ?",
    "Je suis relou et ton robot me plaît, réponds moi encore",
    "Les féministes de salon quand elles reçoivent la facture de SMS",
    "Un SMS = 16 centimes, on est 5000, fais le calcul",
    "Salut, j'ai trouvé ce numéro sur un forum, tu es célibataire ?",
)
_FORUM_WORDS = ("lol", "ahi", "ayaa", "mdr", "kheys", "jvc", "18-25", "+1", "go", "le zoo",
                "ptdr", "issou", "risitas", "GG", "pls", "en force", "ahii", "xD")
_RAID_EMOJI = ("😂", "🤣", "😘", "🤡", "💸", "📱", "😏", "👌", "🙃", "😜", "💰")
_OPENERS = ("", "Salut ", "Wesh ", "Bonsoir ", "Yo ", "Hé ", "Coucou ", "Allo ", "Oh ")
_TARGETS = ("la ", "madame la ", "ma petite ", "la grande ", "")
_INSULTS = ("féminazie", "relou", "rageuse", "SJW", "féministe de salon",
            "militante en carton", "pleureuse", "donneuse de leçons", "chouineuse",
            "justicière de Twitter", "harpie")
_CLOSERS = (" lol", " mdr", ", tu vas payer", " ahi", ", ça fait combien là ?",
            ", on est partout", ", le forum te passe le bonjour", " 😂", ", bisous",
            ", 16 centimes pour toi", ", t'as cru que ça allait marcher ?", "", "", " !!")
_OWN_LINES = (
    "Ton numéro est nul", "Ça marche pas ton truc", "Rembourse", "J'ai un forfait illimité "
    "moi", "Tu pensais vraiment que ça allait marcher ?", "Je vais t'écrire toute la nuit",
    "Encore un SMS pour la route", "Réponds !", "Je m'ennuie, parle moi", "On est combien "
    "ce soir ?", "Ta cagnotte elle tient le coup ?", "Relou un jour relou toujours",
    "Le robot il dort jamais ?", "Coucou c'est encore moi", "Tu as fermé le numéro ou pas ?",
)


def template_weights(count: int, exponent: float = 1.1) -> list[float]:
    """Zipf popularity of forum templates: a few are copied far more than the rest."""
    return [1.0 / (rank + 1) ** exponent for rank in range(count)]


def own_insult(rng: random.Random) -> str:
    """A raider who writes his own line instead of pasting the forum's."""
    if rng.random() < 0.35:
        return pick(rng, _OWN_LINES)
    return (pick(rng, _OPENERS) + pick(rng, _TARGETS) + pick(rng, _INSULTS)
            + pick(rng, _CLOSERS)).strip().capitalize()


def mutate(rng: random.Random, text: str, strength: float = 1.0) -> str:
    """A copy-pasted text as it arrives: small typos, case, emoji, added words, numbers."""
    if rng.random() < 0.3 * strength and len(text) > 6:
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(1, len(text) - 1)
            op = rng.random()
            if op < 0.4:
                text = text[:i] + text[i + 1] + text[i] + text[i + 2:]   # swap
            elif op < 0.7:
                text = text[:i] + text[i + 1:]                           # drop
            else:
                text = text[:i] + text[i] + text[i:]                     # double
    roll = rng.random()
    if roll < 0.1 * strength:
        text = text.upper()
    elif roll < 0.2 * strength:
        text = text.lower()
    if rng.random() < 0.3 * strength:
        word = pick(rng, _FORUM_WORDS)
        text = f"{word} {text}" if rng.random() < 0.3 else f"{text} {word}"
    if rng.random() < 0.2 * strength:
        text = f"{text} {rng.randint(1, 999)}"
    if rng.random() < 0.2 * strength:
        text = text.rstrip(" .!?") + pick(rng, ("!!!", " ???", "...", " !", "?!", "!!!!!!"))
    if rng.random() < 0.25 * strength:
        text = f"{text} {pick(rng, _RAID_EMOJI) * rng.randint(1, 3)}"
    return text


def script_text(rng: random.Random, pools: Pools, mode: str, base: str, n: int) -> str:
    """A scripted sender's ``n``-th message in one of its modes."""
    if mode == "counter":
        return f"{base} {n}"
    if mode == "salad":
        return pick(rng, pools.sentences)
    if mode == "mutate":
        return mutate(rng, base, 1.5)
    return base  # "same"


SCRIPT_MODES = ("counter", "salad", "mutate", "same")
