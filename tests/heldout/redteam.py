"""Red-team trace generators: a second set of held-out worlds, written blind.

A helper wrote these without reading the policy engine, ``sim/traffic.py`` or
``generators.py``, to find where the default policy fails; ``test_redteam.py`` replays
them. The worlds that found defects (a common phrase poisoned by one genuine sender's second
message, a TV catchphrase poisoned by a few raiders, held viewers who write again) are
regression tests now; the ones the defaults still lose are expected failures there, and
``docs/policy.md`` lists them.

Usage: python -m tests.heldout.redteam OUTDIR [world ...]     (default: all worlds)

Trace format (docs/scenarios.md): one JSON object per line, sorted by t (non-decreasing):
  {"t": float seconds since start (t=0 is local midnight), "from": E.164,
   "to": E.164, "body": str, "label": "legit"|"raid", "id": "SM"+32 hex}
Each world is a pure function of its seed (random.Random(seed)).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys

TO = "+33644649021"
H = 3600.0
D = 86400.0

# hour-of-day weights for France (0h..23h): quiet nights, evening peak
HOUR_W = [
    0.25,
    0.15,
    0.08,
    0.05,
    0.04,
    0.06,
    0.15,
    0.35,
    0.55,
    0.6,
    0.65,
    0.75,
    0.95,
    0.9,
    0.7,
    0.7,
    0.75,
    0.9,
    1.1,
    1.3,
    1.5,
    1.6,
    1.3,
    0.7,
]

# ----------------------------------------------------------------------------- vocab
PRENOMS_H = [
    "Julien",
    "Kevin",
    "Thomas",
    "Nicolas",
    "Maxime",
    "Romain",
    "Alexandre",
    "Sébastien",
    "Mathieu",
    "Anthony",
    "Jérémy",
    "Florian",
    "Quentin",
    "Antoine",
    "Benoît",
    "Karim",
    "Mehdi",
    "Yanis",
    "Hugo",
    "Lucas",
    "Pierre",
    "Olivier",
    "Franck",
    "Damien",
    "Loïc",
    "Cédric",
    "Yann",
    "Rémi",
    "Guillaume",
    "Vincent",
    "Adrien",
    "Bastien",
    "Samir",
    "Fabien",
    "Jonathan",
    "Steven",
    "Dylan",
    "Théo",
    "Enzo",
    "Baptiste",
    "Arnaud",
    "Éric",
]
PRENOMS_F = [
    "Julie",
    "Camille",
    "Léa",
    "Manon",
    "Sarah",
    "Laura",
    "Chloé",
    "Emma",
    "Inès",
    "Clara",
    "Marine",
    "Pauline",
    "Anaïs",
    "Élodie",
    "Sophie",
    "Amandine",
    "Océane",
]
LIEUX = [
    "au bar",
    "à la soirée de Max",
    "au Macumba",
    "à la fac",
    "dans le métro",
    "au concert",
    "au mariage de Seb",
    "à la salle",
    "au Starbucks",
    "au festival",
    "à la plage",
    "au boulot",
    "chez Karim",
    "à l'anniv de Julie",
    "au bowling",
    "au karaoké",
    "à la fête de la musique",
    "à la gare",
    "au marché",
    "au Carrefour",
    "au ciné",
]
VILLES = [
    "Paris",
    "Lyon",
    "Marseille",
    "Lille",
    "Toulouse",
    "Nantes",
    "Bordeaux",
    "Rennes",
    "Strasbourg",
    "Montpellier",
    "Nice",
    "Grenoble",
    "Dijon",
    "Angers",
    "Brest",
    "Tours",
]
QUAND = [
    "hier soir",
    "samedi",
    "vendredi soir",
    "ce midi",
    "tout à l'heure",
    "la semaine dernière",
    "dimanche",
    "avant-hier",
    "ce soir",
    "l'autre jour",
    "jeudi",
]
SALUTS = [
    "Salut",
    "Coucou",
    "Bonsoir",
    "Hello",
    "Slt",
    "Cc",
    "Bonjour",
    "Yo",
    "Hey",
    "Re",
    "Bsr",
    "Wesh",
    "Salut toi",
    "Coucou toi",
    "Hello hello",
    "Bjr",
]


def _typo(rng, s):
    """Human noise: lowercase, dropped accents, abbreviations, punctuation."""
    r = rng.random()
    if r < 0.25:
        s = s.lower()
    if rng.random() < 0.2:
        s = (
            s.replace("é", "e")
            .replace("è", "e")
            .replace("ê", "e")
            .replace("à", "a")
            .replace("ç", "c")
        )
    if rng.random() < 0.25:
        for a, b in (
            ("c'est", "c"),
            ("tu es", "t"),
            ("quoi", "koi"),
            ("je suis", "chui"),
            ("beaucoup", "bcp"),
            ("pourquoi", "pk"),
            ("s'il te plaît", "stp"),
            ("aujourd'hui", "ajd"),
            ("rien", "r"),
            ("toujours", "tjr"),
        ):
            if rng.random() < 0.6:
                s = s.replace(a, b)
    if rng.random() < 0.15:
        s = s.rstrip(".!? ") + rng.choice(
            ["", " !", " ?", "...", " !!", " 😊", " 😉", " :)", " 🙂"]
        )
    return s


def organic_first(rng):
    """First message of someone who was given the number (or is curious)."""
    k = rng.random()
    n = rng.choice(PRENOMS_H)
    sal = rng.choice(SALUTS)
    if k < 0.55:
        intro = rng.choice(
            [
                f"c'est {n}",
                f"moi c'est {n}",
                f"c'est {n} de {rng.choice(QUAND)}",
                f"c'est {n}, on s'est vus {rng.choice(LIEUX)} {rng.choice(QUAND)}",
                f"c'est moi {n} {rng.choice(LIEUX)}",
                f"{n} ici",
                f"c'est le pote de {rng.choice(PRENOMS_H)}",
                f"c'est {n} le grand brun",
                f"c'est {n} du {rng.choice(['bar', 'concert', 'train', 'taf', 'club'])}",
            ]
        )
        tail = rng.choice(
            [
                "",
                " tu vas bien ?",
                " t'es bien rentrée ?",
                " ça te dit un verre " + rng.choice(QUAND) + " ?",
                " j'ai passé une super soirée",
                " on se capte quand ?",
                " tu fais quoi ce week-end ?",
                " comme promis je t'écris",
                " tu te souviens de moi ?",
                " j'espère que je te dérange pas",
                " enregistre mon num",
                " t'es dispo " + rng.choice(["demain", "samedi", "ce soir", "jeudi"]) + " ?",
                " je voulais te redire que t'étais magnifique",
                " ta copine " + rng.choice(PRENOMS_F) + " est rentrée ?",
            ]
        )
        s = f"{sal} {intro}.{tail}" if rng.random() < 0.5 else f"{sal}, {intro}{tail}"
    elif k < 0.8:
        s = rng.choice(
            [
                f"{sal} {rng.choice(PRENOMS_F)}, c'est {n}",
                f"{rng.choice(PRENOMS_F)} ? c'est {n}",
                f"{sal} la plus belle de {rng.choice(VILLES)}",
                f"Hey, j'ai eu ton numéro par {rng.choice(PRENOMS_F)}",
                f"{sal} c'est bien le numéro de {rng.choice(PRENOMS_F)} ?",
                f"{sal}, on s'est parlé {rng.choice(LIEUX)}, je suis {n}",
                f"Alors, bien rentrée de {rng.choice(VILLES)} ?",
                f"{sal} :) c'est {n}, le mec avec la chemise "
                f"{rng.choice(['bleue', 'blanche', 'à fleurs', 'rouge'])}",
                f"Re {rng.choice(PRENOMS_F)} ! {n} au rapport",
                "Coucou beauté",
                f"{sal} ma belle",
                f"{sal}, tu m'as dit de t'écrire alors voilà",
            ]
        )
    else:
        s = rng.choice(
            [
                "C'est quoi ce numéro ?",
                "Test",
                "test",
                "Qui est-ce ?",
                "Allô ?",
                "On m'a filé ce numéro, c'est qui ?",
                f"J'ai vu ce numéro sur "
                f"{rng.choice(['Twitter', 'Facebook', 'Insta', 'Snap'])}, ça marche vraiment ?",
                "Bonjour, c'est pour quoi ce numéro ?",
                "Curieux de voir ce que ça répond",
                "Bonjour, je voulais tester",
                "ça répond vraiment ?",
                f"{sal}, qui est à l'appareil ?",
                "Bonjour, je suis journaliste à "
                f"{rng.choice(['Ouest-France', 'la Dépêche', 'France Bleu', '20 Minutes'])}, "
                "pouvez-vous me rappeler ?",
                "Bravo pour l'initiative 👏",
                "Super idée ce numéro",
                "Je viens de lire l'article, génial",
            ]
        )
    return _typo(rng, s)


def organic_followup(rng):
    return _typo(
        rng,
        rng.choice(
            [
                "C'est quoi ce message ??",
                "Ah d'accord...",
                "Très drôle",
                "Sérieux ?",
                "Ok j'ai compris",
                "Elle aurait pu me le dire en face",
                "Wow. Ok.",
                "Mdr je me suis fait avoir",
                "Pas cool",
                "Dommage",
                "Ah ok merci",
                "Bien joué",
                "C'est une blague ?",
                "?",
                "??",
                "Je comprends pas",
                "T'es sérieuse là ?",
                "Ah bah bravo",
                "Message reçu",
                "Ok ok",
                "Tant pis pour elle",
                "J'ai rien fait de mal pourtant",
                "lol",
                "C'est nul",
                "Bon...",
                "Merci quand même",
                f"Dis à {rng.choice(PRENOMS_F)} que c'est pas sympa",
                "C'est qui qui gère ce numéro ?",
                "Vous êtes qui ?",
                "Bien vu 😂",
                "Je savais pas que ça existait",
                "Ça me fait rire",
            ]
        ),
    )


def angry_line(rng):
    return _typo(
        rng,
        rng.choice(
            [
                "Tu te prends pour qui ?",
                "Franchement t'es pas sérieuse",
                "C'est honteux",
                "J'ai été gentil avec toi",
                "Réponds moi",
                "Je vais pas lâcher",
                "Allô ???",
                "Tu peux pas juste me dire non ?",
                "C'est lâche de faire ça",
                "T'avais qu'à le dire",
                "Je te croyais différente",
                "Ça se fait pas",
                "Tu m'as bien eu hein",
                "Je demande juste une explication",
                "Ok mais pourquoi ?",
                "Sérieux t'es gonflée",
                "Je vais le dire à " + rng.choice(PRENOMS_H),
                "On s'était bien entendus pourtant",
                "Tu m'as fait perdre ma soirée",
                "Je trouve ça humiliant",
                "T'as même pas le courage",
                "Bah voilà, j'ai compris",
                "Je suis déçu",
                "Réponds !!!",
                "??",
                "...",
                "Je vais appeler ce numéro alors",
                "C'est pas drôle du tout",
                "Grave mature",
                "T'inquiète je t'écrirai plus",
                "Bonne continuation",
                "Dernier message promis",
                "En fait non j'ai encore un truc à dire",
                "Je mérite pas ça",
            ]
        ),
    )


# raid grammar: many wordings, composed from parts (no single template)
R_SUJ = [
    "Les féministes",
    "Les féminazies",
    "Vous",
    "Les hystériques",
    "Les deux folles",
    "Ces militantes",
    "Les rageuses",
    "Les frustrées",
    "Les pleureuses",
    "Les chiennes de garde",
    "Vos copines",
    "Les SJW",
    "Les victimes",
    "Les néo-féministes",
    "Les castratrices",
]
R_VERB = [
    "vont payer",
    "vont casquer",
    "vont pleurer",
    "vont fermer boutique",
    "sont ruinées",
    "vont devoir vendre leur rein",
    "vont regretter",
    "vont faire faillite",
    "sont cuites",
    "vont lâcher l'affaire",
    "vont couper le numéro",
    "vont chialer",
    "ont perdu",
    "vont rager",
    "vont réfléchir à deux fois",
    "vont appeler leur banquier",
]
R_END = [
    "ce soir",
    "avant minuit",
    "cette semaine",
    "dans une heure",
    "demain matin",
    "en un week-end",
    "grâce au forum",
    "grâce à nous",
    "à 16 centimes le SMS",
    "SMS par SMS",
    "un SMS à la fois",
    "ahah",
    "lol",
    "mdr",
    "kek",
    "ayaa",
    "",
    "",
    "",
]
R_OPEN = [
    "",
    "",
    "Allô ",
    "Bonsoir ",
    "Yo ",
    "Coucou les filles ",
    "Bonjour mesdames ",
    "Salut les relous ",
    "Hey ",
    "Ding dong ",
    "Surprise ",
    "Petit message de ",
    "Message de soutien ",
    "Toc toc ",
    "Kikou ",
]
R_SIGN = [
    "",
    "",
    "",
    " - le 18-25",
    " #JVC",
    " signé les relous",
    " (c'est pour la facture)",
    " bisous",
    " xoxo",
    " — un relou",
    " PS: 16 centimes",
    " love",
    " 🤡",
    " 😂😂",
    " -Risitas",
    " -Le Forum",
    " issou",
    " 🐷",
    " cordialement",
]
R_ALT = [
    "Combien ça vous coûte ce message ?",
    "Encore un SMS à payer",
    "Un de plus dans la facture",
    "Le compteur tourne",
    "Vous aimez les factures ?",
    "Ça fait combien là ?",
    "On est combien à vous écrire ce soir ?",
    "Répondez moi vite, c'est gratuit pour moi",
    "Ton numéro a fuité sur le forum",
    "J'insiste pas, je relance",
    "Je suis un relou et alors",
    "Je veux pas de ton consentement je veux ta facture",
    "La facture va être salée",
    "Vous avez prévu le budget ?",
    "Alerte facture",
    "Hop un SMS de plus",
    "Mon forfait est illimité, ton budget non",
    "Réponds moi, j'adore tes messages automatiques",
    "Ils vous payent combien pour ça ?",
    "Raconte moi une histoire de consentement",
    "Je viens de la part du forum",
    "Un petit SMS pour la route",
    "Et un, et deux, et trois SMS",
]


def raid_compose(rng):
    k = rng.random()
    if k < 0.45:
        s = (f"{rng.choice(R_OPEN)}{rng.choice(R_SUJ)} {rng.choice(R_VERB)} "
             f"{rng.choice(R_END)}").strip()
    elif k < 0.8:
        s = rng.choice(R_ALT)
        if rng.random() < 0.5:
            s = f"{rng.choice(R_OPEN)}{s[0].lower()}{s[1:]}".strip()
    else:
        a = rng.choice(R_ALT)
        b = f"{rng.choice(R_SUJ)} {rng.choice(R_VERB)}"
        s = f"{a}. {b}" if rng.random() < 0.5 else f"{b}. {a}"
    s += rng.choice(R_SIGN)
    if rng.random() < 0.3:
        s += " " + rng.choice(["!", "!!", "!!!", "?", "😂", "😈", "🤣", "💸", "💰", "📱"])
    return _typo(rng, s)


MIMIC = [
    "Bonjour, on m'a donné ce numéro, c'est pour quoi ?",
    "Salut, une fille m'a donné ce numéro hier, c'est bien toi ?",
    "Bonsoir, j'ai eu ce numéro par une amie, qui est-ce ?",
    "Coucou c'est {n}, on s'est vus {l} {q}",
    "Hello, c'est {n} ! T'es bien rentrée ?",
    "Bonjour, c'est quoi ce numéro exactement ?",
    "On m'a filé ce num {l}, c'est qui ?",
    "Salut c'est {n}, tu te souviens de moi ? {l}",
    "J'ai vu ce numéro sur {s}, ça répond vraiment ?",
    "Bonsoir {f}, c'est {n} comme promis",
]


def mimic_text(rng):
    t = rng.choice(MIMIC).format(
        n=rng.choice(PRENOMS_H),
        f=rng.choice(PRENOMS_F),
        l=rng.choice(LIEUX),
        q=rng.choice(QUAND),
        s=rng.choice(["Twitter", "Facebook", "Insta", "un forum"]),
    )
    return _typo(rng, t)


TEMPLATES5 = [
    "Bonjour, je suis un relou et je vous envoie ce SMS pour faire monter votre facture, "
    "bonne soirée",
    "Ce message vous coûte 16 centimes, merci le forum 18-25, on ne lâchera rien",
    "Votre numéro anti relous est une honte, on va vous ruiner SMS après SMS",
    "Consentement ? On consent à vous envoyer des milliers de messages, bisous",
    "Allô la police du consentement ? Ici les relous, on vous fait une petite visite",
]
HOMO = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і", "y": "у"}
ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
EMO = ["😂", "🤡", "💸", "😈", "🔥", "🐷", "👀", "💀", "🙃", "✌️"]


def mutate(rng, s, heavy=True):
    chars = list(s)
    out = []
    for ch in chars:
        lo = ch.lower()
        if lo in HOMO and ch == lo and rng.random() < (0.12 if heavy else 0.04):
            out.append(HOMO[lo])
            continue
        out.append(ch)
        if ch.isalpha() and rng.random() < (0.05 if heavy else 0.01):
            out.append(rng.choice(ZW))
    s = "".join(out)
    if rng.random() < 0.7:
        words = s.split(" ")
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randint(0, len(words)), rng.choice(EMO))
        s = " ".join(words)
    if rng.random() < 0.3:
        s += " " + str(rng.randint(1, 9999))
    return s


# ----------------------------------------------------------------------------- helpers
class World:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.used = set()
        self.recs = []

    def number(self, prefix=None):
        rng = self.rng
        while True:
            p = prefix or rng.choice(["+336", "+336", "+336", "+337"])
            n = p + "".join(str(rng.randrange(10)) for _ in range(12 - len(p)))
            if n not in self.used and not n.startswith("+3375"):
                self.used.add(n)
                return n

    def block(self, size):
        """`size` consecutive numbers in the +3375 virtual-number range."""
        rng = self.rng
        while True:
            base = 750000000 + rng.randrange(0, 9999000 - size)
            nums = [f"+33{base + i}" for i in range(size)]
            if not any(n in self.used for n in nums):
                self.used.update(nums)
                return nums

    def add(self, t, frm, body, label):
        self.recs.append((t, frm, body, label))

    def daytime(self, day0, days):
        """A random instant following the hour-of-day profile."""
        rng = self.rng
        d = rng.randrange(day0, day0 + days)
        h = rng.choices(range(24), weights=HOUR_W)[0]
        return d * D + h * H + rng.random() * H

    def organic(
        self,
        n_senders,
        days,
        day0=0,
        per=(1, 3),
        angry_share=0.0,
        angry_n=(5, 10),
        gap=(60, 3 * H),
        end=None,
    ):
        rng = self.rng
        for _ in range(n_senders):
            num = self.number()
            t = self.daytime(day0, days)
            self.add(t, num, organic_first(rng), "legit")
            if rng.random() < angry_share:
                k = rng.randint(*angry_n) - 1
                t += rng.uniform(60, 900)
                for _ in range(k):
                    self.add(t, num, angry_line(rng), "legit")
                    t += rng.expovariate(1 / 90.0) + 10
            else:
                for _ in range(rng.randint(*per) - 1):
                    t += rng.uniform(*gap)
                    self.add(t, num, organic_followup(rng), "legit")

    def surge_times(self, start, n, rise, decay):
        rng = self.rng
        out = []
        for _ in range(n):
            # triangular rise then exponential decay
            if rng.random() < rise / (rise + decay):
                out.append(start + rise * math.sqrt(rng.random()))
            else:
                out.append(start + rise + rng.expovariate(1 / decay))
        return out

    def write(self, path, end=None):
        recs = sorted(self.recs, key=lambda r: r[0])
        if end is not None:
            recs = [r for r in recs if r[0] <= end]
        rng = random.Random(len(recs) * 7919 + 17)
        with open(path, "w", encoding="utf-8") as f:
            for t, frm, body, label in recs:
                mid = "SM" + f"{rng.getrandbits(128):032x}"
                f.write(
                    json.dumps(
                        {
                            "t": round(t, 3),
                            "from": frm,
                            "to": TO,
                            "body": body,
                            "label": label,
                            "id": mid,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        return len(recs)


def heavy(rng, lo=1, alpha=1.3, cap=200):
    return min(cap, int(lo * (1 - rng.random()) ** (-1 / alpha)))


# ----------------------------------------------------------------------------- worlds
def w1_slow_burn(seed=101):
    w = World(seed)
    rng = w.rng
    w.organic(3500, 5)
    for _ in range(3000):
        num = w.number()
        t = w.daytime(0, 5)
        for _ in range(rng.randint(2, 4)):
            w.add(t, num, raid_compose(rng), "raid")
            t += rng.uniform(2 * H, 10 * H)
    return w, 5 * D + 12 * H


def w2_mimic(seed=102):
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 20 * H
    for _ in range(2500):
        num = w.number()
        t = start + rng.expovariate(1 / (3 * H))
        first = mimic_text(rng)
        k = heavy(rng, 1, 1.5, 12)
        for j in range(k):
            body = first if (j > 0 and rng.random() < 0.3) else mimic_text(rng)
            w.add(t, num, body, "raid")
            t += rng.uniform(5 * 60, 40 * 60)
    return w, 3 * D


def w3_press_plus_raid(seed=103):
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2)
    ps = 1 * D + 20 * H + 10 * 60
    for t in w.surge_times(ps, 3500, 180, 1200):
        num = w.number()
        w.add(t, num, organic_first(rng), "legit")
        r = rng.random()
        n2 = 0 if r < 0.6 else (1 if r < 0.9 else 2)
        for _ in range(n2):
            t += rng.uniform(120, 900)
            w.add(t, num, organic_followup(rng), "legit")
    rs = ps + 15 * 60
    for t in w.surge_times(rs, 2500, 300, 3600):
        num = w.number()
        style = rng.random()
        k = heavy(rng, 1, 1.3, 40)
        base = rng.choice(TEMPLATES5)
        for _ in range(k):
            if style < 0.4:
                body = mutate(rng, base, heavy=False)
            elif style < 0.8:
                body = raid_compose(rng)
            else:
                body = mimic_text(rng)
            w.add(t, num, body, "raid")
            t += rng.uniform(30, 600)
    return w, 2 * D + 12 * H


def w4_press_fixed_phrase(seed=104, poison=False):
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2)
    ps = 1 * D + 20 * H + 10 * 60
    phrase = "JE DIS NON AUX RELOUS"
    for t in w.surge_times(ps, 4500, 180, 1500):
        num = w.number()
        r = rng.random()
        if r < 0.8:
            body = phrase
        elif r < 0.9:
            body = rng.choice(
                [
                    phrase.lower(),
                    phrase.capitalize(),
                    phrase + " !",
                    "Je dis non aux relous",
                    "je dis non aux relous 💪",
                    phrase + " 👍",
                ]
            )
        else:
            body = rng.choice(
                [
                    "Bonsoir, " + phrase.lower(),
                    phrase + ", bravo pour le reportage",
                    "Je dis non aux relous ! Vu sur France 2",
                ]
            )
        w.add(t, num, body, "legit")
    if poison:
        # 300 raiders paste the same TV phrase 3-6 times each: poison the phrase
        for t in w.surge_times(ps + 5 * 60, 300, 120, 1800):
            num = w.number()
            for _ in range(rng.randint(3, 6)):
                w.add(t, num, phrase if rng.random() < 0.7 else phrase.lower(), "raid")
                t += rng.uniform(20, 300)
    return w, 3 * D


def _unique_raid_text(rng):
    s = raid_compose(rng)
    if rng.random() < 0.5:
        s += " " + rng.choice(["#", "n°", "ref ", "", "x"]) + str(rng.randint(1, 99999))
    return s


def w5_oneshot_random(seed=105):
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 19 * H
    for _ in range(12000):
        num = w.number()
        t = start + rng.random() * 24 * H
        w.add(t, num, _unique_raid_text(rng), "raid")
    return w, 3 * D


def w5b_boiling_frog(seed=115):
    """One-shot unique raid from random numbers whose rate ramps up slowly over 4 days."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 5)
    for _ in range(9000):
        num = w.number()
        # density proportional to t (linear ramp) over days 0..4, follows daily cycle
        while True:
            t = 4 * D * math.sqrt(rng.random())
            if rng.random() < HOUR_W[int(t // H) % 24] / 1.6:
                break
        w.add(t + 0.5 * D, num, _unique_raid_text(rng), "raid")
    return w, 5 * D


def w6_mutations_blocks(seed=106):
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2)
    blocks = [w.block(rng.randint(40, 120)) for _ in range(20)]
    pool = [n for b in blocks for n in b]
    rng.shuffle(pool)
    start = 0 * D + 21 * H
    n = 0
    t = start
    while n < 8000:
        num = pool[n % len(pool)] if rng.random() < 0.85 else rng.choice(pool)
        t += rng.expovariate(1 / 6.0)
        if t > start + 20 * H:
            t = start + rng.random() * 20 * H
        w.add(t, num, mutate(rng, rng.choice(TEMPLATES5)), "raid")
        n += 1
    return w, 2 * D


def w7_angry(seed=107):
    w = World(seed)
    w.organic(3000, 3, angry_share=0.4)
    return w, 3 * D


def w7b_angry_surge(seed=117):
    """Genuine press surge where impatient viewers send several messages quickly. No raid."""
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2, angry_share=0.2)
    ps = 1 * D + 20 * H + 10 * 60
    for t in w.surge_times(ps, 3000, 180, 1200):
        num = w.number()
        w.add(t, num, organic_first(rng), "legit")
        r = rng.random()
        if r < 0.25:  # impatient: "allo ?" "ça marche ?" a few times within the hour
            for _ in range(rng.randint(2, 5)):
                t += rng.uniform(60, 600)
                w.add(
                    t,
                    num,
                    _typo(
                        rng,
                        rng.choice(
                            [
                                "Allô ?",
                                "Ça marche pas ?",
                                "Y'a quelqu'un ?",
                                "?",
                                "Je vous ai écrit",
                                "Réponse ?",
                                "J'attends la réponse",
                                "Ça répond pas",
                                "Bug ?",
                                "Test 2",
                            ]
                        ),
                    ),
                    "legit",
                )
        elif r < 0.5:
            t += rng.uniform(300, 1800)
            w.add(t, num, organic_followup(rng), "legit")
    return w, 2 * D + 12 * H


