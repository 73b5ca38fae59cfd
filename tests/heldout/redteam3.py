#!/usr/bin/env python3
"""Red-team 3 traffic worlds for raidsim (standard library only).

Written blind: no reading of the policy engine, the project's generators or its
scenarios. Each world is a pure function of its seed. t = 0 is a Monday 00:00
(local time); hours below are local clock hours.

    python -m tests.heldout.redteam3 OUTDIR          # every world as OUTDIR/NAME.jsonl
    python -m tests.heldout.redteam3 OUTDIR name...  # only these worlds

``test_redteam3.py`` replays them through the CLI with the default policy.
"""

import json
import math
import os
import random
import sys

TO = "+33644649021"
H = 3600.0
D = 86400.0

# --------------------------------------------------------------------------
# vocab
FIRST = [
    "Julien",
    "Thomas",
    "Nicolas",
    "Kevin",
    "Maxime",
    "Antoine",
    "Romain",
    "Alexandre",
    "Hugo",
    "Lucas",
    "Quentin",
    "Mathieu",
    "Pierre",
    "Sébastien",
    "Florian",
    "Julie",
    "Camille",
    "Léa",
    "Manon",
    "Sarah",
    "Chloé",
    "Marine",
    "Laura",
    "Pauline",
    "Émilie",
    "Inès",
    "Yanis",
    "Mehdi",
    "Karim",
    "Sofiane",
    "Bastien",
    "Jérôme",
    "Arnaud",
    "Cédric",
    "Damien",
    "Loïc",
    "Benoît",
    "Fabien",
    "Guillaume",
    "Clément",
    "Théo",
    "Enzo",
    "Nathan",
    "Louis",
    "Baptiste",
]
PLACES = (
    "au bar",
    "à la soirée de Marc",
    "au concert",
    "dans le métro",
    "à la fac",
    "au Macumba",
    "à la fête de la musique",
    "au mariage de Clara",
    "chez Sophie",
    "au festival",
    "à la salle de sport",
    "au karaoké",
    "à la terrasse du Zinc",
    "au boulot",
    "en boîte",
    "à l'anniversaire de Léo",
    "au supermarché",
    "dans le train",
)
WHEN = (
    "hier soir",
    "samedi",
    "ce soir",
    "tout à l'heure",
    "vendredi soir",
    "la semaine dernière",
    "cet après-midi",
    "l'autre soir",
    "dimanche",
)
FOLLOW = [
    "merci",
    "Merci",
    "ok",
    "Ok...",
    "?",
    "??",
    "c'est qui ?",
    "Qui êtes-vous ?",
    "mdr",
    "ah d'accord",
    "je comprends pas",
    "C'est une blague ?",
    "sérieux ?",
    "ah ok",
    "Oups pardon",
    "ah la honte 😅",
    "bien joué",
    "merci pour l'info",
    "d'accord merci",
    "Elle m'a donné un faux numéro ??",
    "ok je vois",
    "lol",
    "top",
    "👍",
    "😂",
    "Vous êtes qui en fait ?",
    "c'est un bot ?",
    "bon ben tant pis",
    "ça marche",
]
STOPS = ["STOP", "Stop", "stop", "ARRET", "STOP SMS"]
CURIOUS = [
    "Bonjour",
    "bonjour",
    "Coucou",
    "coucou",
    "?",
    "👋",
    "Salut",
    "salut !",
    "Allô ?",
    "Test",
    "test",
    "Hello",
    "Bonsoir",
    "C'est vrai que vous répondez ?",
    "Ça marche vraiment ?",
    "Bonjour, je viens de vous entendre",
    "bravo pour l'initiative",
    "Super idée !",
    "Bonjour je teste 😊",
    "on m'a dit d'écrire ici",
    "Bonjour, c'est pour l'anti-relous ?",
    "yo",
    "😂",
    "💪",
    "❤️",
    "Bravo !",
    "Je teste par curiosité",
    "c'est génial",
    "Bonjour, c'est quoi ce numéro ?",
    "Ma fille m'a donné ce numéro",
    "Hey",
    "Respect pour ce que vous faites",
    "Bonsoir, je voulais juste voir la réponse",
    "Bonjour, est-ce que c'est gratuit ?",
    "je relaie !",
    "Salut 👋",
    "…",
    "Oui ?",
]


def brushoff(rng):
    n = rng.choice(FIRST)
    r = rng.random()
    if r < 0.3:
        return f"Salut c'est {n}, on s'est vus {rng.choice(PLACES)} {rng.choice(WHEN)}"
    if r < 0.45:
        return f"Coucou c'est {n} {rng.choice(['😊', '', '!', ' :)', ''])}".strip()
    if r < 0.55:
        return f"Hey, {n} {rng.choice(PLACES)}, tu te souviens ?"
    if r < 0.65:
        return rng.choice(
            [
                "Salut !",
                "Coucou",
                "Hey",
                "Bonsoir",
                "Yo",
                "Salut ça va ?",
                "cc",
                "slt",
                "Salut toi",
                "Coucou 😘",
                "Salut, bien rentrée ?",
            ]
        )
    if r < 0.75:
        return f"Bonsoir, c'est {n}. Tu es bien rentrée ?"
    if r < 0.85:
        return f"Slt c {n} {rng.choice(PLACES)} {rng.choice(WHEN)} 😉"
    hello = rng.choice(["Salut", "Hello", "Coucou"])
    who = rng.choice(["", "la jolie ", "miss ", "toi "])
    return f"{hello} {who}c'est {n}, on se revoit quand ?"


