"""Policy configuration: every defence switchable and tunable from a TOML table.

The table is the ``[policy]`` section of a scenario file, or a standalone policy
file (``--policy FILE`` / ``RAIDSIM_POLICY_FILE``) whose top level is that table.
Unknown keys are errors, so a typo never silently leaves a defence at its default.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from responder.policy.errors import ConfigError, locate, parse_toml, read_utf8
from responder.policy.money import MoneyError, to_micros
from responder.policy.units import finite, parse_duration, shown
from responder.sms import price_micros, reply_text_problem

DEFAULT_REPLY_TEXT = (
    "Bonjour. Ce numero ne repond pas a votre place: la personne qui vous l'a donne "
    "ne souhaitait pas vous donner le sien. Respectez son choix. Non, c'est non."
)

DEFAULT_OPT_OUT = (
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
    "OPT-OUT", "ARRET", "ARRÊT", "REMOVE", "TD", "DESABONNER", "DÉSABONNER",
)
DEFAULT_OPT_IN = ("START", "UNSTOP", "YES")


@dataclass(frozen=True)
class SenderLimit:
    enabled: bool = True
    replies: int = 1
    window_s: float = 30 * 86400.0


# for a policy file that cannot be read (missing, a folder)
POLICY_FILE_HINT = "give the path of a TOML file of policy settings; docs/policy.md lists them"


@dataclass(frozen=True)
class Budget:
    enabled: bool = True
    total_micros: int | None = None
    per_hour_micros: int | None = None


@dataclass(frozen=True)
class Surge:
    """Hold first-contact replies while inbound traffic is abnormal, then release."""

    enabled: bool = True
    window_s: float = 600.0          # short-term rate window
    factor: float = 4.0              # abnormal when short-term rate > factor x baseline...
    floor_new_senders: int = 40      # ...and more new senders than this per window
    baseline_halflife_s: float = 86400.0
    calm_s: float = 1800.0           # rate must stay normal this long to leave raid mode
    observe_s: float = 1200.0        # minimum hold, to watch a sender and its template
    max_hold_s: float = 48 * 3600.0  # a held reply is decided at the latest after this
    genuine_below: float = 0.05      # release clean holds after observe_s while fewer
                                     # than this share of new senders are flagged raiders


@dataclass(frozen=True)
class Templates:
    """Near-duplicate texts across distinct senders (Jaccard over character 4-grams)."""

    enabled: bool = True
    min_words: int = 5
    hot_senders: int = 6             # distinct first-contact senders that make a template hot
    halflife_s: float = 6 * 3600.0
    similarity: float = 0.6          # Jaccard of character 4-grams to join a template
    min_repeat_share: float = 0.1    # repeats per first contact that mark raid behaviour
    hot_ttl_s: float = 3 * 86400.0   # a hot template stays suspect this long
    public_senders: int = 50         # distinct senders who sent it before anyone sent it
    public_after_s: float = 2 * 3600.0  # again, over this long: a public phrase (0: off)


@dataclass(frozen=True)
class Fragments:
    """Phrases (word trigrams) that many senders use and that their senders keep reusing:
    the memes of a raid whose members compose their own insults from shared pieces."""

    enabled: bool = True
    hot_senders: int = 8             # distinct first-contact senders using the phrase
    min_self_repeats: int = 3        # times a sender reused a phrase of his own...
    self_repeat_share: float = 0.1   # ...also as a share of those senders
    min_hot: int = 2                 # hot phrases a message needs to count as raid...
    hot_share: float = 0.34          # ...and the share of its phrases they must make up
    halflife_s: float = 6 * 3600.0
    hot_ttl_s: float = 3 * 86400.0
    public_senders: int = 50         # first contacts who used it before anyone reused it,
    public_after_s: float = 2 * 3600.0  # over this long: a public phrase (0 senders: off)


@dataclass(frozen=True)
class Habit:
    """This number's own senders' habit of sending their words again, learnt while calm:
    the reuse bars of [templates] and [fragments] rise above it."""

    enabled: bool = True
    learn_s: float = 86400.0         # learnt from everything this long after the first message
    halflife_s: float = 12 * 3600.0


@dataclass(frozen=True)
class Evasion:
    """Characters people do not type but filter-dodging scripts do: zero-width spaces,
    and look-alike letters from another script inside a Latin word."""

    enabled: bool = True


@dataclass(frozen=True)
class NumberBlocks:
    """Many new senders from one block of consecutive numbers: rotating virtual numbers."""

    enabled: bool = True
    strip_digits: int = 3
    hot_senders: int = 13
    window_s: float = 86400.0


@dataclass(frozen=True)
class Repeats:
    """A held sender who keeps sending is flooding, not talking."""

    enabled: bool = True
    max_messages: int = 4
    window_s: float = 3600.0


@dataclass(frozen=True)
class Senders:
    reply_to_short_codes: bool = False
    reply_to_alphanumeric: bool = False
    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT
    opt_in_keywords: tuple[str, ...] = DEFAULT_OPT_IN


@dataclass(frozen=True)
class PolicyConfig:
    """Everything the pure policy needs to decide. Built once, shared read-only."""

    name: str = "default"
    reply_text: str = DEFAULT_REPLY_TEXT
    eur_per_segment: Decimal = Decimal("0.16")
    dedup: bool = True
    sender_limit: SenderLimit = field(default_factory=SenderLimit)
    budget: Budget = field(default_factory=Budget)
    surge: Surge = field(default_factory=Surge)
    templates: Templates = field(default_factory=Templates)
    number_blocks: NumberBlocks = field(default_factory=NumberBlocks)
    fragments: Fragments = field(default_factory=Fragments)
    habit: Habit = field(default_factory=Habit)
    evasion: Evasion = field(default_factory=Evasion)
    repeats: Repeats = field(default_factory=Repeats)
    senders: Senders = field(default_factory=Senders)

    @property
    def reply_cost_micros(self) -> int:
        return price_micros(self.reply_text, to_micros(self.eur_per_segment))

    def with_overrides(self, **changes: Any) -> PolicyConfig:
        return replace(self, **changes)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        path: str | Path | None = None,
        text: str | None = None,
        prefix: str = "policy",
        base: PolicyConfig | None = None,
    ) -> PolicyConfig:
        """Build from a parsed TOML table; errors name ``path`` and the offending line."""
        return _build(data, base or cls(), path=path, text=text, prefix=prefix)

    @classmethod
    def load(cls, path: str | Path) -> PolicyConfig:
        """Read a standalone policy file (its top level is the ``[policy]`` table)."""
        file = Path(path)
        text = read_utf8(file, "policy file", hint=POLICY_FILE_HINT)
        data = parse_toml(text, file, hint="a policy file is the [policy] table's keys, "
                          "such as eur_per_segment = \"0.16\" and [budget]")
        if "policy" in data and isinstance(data["policy"], dict):
            # a scenario's [policy] table pasted as it is; anything beside it would be
            # dropped without a word (a [budget] cap above [policy.surge], say)
            beside = [key for key in data if key != "policy"]
            if beside:
                raise ConfigError(
                    f"the file mixes [policy] tables with top-level keys ({', '.join(beside)})"
                    ": the top-level ones would be ignored", path=file,
                    line=locate(text, beside[0]),
                    hint="write the whole file one way: top-level keys and tables "
                    "([budget]), or all of it under [policy] ([policy.budget])")
            data = data["policy"]
            prefix = "policy"
        else:
            prefix = ""
        config = cls.from_mapping(data, path=file, text=text, prefix=prefix)
        if "name" not in data:
            config = replace(config, name=file.stem)  # results and reports name the file
        return config


_SECTIONS: dict[str, type] = {
    "sender_limit": SenderLimit,
    "budget": Budget,
    "surge": Surge,
    "templates": Templates,
    "number_blocks": NumberBlocks,
    "fragments": Fragments,
    "habit": Habit,
    "evasion": Evasion,
    "repeats": Repeats,
    "senders": Senders,
}


def _build(
    data: Mapping[str, Any],
    base: PolicyConfig,
    *,
    path: str | Path | None,
    text: str | None,
    prefix: str,
) -> PolicyConfig:
    def key_path(*parts: str) -> str:
        return ".".join(p for p in (prefix, *parts) if p)

    def fail(dotted: str, message: str, hint: str | None = None,
             example: str | None = None) -> ConfigError:
        return ConfigError(message, path=path, line=locate(text, dotted), hint=hint,
                           example=None if example is None else (dotted, example))

    if not isinstance(data, Mapping):
        raise fail(prefix, f"[{prefix}] must be a table")
    changes: dict[str, Any] = {}
    for key, value in data.items():
        dotted = key_path(key)
        if key == "name":
            changes["name"] = _expect(value, str, dotted, fail)
            if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
                # printed to the terminal (an escape sequence runs there) and written into
                # summary.md, report titles and JUnit XML, as a scenario's name is
                raise fail(dotted, f"{dotted} holds a control character: {value!r}",
                           "the name goes into summaries, report titles and JUnit XML; "
                           "write it in plain text")
        elif key == "reply_text":
            changes["reply_text"] = _expect(value, str, dotted, fail)
            if not changes["reply_text"].strip():
                raise fail(dotted, f"{dotted} is empty: the provider refuses an empty SMS "
                           "(Twilio 21602)", 'write the reply, reply_text = "Bonjour. ..."')
            problem = reply_text_problem(changes["reply_text"])
            if problem is not None:
                raise fail(dotted, f"{dotted} {problem[0]}", problem[1])
        elif key == "eur_per_segment":
            changes["eur_per_segment"] = money_field(value, dotted, fail)
        elif key == "dedup":
            changes["dedup"] = _expect(value, bool, dotted, fail)
        elif key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise fail(dotted, f"{dotted} must be a table", f"write [{dotted}] with keys")
            changes[key] = _section(getattr(base, key), value, dotted, fail)
        else:
            known = ", ".join(["name", "reply_text", "eur_per_segment", "dedup", *_SECTIONS])
            raise fail(dotted, f"unknown policy key {dotted!r}", f"known keys: {known}")
    return replace(base, **changes)


# What each type is called in an error, and a value to show in its hint.
_TYPE_WORDS: dict[type, tuple[str, str]] = {
    int: ("a whole number", "3"), float: ("a number", "0.5"),
    bool: ("true or false", "true"), str: ("a string", '"..."'),
}


def _expect(value: Any, kind: type, dotted: str, fail: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        if not finite(value):  # a 400-digit integer: no float holds it
            raise fail(dotted, f"{dotted} must be a finite number, got {shown(value)}",
                       f"write {dotted.rsplit('.', 1)[-1]} = 0.5")
        return float(value)
    words, example = _TYPE_WORDS.get(kind, (kind.__name__, "..."))
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise fail(dotted, f"{dotted} must be {words}, got {value!r}",
                   f"write {dotted.rsplit('.', 1)[-1]} = {example} (no quotes around numbers "
                   "and booleans)", example=example)
    return value


def money_field(value: Any, dotted: str, fail: Any) -> Decimal:
    """An exact, non-negative amount from a config value; ``fail(dotted, message, hint)``
    builds the error that names the file and line."""
    key = dotted.split(".")[-1]
    if isinstance(value, float):
        raise fail(dotted, f"{dotted} is a float; money must be exact",
                   f'write it as a string: {key} = "{value}"')
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(dotted, f"{dotted} must be an amount, got {value!r}",
                   f'write {key} = "0.16"')
    try:
        micros = to_micros(value)
    except MoneyError as exc:
        raise fail(dotted, f"{dotted}: {exc}", 'write an amount such as "0.16"',
                   example="0.16") from exc
    if micros < 0:
        raise fail(dotted, f"{dotted} cannot be negative", f'write {key} = "0.16"',
                   example="0.16")
    if key == "eur_per_segment" and micros > MAX_PRICE_MICROS:
        # spend = messages x segments x price: a price of 9e12 made amounts past what the
        # results (and the money arithmetic) hold, after the run had written its results
        raise fail(dotted, f"{dotted} is at most €{MAX_PRICE_MICROS // 1_000_000:,} a "
                   f"segment, got {value}", f'an SMS costs cents: write {key} = "0.16"',
                   example="0.16")
    return Decimal(str(value).strip())


MAX_PRICE_MICROS = 1_000 * 1_000_000  # €1,000 a segment: far past any carrier's price


def _section(current: Any, table: Mapping[str, Any], dotted: str, fail: Any) -> Any:
    by_name = {f.name: f for f in fields(current)}
    aliases = {"window": "window_s", "calm": "calm_s", "observe": "observe_s",
               "max_hold": "max_hold_s", "baseline_halflife": "baseline_halflife_s",
               "halflife": "halflife_s", "hot_ttl": "hot_ttl_s", "public_after": "public_after_s",
               "learn": "learn_s",
               "total_eur": "total_micros",
               "per_hour_eur": "per_hour_micros"}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        name = aliases.get(key, key)
        where = f"{dotted}.{key}"
        if name not in by_name or (name.endswith(("_s", "_micros")) and key == name):
            known = sorted(
                next((a for a, n in aliases.items() if n == f), f) for f in by_name
            )
            raise fail(where, f"unknown key {where!r}", f"known keys: {', '.join(known)}")
        if name.endswith("_s"):
            try:
                changes[name] = parse_duration(value)
            except ValueError as exc:
                raise fail(where, f"{where}: {exc}",
                           f'write {key} = "20m" (units w, d, h, m, s, ms)',
                           example="20m") from exc
        elif name.endswith("_micros"):
            if value is None or value is False or value == "none":
                changes[name] = None
            else:
                changes[name] = to_micros(money_field(value, where, fail))
        elif name.endswith("_keywords"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(where, f"{where} must be a list of strings",
                           f'write {key} = ["STOP", "ARRET"]')
            changes[name] = tuple(v.upper() for v in value)
        else:
            kind = type(getattr(current, name))
            changes[name] = _expect(value, kind, where, fail)
            if kind is float and not math.isfinite(changes[name]):  # nan, inf, 1e400
                raise fail(where, f"{where} must be a finite number, got {value!r}",
                           f"write {key} = 0.5", example="0.5")
            # (a bound of 1, or above 0, first: its hint is the one that holds)
            _check_bounds(type(current), name, changes[name], where, fail)
            if kind in (int, float) and changes[name] < 0:
                raise fail(where, f"{where} cannot be negative, got {value!r}",
                           "write 0 or more")
            continue
        _check_bounds(type(current), name, changes[name], where, fail)
    return replace(current, **changes)


# Durations the policy divides by (a rate window, a decay half-life): zero crashed every
# decision (ZeroDivisionError), in the simulator and in the responder alike.
_POSITIVE: frozenset[tuple[str, str]] = frozenset({
    ("Surge", "window_s"), ("Surge", "baseline_halflife_s"),
    ("Templates", "halflife_s"), ("Fragments", "halflife_s"), ("Habit", "halflife_s"),
})
# Counts that mean nothing below one: ``sender[:-0]`` is "", which put every sender in
# one number block; a limit of 0 replies still answered once; a flood of 0 messages
# dropped every sender at its first, and 0 senders made every template, phrase and number
# block hot at once.
_AT_LEAST_ONE: frozenset[tuple[str, str]] = frozenset({
    ("NumberBlocks", "strip_digits"), ("SenderLimit", "replies"), ("Repeats", "max_messages"),
    ("Templates", "hot_senders"), ("Fragments", "hot_senders"), ("NumberBlocks", "hot_senders"),
})
# Shares (a Jaccard similarity, shares of senders or of phrases): above 1 a rule can
# never fire, silently.
_SHARES: frozenset[tuple[str, str]] = frozenset({
    ("Surge", "genuine_below"), ("Templates", "similarity"),
    ("Templates", "min_repeat_share"), ("Fragments", "self_repeat_share"),
    ("Fragments", "hot_share"),
})
_MAX_STRIP_DIGITS = 8  # a block of 10**8 numbers is a whole mobile range, not a block
# A held reply is looked at again ``observe`` after now, rounded up to the surge window
# grid: at 0 that is now itself on the grid, so the driver released the same replies at
# the same instant forever (the simulator hung, the responder's policy clock spun). A
# sub-second hold is no watching either, and one below a float's step at the run's time
# (1e-12 s a year in) hung the same way.
# The surge window is that grid: at 1e-300 s rounding a time up to it overflowed (every
# decision failed in the responder).
_AT_LEAST_A_SECOND: frozenset[tuple[str, str]] = frozenset({("Surge", "observe_s"),
                                                            ("Surge", "window_s")})


def _check_bounds(section: type, name: str, value: Any, where: str, fail: Any) -> None:
    key = (section.__name__, name)
    if key in _POSITIVE and value is not None and value <= 0:
        raise fail(where, f"{where} must be more than 0, got {value!r}",
                   f'write a duration such as "10m"; to turn the rule off, set '
                   f'{where.rsplit(".", 1)[0]}.enabled = false')
    if key in _AT_LEAST_A_SECOND and value < 1:
        raise fail(where, f"{where} must be at least 1 s, got {value!r} s",
                   f'write a duration such as "20m"; to turn the rule off, set '
                   f'{where.rsplit(".", 1)[0]}.enabled = false')
    if key in _AT_LEAST_ONE and value < 1:
        raise fail(where, f"{where} must be at least 1, got {value!r}",
                   f'to turn the rule off, set {where.rsplit(".", 1)[0]}.enabled = false')
    if key == ("NumberBlocks", "strip_digits") and value > _MAX_STRIP_DIGITS:
        raise fail(where, f"{where} must be at most {_MAX_STRIP_DIGITS}, got {value!r}",
                   "3 groups numbers in blocks of 1,000")
    if key in _SHARES and value > 1:
        raise fail(where, f"{where} is a share and must be between 0 and 1, got {value!r}",
                   "write 0.1 for 10 %")