def w8_nightly_3am(seed=108):
    w = World(seed)
    rng = w.rng
    w.organic(5000, 7)
    crew = [w.number() for _ in range(600)]
    for night in range(1, 8):
        s = night * D + 3 * H
        active = rng.sample(crew, 350) + [w.number() for _ in range(100)]
        for num in active:
            t = s + rng.random() * 600
            k = heavy(rng, 1, 1.6, 15)
            for _ in range(k):
                body = (
                    raid_compose(rng)
                    if rng.random() < 0.6
                    else mutate(rng, rng.choice(TEMPLATES5), False)
                )
                w.add(t, num, body, "raid")
                t += rng.uniform(10, 120)
    return w, 7 * D + 12 * H


def w9_optout_abuse(seed=109):
    """Raiders cycle text/STOP/START/text; genuine senders whose first text contains stop/arrête."""
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2)
    # genuine first messages that start with stop-like words (angry or joking, not opt-out requests)
    for _ in range(300):
        num = w.number()
        t = w.daytime(0, 2)
        body = rng.choice(
            [
                "Stop, c'est qui ?",
                "STOP c'est qui ce numéro ?",
                "Arrête de faire la timide c'est " + rng.choice(PRENOMS_H),
                "Stop tu me fais rire, c'est " + rng.choice(PRENOMS_H),
                "Arrêt de bus ok, c'est " + rng.choice(PRENOMS_H),
                "Fin de soirée, c'est " + rng.choice(PRENOMS_H),
                "Stop",
                "STOP",
                "Arret",
                "Annuler",
            ]
        )
        w.add(t, num, body, "legit")
        if rng.random() < 0.5:
            t += rng.uniform(60, 1800)
            w.add(t, num, organic_first(rng), "legit")
    # raiders: message, STOP, START, message, STOP, START ... hours apart
    for _ in range(500):
        num = w.number()
        t = 1 * D + 20 * H + rng.random() * 4 * H
        for _c in range(rng.randint(3, 8)):
            w.add(t, num, raid_compose(rng), "raid")
            t += rng.uniform(60, 300)
            w.add(t, num, rng.choice(["STOP", "Stop", "ARRET", "stop"]), "raid")
            t += rng.uniform(30, 120)
            w.add(t, num, rng.choice(["START", "Start", "UNSTOP", "YES"]), "raid")
            t += rng.uniform(30, 120)
    # alphanumeric senders and short codes (raid via SMS gateways)
    for _i in range(200):
        t = 1 * D + 21 * H + rng.random() * 2 * H
        frm = rng.choice(["RELOUS", "Promo", "JVC1825", "InfoSMS", "36180", "38123", "SMSPRO"])
        w.add(t, frm, raid_compose(rng), "raid")
    return w, 2 * D + 12 * H