# --------------------------------------------------------------------------
class World:
    def __init__(self, name, seed, span_days):
        self.name = name
        self.rng = random.Random(f"rt3:{name}:{seed}")
        self.span = span_days * D
        self.msgs = []
        self.used = set()
        self.n = 0

    # numbers -------------------------------------------------------------
    def number(self, plan="fr"):
        rng = self.rng
        while True:
            if plan == "fr":
                num = "+33" + rng.choice("67") + "".join(rng.choice("0123456789") for _ in range(8))
                if num.startswith("+3375"):
                    continue
            elif plan == "be":
                num = (
                    "+324"
                    + rng.choice("6789")
                    + "".join(rng.choice("0123456789") for _ in range(7))
                )
            elif plan == "ch":
                num = (
                    "+417"
                    + rng.choice("56789")
                    + "".join(rng.choice("0123456789") for _ in range(7))
                )
            elif plan == "ca":
                num = (
                    "+1"
                    + rng.choice(["514", "438", "450", "418", "581"])
                    + rng.choice("23456789")
                    + "".join(rng.choice("0123456789") for _ in range(6))
                )
            elif plan == "uk":
                num = "+447" + "".join(rng.choice("0123456789") for _ in range(9))
            elif plan == "es":
                num = "+346" + "".join(rng.choice("0123456789") for _ in range(8))
            elif plan == "de":
                num = "+4915" + "".join(rng.choice("0123456789") for _ in range(9))
            elif plan == "ma":
                num = "+2126" + "".join(rng.choice("0123456789") for _ in range(8))
            else:
                raise ValueError(plan)
            if num not in self.used:
                self.used.add(num)
                return num

    def mixed_plan(self, foreign=0.04):
        r = self.rng.random()
        if r < foreign:
            return self.rng.choice(["be", "be", "ch", "ca"])
        return "fr"

    def add(self, t, frm, body, label):
        if 0 <= t < self.span:
            self.msgs.append((t, self.n, frm, body, label))
            self.n += 1

    # organic background ------------------------------------------------
    def hour_weight(self, t):
        h = (t % D) / H
        wd = int(t // D) % 7
        # night trough around 4 am, lunch bump, evening peak ~ 21-23 h, late-night bar hours
        base = (
            0.04 + 0.5 * math.exp(-((h - 12.5) ** 2) / 3) + 1.0 * math.exp(-((h - 21.5) ** 2) / 6)
        )
        base += 0.35 * math.exp(-((h - 1.0) ** 2) / 1.5) + 0.35 * math.exp(-((h - 25.0) ** 2) / 1.5)
        if wd >= 5:
            base *= 1.4
        return base

    def sample_hourly(self, t0, t1):
        rng = self.rng
        while True:
            t = rng.uniform(t0, t1)
            if rng.random() * 1.9 < self.hour_weight(t):
                return t

    def genuine(self, t, first, plan=None, follow=0.35, stop=0.01, label="legit", extra=None):
        """One genuine sender: first text, sometimes replies after the auto-reply."""
        rng = self.rng
        num = self.number(plan or self.mixed_plan())
        self.add(t, num, first, label)
        k = 0
        tt = t
        p = follow
        while rng.random() < p and k < 3:
            tt += rng.choice([rng.uniform(20, 240), rng.uniform(240, 3600)])
            if extra and rng.random() < 0.4:
                self.add(tt, num, rng.choice(extra), label)
            else:
                self.add(tt, num, rng.choice(FOLLOW), label)
            k += 1
            p *= 0.45
        if rng.random() < stop:
            self.add(tt + rng.uniform(300, 2 * D), num, rng.choice(STOPS), label)
        return num

    def organic(self, per_day):
        n = int(per_day * self.span / D)
        for _ in range(n):
            self.genuine(self.sample_hourly(0, self.span), brushoff(self.rng))

    def surge(
        self,
        t0,
        n,
        rise,
        decay,
        bodies,
        plan=None,
        follow=0.3,
        extra=None,
        verbatim=None,
        verbatim_share=0.0,
    ):
        """A genuine surge: n curious strangers, rise/decay shaped (gamma-like)."""
        rng = self.rng
        for _ in range(n):
            dt = rng.uniform(0, rise) if rng.random() < 0.2 else rise + rng.expovariate(1 / decay)
            if verbatim and rng.random() < verbatim_share:
                b = verbatim(rng)
            else:
                b = bodies(rng) if callable(bodies) else rng.choice(bodies)
            self.genuine(t0 + dt, b, plan=plan, follow=follow, extra=extra)

    def write(self, path):
        self.msgs.sort(key=lambda m: (round(m[0], 3), m[1]))
        labels = {}
        with open(path, "w", encoding="utf-8") as f:
            for t, _, frm, body, label in self.msgs:
                assert labels.setdefault(frm, label) == label, frm
                f.write(
                    json.dumps(
                        {"t": round(t, 3), "from": frm, "to": TO, "body": body, "label": label},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        return len(self.msgs)


def curious_body(rng):
    b = rng.choice(CURIOUS)
    if rng.random() < 0.15:
        b = b + rng.choice([" !", " 🙂", "?", " 👍", " hihi", " :)"])
    return b


# --------------------------------------------------------------------------
# raid vocabulary (the 18-25 forum style)
INSULTS = [
    "ta gueule",
    "féminazie",
    "sale féministe",
    "ISSOU",
    "ayaaa",
    "RISITAS",
    "el famoso numéro",
    "t'es qu'une clown",
    "va te faire voir",
    "connasse",
    "ferme-la",
    "cheh",
    "mdrrr la honte",
    "le 18-25 vous salue",
    "ça raid ?",
    "JVC EN FORCE",
    "ahi",
    "sale relou toi-même",
    "boloss",
    "t'as cru quoi",
    "nique ta race",
    "grosse conne",
    "supprime ton numéro",
    "on est des milliers",
    "tu vas payer chaque SMS 😂",
    "victime",
    "ratio",
    "la chancla",
    "vous allez couler",
    "pleure",
    "les relous c'est nous",
    "féministe de merde",
    "ton asso va faire faillite",
    "16 centimes le SMS ahah",
    "raid en cours",
    "c'est perdu",
    "DEHORS",
    "ma gueule",
    "dommage",
    "tchoin",
]
EMOJI_I = ["😂", "🤡", "🖕", "💩", "😭", "🤣", "🐷", "🍆", "🔥", "😈"]


def insult(rng):
    b = rng.choice(INSULTS)
    r = rng.random()
    if r < 0.25:
        b = b.upper()
    elif r < 0.4:
        b += " " + rng.choice(EMOJI_I) * rng.randint(1, 4)
    elif r < 0.5:
        b += " " + rng.choice(INSULTS)
    return b


# ==========================================================================
# worlds
def w_radio_morning(seed=11):
    """7:40 am radio interview (Tuesday), a podcast re-share drives a 2nd surge next day."""
    w = World("radio_morning", seed, 4)
    w.organic(120)
    t0 = 1 * D + 7 * H + 40 * 60
    w.surge(t0, 5200, rise=180, decay=1500, bodies=curious_body, follow=0.3)
    # commuters keep texting during the day, slower
    w.surge(t0 + 2 * H, 900, rise=600, decay=4 * H, bodies=curious_body, follow=0.25)
    # next morning: the podcast / a replay on another station at 8:15
    w.surge(2 * D + 8 * H + 15 * 60, 2600, rise=300, decay=2400, bodies=curious_body, follow=0.3)
    return w


TIKTOK_QUOTE = [
    "c'est vrai que vous répondez ?",
    "C'est vrai que vous répondez ?",
    "c'est vrai que vous repondez ?",
    "c'est vrai que vous répondez ??",
]


def w_tiktok_reshares(seed=12):
    """A TikTok goes viral over 3 days with 4 re-shares; many viewers send the caption
    quote verbatim; francophone viewers from BE/CH/QC."""
    w = World("tiktok_reshares", seed, 5)
    w.organic(100)
    rng = w.rng

    def plan_mix():
        r = rng.random()
        return "fr" if r < 0.78 else ("be" if r < 0.88 else ("ch" if r < 0.94 else "ca"))

    def body(r):
        return curious_body(r)

    def verb(r):
        return r.choice(TIKTOK_QUOTE)

    # post Monday 18:00, re-shares by bigger accounts
    for t0, n in [
        (18 * H, 2500),
        (1 * D + 12 * H, 3500),
        (1 * D + 21 * H, 4500),
        (2 * D + 19 * H, 3000),
        (3 * D + 17 * H, 1500),
    ]:
        for _ in range(n):
            dt = rng.expovariate(1 / 5400) + rng.uniform(0, 600)
            t = t0 + dt
            # people do not watch TikTok at 4 am as much: thin out the night
            if w.hour_weight(t) < 0.15 and rng.random() < 0.6:
                t += 6 * H
            b = verb(rng) if rng.random() < 0.45 else body(rng)
            w.genuine(
                t,
                b,
                plan=plan_mix(),
                follow=0.3,
                extra=["Je viens de TikTok", "vu sur tiktok 😂", "c'est ouf", "ça marche !"],
            )
    return w


HOMEWORK = [
    (
        "Bonjour, nous sommes la classe de 4eB du collège Jean Moulin, on fait un exposé sur le "
        "harcèlement de rue"
    ),
    "Bonjour, classe de 2nde 3, lycée Victor Hugo, exposé EMC sur le harcèlement",
    "Bonjour c'est pour le devoir d'EMC de Mme Martin",
    "Bonjour, on est la 3eA, notre prof nous a demandé de tester le numéro anti-relous",
    (
        "Bonjour ! Classe de 1ère ES, exposé sur les violences sexistes, est-ce qu'on peut vous "
        "poser des questions ?"
    ),
]


def w_school_classes(seed=13):
    """Teachers use the number in class: each class (~28 pupils) texts the same homework
    phrase verbatim within 10 minutes, pupils then ask questions / send 'mdr'. 40 classes
    over a school week (Mon-Fri, 8h-17h) + organic."""
    w = World("school_classes", seed, 7)
    w.organic(150)
    rng = w.rng
    extra = [
        "c'est pour un exposé",
        "vous êtes combien dans l'asso ?",
        "merci beaucoup !",
        "Est-ce que c'est un robot qui répond ?",
        "mdrrr",
        "c bon g reçu",
        "ok merci madame",
        "on peut avoir des chiffres ?",
        "ça fonctionne",
        "😂😂",
    ]
    for _c in range(60):
        day = rng.randrange(0, 5)
        t0 = day * D + rng.choice([8, 9, 10, 11, 13.5, 14.5, 15.5, 16]) * H + rng.uniform(0, 1800)
        phrase = rng.choice(HOMEWORK)
        for _ in range(rng.randint(22, 32)):
            b = phrase if rng.random() < 0.8 else phrase.lower()
            if rng.random() < 0.1:
                b = b + " 😊"
            w.genuine(t0 + rng.uniform(0, 600), b, follow=0.45, extra=extra, plan="fr")
    return w


def w_insult_trio(seed=14):
    """Forum raid where each participant sends 2-3 short *different* insults minutes apart;
    over an evening with organic background."""
    w = World("insult_trio", seed, 3)
    w.organic(150)
    rng = w.rng
    t0 = 1 * D + 21 * H
    for _ in range(2200):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 2400) + rng.uniform(0, 300)
        k = rng.choice([2, 2, 3, 3, 3])
        seen = set()
        for _ in range(k):
            b = insult(rng)
            while b in seen:
                b = insult(rng)
            seen.add(b)
            w.add(t, num, b, "raid")
            t += rng.uniform(60, 600)
    return w


def w_forum_reposts_6h(seed=15):
    """The raid link is re-posted ("up") every 6 h for 4 days: bursts of fresh raiders,
    a minority of veterans come back each burst. Each burst ~ 120-300 raiders, 1-5 msgs."""
    w = World("forum_reposts_6h", seed, 5)
    w.organic(140)
    rng = w.rng
    veterans = []
    for b in range(16):
        t0 = 10 * H + b * 6 * H + rng.uniform(-900, 900)
        hw = w.hour_weight(t0)
        n = int(rng.randint(120, 300) * (0.4 + hw))
        for _ in range(n):
            if veterans and rng.random() < 0.15:
                num = rng.choice(veterans)
            else:
                num = w.number("fr")
                veterans.append(num)
            t = t0 + rng.expovariate(1 / 900)
            for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 5])):
                w.add(t, num, insult(rng), "raid")
                t += rng.uniform(10, 240)
    return w


