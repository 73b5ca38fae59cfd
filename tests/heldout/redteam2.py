"""Red team 2: worlds written against the rules as docs/policy.md states them.

A second helper, who read the policy's documentation (as an attacker reads an open-source
tool's) but not its code, wrote these after the first red team's fixes. ``test_redteam.py``
replays some: the raids the defaults still lose are strict xfails there, and
docs/policy.md gives their figures.

Usage: python -m tests.heldout.redteam2 OUTDIR [world ...]     (default: all worlds)
"""

from __future__ import annotations

import os
import sys

from .redteam import (
    LIEUX,
    PRENOMS_F,
    PRENOMS_H,
    QUAND,
    TEMPLATES5,
    VILLES,
    D,
    H,
    World,
    _typo,
    organic_first,
    organic_followup,
    raid_compose,
)

TPL3 = TEMPLATES5[:3]


def light(rng, s):
    """A small, human-looking variation (no homoglyphs, no zero-width chars)."""
    r = rng.random()
    if r < 0.3:
        return s
    if r < 0.6:
        return _typo(rng, s)
    if r < 0.8:
        return s + rng.choice([" !", " !!", " 😂", " 💸", " lol", " mdr"])
    return rng.choice(["", "Salut, ", "Bonsoir, ", "Yo "]) + s[0].lower() + s[1:]


def w1_template_low_repeat(seed=201, repeat_share=0.08):
    """Template raid during the evening: 1800 raiders, each pastes one of 3 templates
    once; `repeat_share` of them paste it a second time 5-40 min later."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 20 * H
    for t in w.surge_times(start, 1800, 600, 3600):
        num = w.number()
        base = rng.choice(TPL3)
        w.add(t, num, light(rng, base), "raid")
        if rng.random() < repeat_share:
            w.add(t + rng.uniform(300, 2400), num, light(rng, base), "raid")
    return w, 3 * D


CHAT = [
    "allô ?",
    "tu réponds pas ?",
    "y a quelqu'un ?",
    "hého",
    "c'est un robot ou quoi",
    "réponds stp",
    "bon alors ?",
    "t'es où",
    "je sais que tu lis",
    "pourquoi tu m'ignores",
    "ça marche ce truc ?",
    "c'est nul",
    "vous êtes qui au juste",
    "j'attends",
    "c'est {n} au fait",
    "je suis à {v}",
    "on se voit {q} ?",
    "t'étais {l} non ?",
    "bisous {f}",
    "ok bon",
    "sérieux ?",
    "toujours rien",
    "j'insiste",
    "lol",
    "t'as peur ?",
    "je vais pas lâcher",
    "encore moi",
    "c'est long",
    "allez !",
    "je vais t'écrire toute la nuit",
    "vas-y réponds",
    "un petit mot ?",
    "coucou toi",
    "tu dors ?",
    "c'est gratuit pour moi 😂",
    "16 centimes de plus",
]


def chat_line(rng):
    s = rng.choice(CHAT).format(
        n=rng.choice(PRENOMS_H),
        f=rng.choice(PRENOMS_F),
        v=rng.choice(VILLES),
        q=rng.choice(QUAND),
        l=rng.choice(LIEUX),
    )
    if rng.random() < 0.4:
        s += rng.choice([" ?", " !", " 🙃", " 😈", " ...", " " + str(rng.randint(1, 99))])
    return _typo(rng, s)


def w2_varied_11(seed=202, n=1200):
    """Surge raid: raiders open with a human-looking first text and then send up to 11
    varied messages each (never repeating their own text) every few minutes."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 21 * H
    for t in w.surge_times(start, n, 300, 1800):
        num = w.number()
        w.add(t, num, organic_first(rng), "raid")
        k = rng.randint(6, 11) - 1
        seen = set()
        for _ in range(k):
            t += rng.uniform(60, 400)
            s = chat_line(rng)
            while s in seen:
                s = chat_line(rng)
            seen.add(s)
            w.add(t, num, s, "raid")
    return w, 3 * D


def w3_blocks12(seed=203, blocks=120, repeat_share=0.3):
    """Rotating virtual numbers in blocks of 12 (one block a day at most), shared
    template; `repeat_share` of each block pastes twice."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 18 * H
    for _b in range(blocks):
        nums = w.block(12)
        t0 = start + rng.random() * 6 * H
        base = rng.choice(TPL3)
        for n in nums:
            t = t0 + rng.uniform(0, 1800)
            w.add(t, n, light(rng, base), "raid")
            if rng.random() < repeat_share:
                w.add(t + rng.uniform(120, 1800), n, light(rng, base), "raid")
    return w, 3 * D


def w4_press_plus_oneshot(seed=204, n_press=3500, n_raid=2500):
    """Genuine TV surge at 20:10 + a raid 15 min later of one-time pasters of 3
    templates (no repeats)."""
    w = World(seed)
    rng = w.rng
    w.organic(2500, 2)
    ps = 1 * D + 20 * H + 10 * 60
    for t in w.surge_times(ps, n_press, 180, 1200):
        num = w.number()
        w.add(t, num, organic_first(rng), "legit")
        r = rng.random()
        for _ in range(0 if r < 0.6 else (1 if r < 0.9 else 2)):
            t += rng.uniform(120, 900)
            w.add(t, num, organic_followup(rng), "legit")
    for t in w.surge_times(ps + 15 * 60, n_raid, 300, 3600):
        w.add(t, w.number(), light(rng, rng.choice(TPL3)), "raid")
    return w, 2 * D + 12 * H


def w5a_optin_cycle(seed=205, n=150):
    """Raiders cycle STOP / START (and variants) to see if opt-in confirmations cost."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 14 * H
    for _ in range(n):
        num = w.number()
        t = start + rng.random() * 4 * H
        w.add(t, num, organic_first(rng), "raid")
        for _ in range(rng.randint(10, 30)):
            t += rng.uniform(30, 300)
            w.add(t, num, rng.choice(["STOP", "ARRET", "stop"]), "raid")
            t += rng.uniform(30, 300)
            w.add(t, num, rng.choice(["START", "start", "Start"]), "raid")
    return w, 3 * D