def w10_raid_to_end(seed=110):
    """Raid + genuine surge that last until the trace ends (number switched off): held replies."""
    w = World(seed)
    rng = w.rng
    w.organic(2000, 2)
    ps = 1 * D + 20 * H
    for t in w.surge_times(ps, 1500, 180, 900):
        w.add(t, w.number(), organic_first(rng), "legit")
    for t in w.surge_times(ps + 10 * 60, 2000, 120, 3 * H):
        num = w.number()
        base = rng.choice(TEMPLATES5)
        for _ in range(heavy(rng, 1, 1.3, 30)):
            w.add(
                t,
                num,
                mutate(rng, base, False) if rng.random() < 0.5 else raid_compose(rng),
                "raid",
            )
            t += rng.uniform(30, 400)
    return w, ps + 2 * H  # switched off 2h after the TV report


def w11_phrase_poison(seed=111):
    """Raiders repeat phrases that genuine senders naturally use ("on m'a donné ce numéro",
    "c'est qui ?", "t'es bien rentrée") so that these phrases look like raid memes."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 20 * H
    for _ in range(1200):
        num = w.number()
        t = start + rng.expovariate(1 / (2 * H))
        for _ in range(rng.randint(3, 8)):
            w.add(t, num, mimic_text(rng) if rng.random() < 0.5 else organic_first(rng), "raid")
            t += rng.uniform(300, 1500)
    # genuine TV surge two hours into it
    for t in w.surge_times(start + 2 * H, 2500, 180, 1200):
        num = w.number()
        w.add(t, num, organic_first(rng), "legit")
        if rng.random() < 0.3:
            t += rng.uniform(120, 900)
            w.add(t, num, organic_followup(rng), "legit")
    return w, 3 * D


def w12_budget_drain(seed=112):
    """One-shot raid early in the week drains the budget before the genuine week."""
    w = World(seed)
    rng = w.rng
    w.organic(4000, 6)
    for _ in range(11000):
        num = w.number()
        t = 0.5 * D + rng.random() * 36 * H
        w.add(t, num, _unique_raid_text(rng) if rng.random() < 0.6 else mimic_text(rng), "raid")
    return w, 6 * D


def w4c_fixed_phrase_resend(seed=124, resend=0.03):
    """Genuine TV surge with a fixed phrase; a few viewers who get no immediate answer
    paste the phrase again 5-30 minutes later. No raid."""
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2)
    ps = 1 * D + 20 * H + 10 * 60
    phrase = "JE DIS NON AUX RELOUS"
    for t in w.surge_times(ps, 4500, 180, 1500):
        num = w.number()
        body = (
            phrase
            if rng.random() < 0.85
            else rng.choice([phrase.lower(), "Je dis non aux relous !", phrase + " 👍"])
        )
        w.add(t, num, body, "legit")
        if rng.random() < resend:
            w.add(t + rng.uniform(300, 1800), num, body, "legit")
    return w, 3 * D


def w4d_poison_n(n, seed=134):
    """Minimal poisoning: n raiders paste the genuine TV phrase 3 times each."""
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2)
    ps = 1 * D + 20 * H + 10 * 60
    phrase = "JE DIS NON AUX RELOUS"
    for t in w.surge_times(ps, 4500, 180, 1500):
        w.add(t, w.number(), phrase, "legit")
    for t in w.surge_times(ps + 5 * 60, n, 120, 600):
        num = w.number()
        for _ in range(3):
            w.add(t, num, phrase, "raid")
            t += rng.uniform(60, 300)
    return w, 3 * D


OPENERS = [
    "Alors, bien rentrée de {v} ?",
    "J'ai passé une super soirée avec toi hier",
    "Tu m'avais dit de t'écrire alors je t'écris",
    "C'est moi, le mec de la soirée d'hier",
    "Je voulais savoir si tu étais bien rentrée",
]


def w13_common_phrase_quiet(seed=113, second=0.1):
    """Organic only, three ordinary days. Some genuine senders open with one of a few common
    (5+ word) phrasings; a few of them had already written a short hello before it. No raid."""
    w = World(seed)
    rng = w.rng
    w.organic(2500, 3)
    for _ in range(600):
        num = w.number()
        t = w.daytime(0, 3)
        if rng.random() < second:
            w.add(t, num, f"{rng.choice(SALUTS)} c'est {rng.choice(PRENOMS_H)}", "legit")
            t += rng.uniform(30, 600)
        w.add(t, num, rng.choice(OPENERS).format(v=rng.choice(VILLES)), "legit")
    return w, 3 * D


def w14_office_blocks(seed=140):
    """Genuine senders from corporate fleets (consecutive numbers): after the TV report,
    colleagues in 60 offices text the number, some share the office's wording, one or two
    write twice. No raid."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    for _k in range(60):
        base = 600000000 + rng.randrange(0, 99999000)
        base -= base % 100
        nums = [f"+33{base + i}" for i in range(rng.randint(6, 12))]
        nums = [n for n in nums if n not in w.used]
        w.used.update(nums)
        t0 = w.daytime(0, 3)
        shared = rng.choice(
            [
                "On a vu le reportage au bureau, bravo pour cette initiative !",
                "Toute l'équipe de la compta vous soutient, continuez comme ça",
                "Bonjour, on teste votre numéro avec les collègues, c'est génial",
            ]
        )
        for n in nums:
            t = t0 + rng.uniform(0, 1800)
            w.add(t, n, shared if rng.random() < 0.5 else organic_first(rng), "legit")
            if rng.random() < 0.2:
                w.add(t + rng.uniform(60, 1200), n, organic_followup(rng), "legit")
    return w, 3 * D