def w_mimic_repeat(seed=16, raiders=1500, days=3, name="mimic_repeat"):
    """Raiders paste genuine-looking brush-off texts ("Salut c'est Julien...") but, being
    raiders, each sends 3-8 of them over an evening from their own phone."""
    w = World(name, seed, days)
    w.organic(200)
    rng = w.rng
    t0 = 1 * D + 20 * H
    for _ in range(raiders):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 3000)
        for _ in range(rng.randint(3, 8)):
            w.add(t, num, brushoff(rng), "raid")
            t += rng.uniform(30, 900)
    return w


def w_raid_grows_in_surge(seed=17):
    """A TV morning show surge (Tuesday 9:00); a raid starts slowly inside it (a few
    raiders who saw the show) and grows over 6 h as the forum thread climbs."""
    w = World("raid_grows_in_surge", seed, 3)
    w.organic(150)
    rng = w.rng
    t0 = 1 * D + 9 * H
    w.surge(t0, 6000, rise=300, decay=2700, bodies=curious_body, follow=0.3)
    # raid: intensity grows exponentially from t0+10min over 6 h; 2500 raiders
    for _ in range(2500):
        # inverse-CDF of exp growth on [0, 6h]
        u = rng.random()
        k = 1 / 4000
        dt = math.log(1 + u * (math.exp(k * 6 * H) - 1)) / k
        num = w.number("fr")
        t = t0 + 600 + dt
        for _ in range(min(int(rng.paretovariate(1.6)), 40)):
            w.add(t, num, insult(rng) if rng.random() < 0.7 else curious_body(rng), "raid")
            t += rng.uniform(5, 180)
    return w


