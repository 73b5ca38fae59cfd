"""Durations as people write them: "30d", "5d20h", "90s", "1.5h", or plain seconds."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
# A bare number as text: what a command-line flag or an environment variable holds where a
# TOML file would hold the number itself ("90", "1.5", "-5", "1e3", "inf").
_BARE_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
                          r"|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


# The longest duration anything takes: a century. Longer is a typo (a run of nines), and
# an infinite one (a number past 1e308) turned the policy's time grid into NaN: a hang.
MAX_DURATION_S = 100 * 365.25 * 86400.0


class DurationTooLong(ValueError):
    """A duration past ``MAX_DURATION_S`` (a reader with a tighter bound names its own)."""


def finite(value: int | float) -> bool:
    """``math.isfinite`` for a number read from a file, where an integer may be past what a
    float holds (a 400-digit TOML integer): such a number is not finite either, instead of
    an OverflowError."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):  # a bare number is seconds
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"a duration must be finite, got {value!r}")
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {shown(value)}")
        return _bounded(float(value) if finite(value) else math.inf, value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"30m\" or \"5d20h\", got {value!r}")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text):
        if text.startswith("-") and _readable(text[1:]):
            raise ValueError(f"a duration cannot be negative: {value!r}")
        raise ValueError(
            f"cannot read duration {value!r}; use numbers with units w, d, h, m, s or ms, "
            "e.g. \"30m\", \"5d20h\" or \"90s\""
        )
    return _bounded(total, value)


def _bounded(seconds: float, value: object) -> float:
    if not math.isfinite(seconds) or seconds > MAX_DURATION_S:
        raise DurationTooLong(f"a duration must be at most 100 years, got {shown(value)}")
    return seconds


def shown(value: object) -> str:
    """``value`` for an error message: its repr, or, past 40 characters (a run of 400
    nines), its start and its length."""
    text = repr(value)
    if len(text) <= 40:
        return text
    unit = "digits" if isinstance(value, int) else "characters"
    return f"{text[:12]}... ({len(text):,} {unit})"


def _readable(text: str) -> bool:
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


def parse_duration_text(text: str) -> float:
    """A duration typed as text (a command-line flag): what ``parse_duration`` takes from a
    scenario file, where a bare number is seconds. In TOML that number has no quotes
    (``start = 90``); on a command line everything is text, so ``--settle 90`` is 90 s. Its
    bounds are ``parse_duration``'s: finite and not negative."""
    stripped = text.strip()
    if _BARE_NUMBER.fullmatch(stripped):
        return parse_duration(float(stripped))
    return parse_duration(text)