CURIOUS = [
    "Bonjour, on m'a donné ce numéro, c'est pour quoi ?",
    "Bonsoir, on m'a donné ce numéro, c'est pour quoi ?",
    "Bonjour, on m'a donné ce numéro, c'est pour quoi exactement ?",
    "bonjour on m'a donné ce numéro c'est pour quoi",
]


def w15_poison_opener(n_raiders, seed=150):
    """Organic week-end where ~10% of genuine first texts are a common curious opener;
    n_raiders numbers each send that opener twice (10 min apart) on day 1 at 18:00."""
    w = World(seed)
    rng = w.rng
    w.organic(2700, 3)
    for _ in range(300):
        w.add(w.daytime(0, 3), w.number(), rng.choice(CURIOUS), "legit")
    for _ in range(n_raiders):
        num = w.number()
        t = 1 * D + 18 * H + rng.uniform(0, 600)
        body = rng.choice(CURIOUS)
        w.add(t, num, body, "raid")
        w.add(t + 600, num, body, "raid")
    return w, 3 * D


WORLDS = {
    "w1_slow_burn": w1_slow_burn,
    "w2_mimic": w2_mimic,
    "w3_press_plus_raid": w3_press_plus_raid,
    "w4_press_fixed_phrase": w4_press_fixed_phrase,
    "w4b_fixed_phrase_poison": lambda: w4_press_fixed_phrase(114, poison=True),
    "w5_oneshot_random": w5_oneshot_random,
    "w5b_boiling_frog": w5b_boiling_frog,
    "w6_mutations_blocks": w6_mutations_blocks,
    "w7_angry": w7_angry,
    "w7b_angry_surge": w7b_angry_surge,
    "w8_nightly_3am": w8_nightly_3am,
    "w9_optout_abuse": w9_optout_abuse,
    "w10_raid_to_end": w10_raid_to_end,
    "w11_phrase_poison": w11_phrase_poison,
    "w12_budget_drain": w12_budget_drain,
    "w4c_fixed_phrase_resend": w4c_fixed_phrase_resend,
    "w4d_poison_6": lambda: w4d_poison_n(6),
    "w4d_poison_12": lambda: w4d_poison_n(12),
    "w4d_poison_30": lambda: w4d_poison_n(30),
    "w13_common_phrase_quiet": w13_common_phrase_quiet,
    "w13b_common_phrase_no_second": lambda: w13_common_phrase_quiet(second=0.0),
    "w13c_common_phrase_3pct_second": lambda: w13_common_phrase_quiet(second=0.03),
    "w4d_poison_100": lambda: w4d_poison_n(100),
    "w14_office_blocks": w14_office_blocks,
    "w15a_opener_control": lambda: w15_poison_opener(0),
    "w15b_opener_poison_1": lambda: w15_poison_opener(1),
    "w15c_opener_poison_3": lambda: w15_poison_opener(3),
    "w3s2_press_plus_raid": lambda: w3_press_plus_raid(203),
    "w3s3_press_plus_raid": lambda: w3_press_plus_raid(303),
    "w7c_angry_surge_s2": lambda: w7b_angry_surge(217),
    "w4d_poison_50": lambda: w4d_poison_n(50),
    "w13d_common_phrase_05pct_second": lambda: w13_common_phrase_quiet(second=0.005),
    "w13e_common_phrase_02pct_second": lambda: w13_common_phrase_quiet(second=0.002),
    "w4d_poison_250": lambda: w4d_poison_n(250),
}


def main(argv):
    if any(arg.startswith("-") for arg in argv[1:]):  # --help, not a directory
        print("usage: python -m tests.heldout.redteam [OUTDIR [WORLD...]]", file=sys.stderr)
        raise SystemExit(0 if argv[1:] in (["-h"], ["--help"]) else 2)
    out = argv[1] if len(argv) > 1 else "/tmp/redteam/traces"
    names = argv[2:] or list(WORLDS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        w, end = WORLDS[name]()
        n = w.write(os.path.join(out, name + ".jsonl"), end=end)
        print(f"{name}: {n} messages")


if __name__ == "__main__":
    main(sys.argv)