MULTI = {
    "en": [
        "shut up",
        "lol feminists",
        "cry more",
        "get rekt",
        "ur number is public now",
        "L + ratio",
        "imagine paying for sms",
        "👋 from 4chan",
    ],
    "es": [
        "cállate",
        "feminazi",
        "jajaja",
        "vete a la mierda",
        "saludos desde forocoches",
        "que pesada",
    ],
    "de": ["halt die klappe", "lol", "grüße aus dem internet", "heul doch", "feministin"],
    "ar": ["اسكتي", "ههههه", "يا حمارة", "😂😂😂"],
    "it": ["stai zitta", "ahahah", "saluti dall'italia", "vaffanculo"],
    "pt": ["cala a boca", "kkkkkkk", "feminista chata"],
}


def w_multilang_raid(seed=18):
    """The number leaks on an international meme board: raiders in EN/ES/DE/AR/IT/PT/FR,
    from foreign and French numbers, mixed inside a wave; genuine francophone visitors too."""
    w = World("multilang_raid", seed, 4)
    w.organic(160)
    rng = w.rng
    # genuine foreign francophones
    for _ in range(300):
        w.genuine(
            w.sample_hourly(0, w.span), curious_body(rng), plan=rng.choice(["be", "ch", "ca"])
        )
    langs = list(MULTI)
    plans = {
        "en": ["uk", "ca", "fr"],
        "es": ["es", "fr"],
        "de": ["de", "ch"],
        "ar": ["ma", "fr", "be"],
        "it": ["ch", "fr"],
        "pt": ["fr", "ca"],
    }
    for _wave, (t0, n) in enumerate(
        [(1 * D + 22 * H, 1400), (2 * D + 15 * H, 900), (2 * D + 23 * H, 700)]
    ):
        for _ in range(n):
            lang = rng.choice([*langs, "fr", "fr"])
            num = w.number(rng.choice(plans.get(lang, ["fr"])))
            t = t0 + rng.expovariate(1 / 1800)
            for _ in range(rng.choice([1, 1, 2, 3, 4, 6])):
                b = insult(rng) if lang == "fr" else rng.choice(MULTI[lang])
                if rng.random() < 0.3:
                    b = b + " " + rng.choice(EMOJI_I)
                w.add(t, num, b, "raid")
                t += rng.uniform(5, 300)
    return w


