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


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):  # a bare number is seconds
        if not math.isfinite(value):
            raise ValueError(f"a duration must be finite, got {value!r}")
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
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
    return total


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