def w5b_poison_then_cool(seed=206):
    """Hot template cooled by dilution: a raid's template is first made hot by
    repeaters, then thousands of one-time pasters dilute repeaters below 5 %."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    base = TPL3[0]
    s1 = 1 * D + 18 * H
    for _ in range(100):  # phase 1: 100 senders, 40 % repeat -> hot
        num = w.number()
        t = s1 + rng.random() * H
        w.add(t, num, light(rng, base), "raid")
        if rng.random() < 0.4:
            w.add(t + rng.uniform(300, 1200), num, light(rng, base), "raid")
    for _ in range(3000):  # phase 2: diluters, slow drip over 20 h (no surge)
        t = s1 + 2 * H + rng.random() * 20 * H
        w.add(t, w.number(), light(rng, base), "raid")
    return w, 3 * D


def w5c_slow_ramp_repeat(seed=207):
    """Boiling frog with 25 % repeaters, each raider using its own mutated variant of
    one of 3 templates; ramp over 3 days so the baseline follows."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 5)
    for _i in range(4000):
        u = rng.random() ** 0.5
        t = 1 * D + u * 3 * D
        num = w.number()
        base = rng.choice(TPL3)
        w.add(t, num, light(rng, base), "raid")
        if rng.random() < 0.25:
            w.add(t + rng.uniform(600, 3000), num, light(rng, base), "raid")
    return w, 5 * D


def w5d_surge_then_quiet(seed=208):
    """Surge of one-time unique texts held, with 4 % raiders who paste twice while held
    (flagged, just below genuine_below=5 %)."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 21 * H
    for t in w.surge_times(start, 3000, 300, 2400):
        num = w.number()
        s = raid_compose(rng)
        w.add(t, num, s, "raid")
        if rng.random() < 0.04:
            w.add(t + rng.uniform(120, 900), num, s, "raid")
    return w, 3 * D


WORLDS = {
    "w1_rep08": lambda: w1_template_low_repeat(repeat_share=0.08),
    "w1_rep04": lambda: w1_template_low_repeat(seed=211, repeat_share=0.04),
    "w2_varied11": w2_varied_11,
    "w3_blocks12": w3_blocks12,
    "w3_blocks12_norep": lambda: w3_blocks12(seed=213, repeat_share=0.0),
    "w4_press_oneshot": w4_press_plus_oneshot,
    "w5a_optin": w5a_optin_cycle,
    "w5b_cool": w5b_poison_then_cool,
    "w5c_ramp": w5c_slow_ramp_repeat,
    "w5d_4pct": w5d_surge_then_quiet,
}


def main(argv):
    if len(argv) < 2 or any(arg.startswith("-") for arg in argv[1:]):  # --help: no directory
        print("usage: python -m tests.heldout.redteam2 OUTDIR [WORLD...]", file=sys.stderr)
        raise SystemExit(0 if argv[1:] in (["-h"], ["--help"]) else 2)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    names = argv[2:] or list(WORLDS)
    for name in names:
        w, end = WORLDS[name]()
        n = w.write(os.path.join(out, name + ".jsonl"), end=end)
        print(name, n)


def w1x(seed, repeat_share, exact):
    """w1 variant: repeat paste is byte-identical to the sender's first text if exact."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 20 * H
    for t in w.surge_times(start, 1800, 600, 3600):
        num = w.number()
        base = rng.choice(TPL3)
        s = light(rng, base)
        w.add(t, num, s, "raid")
        if rng.random() < repeat_share:
            w.add(t + rng.uniform(300, 2400), num, s if exact else light(rng, base), "raid")
    return w, 3 * D


for _rs in (0.08, 0.10, 0.12, 0.15, 0.20):
    for _ex in (True, False):
        WORLDS[f"w1x_{int(_rs * 100):02d}_{'ex' if _ex else 'lt'}"] = lambda rs=_rs, ex=_ex: w1x(
            221 + int(rs * 100), rs, ex
        )


SHORT = [
    "payez bande de relous",
    "16 centimes 😂",
    "merci le forum",
    "on vous ruine",
    "coucou les relous",
    "facture qui monte 💸",
]


def w6_short(seed=231, n=1800, pastes=(2, 3), gap=(1600, 2400)):
    """Raid of texts under 5 words (below templates.min_words); each raider pastes its
    own short text 2-3 times, 27-40 min apart (never 4 in an hour)."""
    w = World(seed)
    rng = w.rng
    w.organic(3000, 3)
    start = 1 * D + 20 * H
    for t in w.surge_times(start, n, 600, 3600):
        num = w.number()
        s = rng.choice(SHORT)
        for _ in range(rng.randint(*pastes)):
            w.add(t, num, s, "raid")
            t += rng.uniform(*gap)
    return w, 3 * D


WORLDS["w6_short"] = w6_short
WORLDS["w6_short_once"] = lambda: w6_short(seed=232, pastes=(1, 1))


WORLDS["w6_short_s2"] = lambda: w6_short(seed=241, pastes=(3, 3), gap=(1300, 1500))
WORLDS["w1_rep08_s2"] = lambda: w1_template_low_repeat(seed=251, repeat_share=0.08)


if __name__ == "__main__":
    main(sys.argv)