LONG = [
    (
        "Écoute moi bien toi et ton asso de féministes hystériques, on est plusieurs milliers sur"
        " le forum et on va vous envoyer des SMS jusqu'à ce que votre numéro soit en"
        " faillite 😂😂😂"
        " chaque réponse vous coûte de l'argent et on le sait très bien 🤡🤡"
    ),
    (
        "Bonjour madame la féministe 🙋‍♂️ je voulais vous dire que votre initiative est "
        "complètement ridicule, les hommes ont le droit de draguer et vous n'avez rien compris à "
        "la vie, allez plutôt vous occuper de vrais problèmes au lieu de faire la morale à tout "
        "le monde 🙄🙄🙄"
    ),
    (
        "Il était une fois une association qui pensait pouvoir faire taire les hommes avec un "
        "numéro bidon 📱 mais c'était sans compter sur le 18-25 qui veillait 👀 et qui décida de "
        "lui envoyer autant de messages que possible, jour et nuit, pour que la facture monte "
        "monte monte 📈💸"
    ),
    "🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡🤡",
]
GENUINE_LONG = [
    (
        "Bonjour, je voulais vous remercier pour votre initiative. Il m'est arrivé exactement ça "
        "la semaine dernière dans le métro, un type qui insistait pour avoir mon numéro, je ne "
        "savais pas comment m'en débarrasser 😔 maintenant je donnerai le vôtre !"
    ),
    (
        "Salut c'est Julien, on s'est croisés samedi à la soirée chez Marc, je sais pas si c'est "
        "le bon numéro mais j'ai passé une super soirée avec toi, ça te dirait qu'on se revoie "
        "autour d'un verre cette semaine ? 😊🍷"
    ),
    (
        "Bonsoir, je suis prof de collège et j'aimerais présenter votre numéro à mes élèves de 3e"
        " dans le cadre d'un cours sur le harcèlement, est-ce que vous avez des ressources ou une"
        " affiche à partager ? Merci d'avance 🙏"
    ),
]


def w_long_ucs2(seed=19):
    """Raiders paste long emoji-heavy messages (3+ UCS-2 segments) with small edits;
    genuine senders sometimes write long emoji messages too."""
    w = World("long_ucs2", seed, 3)
    w.organic(150)
    rng = w.rng
    for _ in range(350):
        b = rng.choice(GENUINE_LONG)
        if rng.random() < 0.5:
            b = b.replace("Julien", rng.choice(FIRST)).replace("Marc", rng.choice(FIRST))
        w.genuine(w.sample_hourly(0, w.span), b)
    t0 = 1 * D + 21 * H
    for _ in range(1300):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 2000)
        for _ in range(rng.choice([1, 2, 3, 4, 6, 8])):
            b = rng.choice(LONG)
            if rng.random() < 0.5:
                b = b + " " + rng.choice(EMOJI_I) * rng.randint(1, 6)
            if rng.random() < 0.3:
                b = rng.choice(["", "Re: ", "ENCORE: "]) + b
            w.add(t, num, b, "raid")
            t += rng.uniform(20, 400)
    return w


