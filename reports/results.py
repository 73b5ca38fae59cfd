"""Load and write the results JSON exactly: numbers with decimals stay Decimal.

``dumps`` is deterministic (sorted keys, two-space indent, trailing newline) and writes
a Decimal as the JSON number it is (``4800.00`` stays ``4800.00``), so money written by
the simulator survives a round trip through ``raidsim report`` byte for byte.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

REQUIRED_KEYS = (
    "scenario", "seed", "policy", "messages", "replies", "spend_eur", "oracle_spend_eur",
    "naive_spend_eur", "legit_senders", "legit_senders_replied", "legit_coverage",
    "reply_latency_s", "budget", "thresholds", "passed",
)


# The largest results file read: a 366-day run writes about 32 MB, so a file past this is
# not one (``/dev/zero``, a trace given by mistake) and is refused before it fills memory.
MAX_RESULTS_BYTES = 512 * 1024 * 1024


class ResultsError(ValueError):
    """A results file that cannot be read; the message names the file (and line)."""


# No figure a run writes comes near this (money is at most MAX_MICROS, times at most a
# year): a number past it in a results file is damage or a hand edit, and formatting it
# (1e400 written out, or a percentage of it) is where reports used to crash.
MAX_NUMBER = Decimal("1e15")
MAX_PLACES = 20  # decimal places a number may have (raidsim writes 6 at most)
_MAX_INT_DIGITS = 20  # a 64-bit seed has up to 20


class _BadNumber(ValueError):
    """A number token the results may not hold; ``token`` finds its line."""

    def __init__(self, token: str, problem: str) -> None:
        super().__init__(problem)
        self.token = token


def _no_constants(name: str) -> Any:
    raise _BadNumber(name, f"{name} is not valid JSON (write null for a missing value)")


def out_of_range(value: Decimal) -> bool:
    """Whether ``abs(value) > MAX_NUMBER``, without Decimal arithmetic (1e999999999 would
    overflow the context)."""
    return value != 0 and value.adjusted() >= 15 and value.copy_abs() > MAX_NUMBER


def _bounded_float(token: str) -> Decimal:
    value = Decimal(token)
    if out_of_range(value):
        raise _BadNumber(token, f"the number {token[:40]} is out of range (at most 1e15)")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        # 0E-99999999 or 1E-9999999: read, then written out digit by digit in every file
        # the report makes (200 MB each), or a MemoryError
        raise _BadNumber(token, f"the number {token[:40]} has more than {MAX_PLACES} "
                         "decimal places")
    return value


def _bounded_int(token: str) -> int:
    if len(token.lstrip("-")) > _MAX_INT_DIGITS:
        raise _BadNumber(token, f"the number {token[:40]}... has more than "
                         f"{_MAX_INT_DIGITS} digits")
    return int(token)


def _position(text: str, token: str) -> str:
    """``LINE:COLUMN`` of the first ``token`` outside a string, or "" if not found."""
    for match in re.finditer(re.escape(token), text):
        before = text[:match.start()]
        if before.count('"') % 2 == 0:  # not inside a string (escaped quotes aside)
            line = before.count("\n") + 1
            return f":{line}:{match.start() - (before.rfind(chr(10)) + 1) + 1}"
    return ""


def loads(text: str, *, source: str = "<results>") -> dict[str, Any]:
    """Parse results JSON text; floats become Decimal. Errors name ``source`` and the line."""
    try:
        data = json.loads(text, parse_float=_bounded_float, parse_int=_bounded_int,
                          parse_constant=_no_constants)
    except _BadNumber as exc:
        raise ResultsError(f"{source}{_position(text, exc.token)}: invalid results: {exc} "
                           "(hint: give the file `raidsim simulate --json` wrote)") from exc
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg} "
                           "(hint: give the file `raidsim simulate --json` or `raidsim load "
                           "--json` wrote; a cut-off file means the run did not finish)"
                           ) from exc
    except ValueError as exc:
        raise ResultsError(f"{source}: invalid JSON: {exc}") from exc
    except RecursionError as exc:  # json recurses into nested arrays and objects
        raise ResultsError(f"{source}: invalid results: arrays or objects nested too deeply "
                           "to read (hint: give the file `raidsim simulate --json` wrote)"
                           ) from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{source}:1: results must be a JSON object, not "
                           f"{type(data).__name__}")
    return data


def load(path: str | Path) -> dict[str, Any]:
    """Read a results file (``raidsim simulate --json`` or the live replay's output)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RESULTS_BYTES + 1)
    except FileNotFoundError as exc:
        raise ResultsError(f"{path}: no such results file") from exc
    except IsADirectoryError as exc:
        raise ResultsError(f"{path}: is a directory, not a results file") from exc
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > MAX_RESULTS_BYTES:
        raise ResultsError(f"{path}: larger than {MAX_RESULTS_BYTES // (1024 * 1024)} MiB, "
                           "not a results file (a 366-day run writes about 32 MB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ResultsError(f"{path}:{line}:{column}: not UTF-8 text (byte "
                           f"0x{data[exc.start]:02x}: {exc.reason}); results files are "
                           "written as UTF-8 JSON") from exc
    return loads(text, source=str(path))


def missing_required(results: Mapping[str, Any]) -> list[str]:
    """Required top-level keys (docs/results.md) absent from ``results``."""
    return [key for key in REQUIRED_KEYS if key not in results]


def dumps(value: Any) -> str:
    """Deterministic JSON text with exact Decimals; ends with a newline."""
    parts: list[str] = []
    _encode(value, parts, 0)
    parts.append("\n")
    return "".join(parts)


def _encode(value: Any, out: list[str], depth: int) -> None:
    pad = "  " * (depth + 1)
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        out.append(_decimal_text(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} as JSON")
        out.append(repr(value))
    elif isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        out.append("{\n")
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        for index, (key, item) in enumerate(items):
            out.append(f"{pad}{json.dumps(str(key), ensure_ascii=False)}: ")
            _encode(item, out, depth + 1)
            out.append(",\n" if index < len(items) - 1 else "\n")
        out.append("  " * depth + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        kinds = set(map(type, value))
        if kinds <= _NUMBER_TYPES or all(
            v is None or isinstance(v, int | float | Decimal | bool) for v in value
        ):
            # Number arrays (time series) on one line keep the file readable.
            out.append("[" + ", ".join(_number_texts(value, kinds)) + "]")
            return
        out.append("[\n")
        for index, item in enumerate(value):
            out.append(pad)
            _encode(item, out, depth + 1)
            out.append(",\n" if index < len(value) - 1 else "\n")
        out.append("  " * depth + "]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON: {value!r:.60}")


_NUMBER_TYPES = frozenset({int, float, Decimal, bool, type(None)})


def _number_texts(values: list[Any] | tuple[Any, ...], kinds: set[type]) -> Any:
    """The JSON text of each element of a number array, as ``_encode`` writes it.

    A week's time series hold ~200,000 numbers, nearly all ints or floats (None for an
    empty bin): those are formatted in one pass, not dispatched one by one.
    """
    if kinds == {int}:
        return map(int.__repr__, values)
    if kinds <= {float, type(None)}:
        texts = ["null" if v is None else float.__repr__(v) for v in values]
        if "nan" in texts or "inf" in texts or "-inf" in texts:
            raise ValueError("cannot write a NaN or infinite number as JSON")
        return texts
    texts = []
    for v in values:
        _encode(v, texts, 0)
    return texts


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    # JSON has no "-0"; keep integral Decimals as written ("600" stays "600").
    return "0" if text in ("-0",) else text


def write(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``results`` as ``dumps`` does, replacing ``path`` whole or not at all."""
    from reports.files import replaced_whole

    path = Path(path)
    with replaced_whole(path) as handle:
        handle.write(dumps(results))
    return path


# Characters XML 1.0 cannot hold and HTML calls invalid: C0 controls but tab, line feed
# and carriage return; C1 controls; lone surrogates; U+FFFE and U+FFFF.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def as_text(document: str) -> str:
    """``document`` with every character a JUnit or HTML reader refuses replaced by
    U+FFFD: a hand-edited results file may name its scenario with a control character,
    and one such byte makes the whole JUnit file unreadable to a CI server."""
    return _NOT_TEXT.sub("\ufffd", document)