def w_roundrobin20(seed=20):
    """A small group owns 20 prepaid SIMs and sends round-robin across them for 5 days,
    one text every 1-6 minutes while awake (10 h - 2 h)."""
    w = World("roundrobin20", seed, 6)
    w.organic(180)
    rng = w.rng
    sims = [w.number("fr") for _ in range(20)]
    i = 0
    t = 1 * D + 10 * H
    while t < 6 * D:
        h = (t % D) / H
        if 2 <= h < 10:
            t = (t // D) * D + 10 * H + rng.uniform(0, 1800)
            continue
        w.add(t, sims[i % 20], insult(rng) if rng.random() < 0.8 else rng.choice(CURIOUS), "raid")
        i += 1
        t += rng.uniform(60, 360)
    return w


def w_night_raid_3am(seed=21):
    """Insomniac raiders hit only between 2:30 and 4:30 for 5 nights, when genuine traffic is
    near zero; half are new each night, the rest return; 1-12 msgs each."""
    w = World("night_raid_3am", seed, 6)
    w.organic(200)
    rng = w.rng
    pool = []
    for night in range(1, 6):
        n = rng.randint(150, 350)
        for _ in range(n):
            if pool and rng.random() < 0.5:
                num = rng.choice(pool)
            else:
                num = w.number("fr")
                pool.append(num)
            t = night * D + 2.5 * H + rng.uniform(0, 2 * H)
            for _ in range(rng.randint(1, 12)):
                w.add(t, num, insult(rng), "raid")
                t += rng.uniform(5, 240)
    return w


def w_numbered_spam(seed=22):
    """Raiders number their texts ("spam 1", "spam 2"...), each counting from 1, to show
    off on the forum; counts up to a few hundred."""
    w = World("numbered_spam", seed, 3)
    w.organic(200)
    rng = w.rng
    t0 = 1 * D + 20 * H + 30 * 60
    fmt = ["spam {}", "SPAM {}", "message n°{}", "{}", "raid {}", "{} 😂", "numéro {} lol", "#{}"]
    for _ in range(700):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 3600)
        f = rng.choice(fmt)
        k = min(int(rng.paretovariate(1.1)) + 1, 400)
        for i in range(1, k + 1):
            w.add(t, num, f.format(i), "raid")
            t += rng.uniform(2, 40)
    return w


def w_tv_plus_spike(seed=23):
    """Genuine 8 pm TV news surge (slow decay over hours) + a raid that is a sharp 15-minute
    spike of one-to-three message raiders at 20:20, and a second spike at 23:00."""
    w = World("tv_plus_spike", seed, 3)
    w.organic(150)
    rng = w.rng
    t0 = 1 * D + 20 * H
    w.surge(t0, 7000, rise=120, decay=5400, bodies=curious_body, follow=0.3)
    for ts, n in [(t0 + 20 * 60, 1800), (t0 + 3 * H, 900)]:
        for _ in range(n):
            num = w.number("fr")
            t = ts + rng.uniform(0, 900)
            for _ in range(rng.choice([1, 1, 2, 3])):
                w.add(t, num, insult(rng), "raid")
                t += rng.uniform(15, 120)
    return w


def w_emoji_short_genuine(seed=24):
    """Genuine-only: a celebrity Instagram story ("envoyez juste un emoji à ce numéro"):
    thousands of genuine fans send a single emoji or 1-3 chars, many twice; next day repeat."""
    w = World("emoji_short_genuine", seed, 3)
    w.organic(150)
    rng = w.rng
    shorts = [
        "❤️",
        "💜",
        "👋",
        "🔥",
        "💪",
        "✊",
        "?",
        "!",
        "coucou",
        "cc",
        "ok",
        "👍",
        "😘",
        "🙌",
        "♀️",
        "✨",
    ]
    for t0, n in [(19 * H, 5000), (1 * D + 19 * H + 1800, 3000)]:
        for _ in range(n):
            w.genuine(
                t0 + rng.expovariate(1 / 1800),
                rng.choice(shorts),
                follow=0.4,
                extra=[*shorts, "merci ❤️", "trop bien"],
                plan=w.mixed_plan(0.08),
            )
    return w


def _quote_raiders(w, q, t0, raiders, *, spread_s, most):
    """Raiders who open with the quote ``q``, then insult, 2 to ``most`` messages each;
    3 in 10 of their later messages are the quote again."""
    rng = w.rng
    for _ in range(raiders):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / spread_s)
        for i in range(rng.randint(2, most)):
            w.add(t, num, q if i == 0 or rng.random() < 0.3 else insult(rng), "raid")
            t += rng.uniform(10, 200)


def w_verbatim_article(seed=25):
    """A news site article quotes the number and a sample text; many readers send the exact
    quote ("Bonjour, c'est vrai que vous répondez ?"); steady over the working day across
    2 days; a small forum raid (120 raiders) pastes the same quote mixed with insults."""
    w = World("verbatim_article", seed, 4)
    w.organic(150)
    rng = w.rng
    q = "Bonjour, c'est vrai que vous répondez ?"
    for d in (1, 2):
        for _ in range(3500 if d == 1 else 1800):
            t = d * D + 7 * H + rng.betavariate(2, 3) * 15 * H
            b = q if rng.random() < 0.6 else curious_body(rng)
            w.genuine(t, b, follow=0.3)
    t0 = 1 * D + 13 * H
    _quote_raiders(w, q, t0, 120, spread_s=1800, most=15)
    return w


def w_mimic_fixed(seed=26):
    """A forum post tells raiders what to paste: 4 fixed 'genuine-looking' texts
    ("Salut c'est Julien, on s'est vus au bar hier soir"), each raider sends 3-8 of them
    (sometimes with a name swapped); genuine organic traffic goes on for 5 more days."""
    w = World("mimic_fixed", seed, 6)
    w.organic(200)
    rng = w.rng
    fixed = [
        "Salut c'est Julien, on s'est vus au bar hier soir",
        "Coucou c'est Kevin 😊",
        "Salut ça va ?",
        "Bonsoir, c'est Thomas. Tu es bien rentrée ?",
    ]
    t0 = 1 * D + 20 * H
    for _ in range(1500):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 3000)
        for _ in range(rng.randint(3, 8)):
            b = rng.choice(fixed)
            if rng.random() < 0.2:
                b = b.replace("Julien", rng.choice(FIRST)).replace("Kevin", rng.choice(FIRST))
            w.add(t, num, b, "raid")
            t += rng.uniform(30, 900)
    return w


def w_mimic_long_tail(seed=27):
    """Same as mimic_repeat (raiders write their own brush-off style texts, 3-8 each), but
    the world lasts 7 days and the raid is on day 1 only: do genuine senders on days 2-6
    still get answered?"""
    return w_mimic_repeat(seed, raiders=800, days=7, name="mimic_long_tail")


def w_insult_pair_slow(seed=28):
    """Forum raiders each send exactly 2 insults from their own phone, the second 10-90
    minutes after the first (they come back to the thread), over an evening."""
    w = World("insult_pair_slow", seed, 3)
    w.organic(150)
    rng = w.rng
    t0 = 1 * D + 21 * H
    for _ in range(2000):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 3600)
        a = insult(rng)
        b = insult(rng)
        w.add(t, num, a, "raid")
        w.add(t + rng.uniform(600, 5400), num, b, "raid")
    return w


def w_quote_poison_big(seed=29, raiders=900, name="quote_poison_big"):
    """A news article quotes 'Bonjour, c'est vrai que vous répondez ?'; genuine readers send it
    verbatim all day; a forum of 900 raiders opens with the same quote then insults (2-10 msgs)."""
    w = World(name, seed, 3)
    w.organic(150)
    rng = w.rng
    q = "Bonjour, c'est vrai que vous répondez ?"
    for _ in range(4000):
        t = 1 * D + 7 * H + rng.betavariate(2, 3) * 15 * H
        b = q if rng.random() < 0.6 else curious_body(rng)
        w.genuine(t, b, follow=0.3)
    t0 = 1 * D + 12 * H
    _quote_raiders(w, q, t0, raiders, spread_s=2400, most=10)
    return w


def w_angry_genuine(seed=30):
    """No raid. Men given the number as a brush-off realise it and answer back angrily,
    several texts each (some insult the sender), over a week of organic traffic with a
    local-radio mention on day 3."""
    w = World("angry_genuine", seed, 7)
    rng = w.rng
    angry = [
        "t'es sérieuse ?",
        "connasse",
        "pourquoi tu m'as donné ce numéro ?",
        "c'est nul",
        "va te faire voir",
        "t'aurais pu juste dire non",
        "sympa...",
        "grosse conne",
        "ok j'ai compris",
        "ridicule",
        "je vais l'appeler quand même",
        "pff",
        "ta gueule",
        "c'est quoi cette asso de féministes",
        "t'es une clown",
        "bravo la honte",
    ]
    for _ in range(260 * 7):
        t = w.sample_hourly(0, w.span)
        num = w.number("fr")
        w.add(t, num, brushoff(rng), "legit")
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 5)):
                t += rng.uniform(30, 900)
                w.add(t, num, rng.choice(angry), "legit")
    w.surge(3 * D + 8 * H, 1200, rise=300, decay=1800, bodies=curious_body)
    return w


RAID_FIRST = [
    "Brandon",
    "Dylan",
    "Jordan",
    "Kylian",
    "Steven",
    "Jean-Kévin",
    "Rayan",
    "Ryan",
    "Jason",
    "Killian",
]
RAID_PLACES = ("au Quick", "à la LAN", "au skatepark", "au PMU", "à la piscine", "au lasergame")


def w_mimic_disjoint(seed=31):
    """Like mimic_long_tail, but raiders' brush-off texts use names and places no genuine
    sender uses (same sentence frames): is the damage from exact copies or from frames?"""
    w = World("mimic_disjoint", seed, 5)
    w.organic(200)
    rng = w.rng
    t0 = 1 * D + 20 * H
    for _ in range(800):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 3000)
        for _ in range(rng.randint(3, 8)):
            n = rng.choice(RAID_FIRST)
            b = rng.choice(
                [
                    f"Salut c'est {n}, on s'est vus {rng.choice(RAID_PLACES)} {rng.choice(WHEN)}",
                    f"Hey, {n} {rng.choice(RAID_PLACES)}, tu te souviens ?",
                    f"Bonsoir, c'est {n}. Tu es bien rentrée ?",
                    f"Slt c {n} {rng.choice(RAID_PLACES)} {rng.choice(WHEN)} 😉",
                ]
            )
            w.add(t, num, b, "raid")
            t += rng.uniform(30, 900)
    return w


def w_quote_poison_small(seed=32):
    """quote_poison_big with 250 raiders instead of 900 (about 6 % of the quote senders)."""
    return w_quote_poison_big(seed, raiders=250, name="quote_poison_small")


SHORT_TOKENS = [
    "?",
    "coucou",
    "allo",
    "Allô ?",
    "salut",
    "ok",
    "test",
    "réponds",
    "hello",
    "??",
    "cc",
    "yo",
]


def w_short_token_raid(seed=33):
    """Low-effort raiders just spam short tokens ("?", "coucou", "allo", "test") 5-40 times
    each, on the evening after a local radio mention whose listeners send the same kind of
    short curious texts."""
    w = World("short_token_raid", seed, 4)
    w.organic(160)
    rng = w.rng
    w.surge(1 * D + 18 * H, 2500, rise=300, decay=3600, bodies=curious_body, follow=0.3)
    t0 = 1 * D + 21 * H
    for _ in range(600):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 3600)
        for _ in range(rng.randint(5, 40)):
            w.add(t, num, rng.choice(SHORT_TOKENS), "raid")
            t += rng.uniform(3, 120)
    # next day: the radio replays the segment
    w.surge(2 * D + 12 * H, 1200, rise=300, decay=3600, bodies=curious_body, follow=0.3)
    return w


def w_emoji_mixed(seed=34):
    """A celebrity story asks fans to send an emoji; a rival forum answers with emoji spam
    (🤡💩😂👋🔥), 3-25 per raider, the same evening."""
    w = World("emoji_mixed", seed, 3)
    w.organic(150)
    rng = w.rng
    shorts = ["❤️", "💜", "👋", "🔥", "💪", "✊", "?", "coucou", "👍", "😘", "🙌", "✨", "😂"]
    for _ in range(4000):
        w.genuine(
            19 * H + 1 * D + rng.expovariate(1 / 1800),
            rng.choice(shorts),
            follow=0.35,
            extra=[*shorts, "merci ❤️", "trop bien"],
            plan=w.mixed_plan(0.08),
        )
    spam = ["🤡", "💩", "😂", "👋", "🔥", "🤡🤡🤡", "😂😂", "🖕", "💩💩"]
    t0 = 1 * D + 19 * H + 1800
    for _ in range(700):
        num = w.number("fr")
        t = t0 + rng.expovariate(1 / 2400)
        for _ in range(rng.randint(3, 25)):
            w.add(t, num, rng.choice(spam), "raid")
            t += rng.uniform(3, 90)
    return w


def w_quote_poison_3days(seed=1):
    """A news article quoting 'Bonjour, c'est vrai que vous répondez ?' keeps bringing
    readers for 3 days (2,000 a day, 60 % send the quote verbatim); on day 1 only, 300
    forum raiders open with the same quote, then insult (2-10 msgs each, ~3 h)."""
    w = World("q2", seed, 4)
    w.organic(150)
    rng = w.rng
    q = "Bonjour, c'est vrai que vous répondez ?"
    for d in (1, 2, 3):
        for _ in range(2000):
            t = d * D + 7 * H + rng.betavariate(2, 3) * 15 * H
            w.genuine(t, q if rng.random() < 0.6 else curious_body(rng), follow=0.3)
    _quote_raiders(w, q, 1 * D + 12 * H, 300, spread_s=2400, most=10)
    return w


WORLDS = {
    "radio_morning": w_radio_morning,
    "tiktok_reshares": w_tiktok_reshares,
    "school_classes": w_school_classes,
    "insult_trio": w_insult_trio,
    "forum_reposts_6h": w_forum_reposts_6h,
    "mimic_repeat": w_mimic_repeat,
    "raid_grows_in_surge": w_raid_grows_in_surge,
    "multilang_raid": w_multilang_raid,
    "long_ucs2": w_long_ucs2,
    "roundrobin20": w_roundrobin20,
    "night_raid_3am": w_night_raid_3am,
    "numbered_spam": w_numbered_spam,
    "tv_plus_spike": w_tv_plus_spike,
    "emoji_short_genuine": w_emoji_short_genuine,
    "verbatim_article": w_verbatim_article,
    "mimic_fixed": w_mimic_fixed,
    "mimic_long_tail": w_mimic_long_tail,
    "insult_pair_slow": w_insult_pair_slow,
    "quote_poison_big": w_quote_poison_big,
    "angry_genuine": w_angry_genuine,
    "mimic_disjoint": w_mimic_disjoint,
    "quote_poison_small": w_quote_poison_small,
    "short_token_raid": w_short_token_raid,
    "emoji_mixed": w_emoji_mixed,
    "quote_poison_3days": w_quote_poison_3days,
    # the same generators at other seeds (results vary around the pass line)
    "insult_pair_slow_s1": lambda: w_insult_pair_slow(seed=1),
    "insult_trio_s1": lambda: w_insult_trio(seed=1),
    "tv_plus_spike_s1": lambda: w_tv_plus_spike(seed=1),
}


def main(argv):
    if any(arg.startswith("-") for arg in argv[1:]):  # --help, not a directory
        print("usage: python -m tests.heldout.redteam3 [OUTDIR [WORLD...]]", file=sys.stderr)
        raise SystemExit(0 if argv[1:] in (["-h"], ["--help"]) else 2)
    out = argv[1] if len(argv) > 1 else "worlds"
    names = argv[2:] or list(WORLDS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        w = WORLDS[name]()
        n = w.write(os.path.join(out, name + ".jsonl"))
        print(f"{name}: {n} messages")


if __name__ == "__main__":
    main(sys.argv)
