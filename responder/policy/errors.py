"""Configuration errors that point at the file, the line and the fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration or scenario problem a user must fix.

    ``str(err)`` reads ``FILE:LINE: what is wrong (hint: how to fix)``. ``example``, for a
    value of the wrong type: the dotted key and a value written right, for a caller that
    shows them in its own syntax (``raidsim sweep --param``) rather than the file's.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
        example: tuple[str, str] | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint
        self.example = example
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"


# Scenario, policy and settings files are a few kilobytes; anything near this is not one
# (``/dev/zero``, a trace or a log given by mistake) and is refused before it fills memory.
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def read_utf8(path: Path, what: str, *, hint: str | None = None) -> str:
    """The text of a configuration file; a ``ConfigError`` naming ``what`` (and, for bytes
    that are not UTF-8, the line) when it cannot be read. ``hint`` helps a missing file.
    A leading byte-order mark (some Windows editors write one) is dropped."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", path=path,
                          hint=hint) from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB",
                          path=path, hint=f"is this the {what}? {hint or 'check the path'}")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{what} is not UTF-8", path=path, line=line,
                          hint="save the file as UTF-8") from exc


_TOML_HINT = ('strings need quotes: duration = "7d"; tables look like [pricing]; a list of '
              "tables is [[traffic]]")


def parse_toml(text: str, path: Path, *, hint: str = _TOML_HINT) -> dict[str, Any]:
    """Parse TOML ``text`` read from ``path``; a ``ConfigError`` with the line and a hint
    that fits the mistake when it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc).split(" (at line", 1)[0]
        if message.startswith("Cannot overwrite a value"):
            hint = ("a key is set twice, or both as a value and as a table (such as "
                    'policy = "file.toml" next to a [policy.budget] table); set it once')
        elif message.startswith("Cannot declare"):
            hint = "a [table] may appear only once: merge the two into one"
        elif text.lstrip().startswith("{"):
            hint = ("this looks like a JSON trace, not TOML: give a trace with "
                    "--trace FILE.jsonl")
        line = toml_line(exc)
        if line is None and "(at end of document)" in str(exc):  # a cut-off file: its end
            line = len(text.splitlines()) or 1
        raise ConfigError(f"not valid TOML: {message}", path=path, line=line,
                          hint=hint) from exc
    except RecursionError as exc:  # tomllib recurses into nested arrays and tables
        raise ConfigError("cannot read this TOML: arrays or tables nested too deeply",
                          path=path, line=_deepest_line(text),
                          hint="nest a few levels at most") from exc


def _deepest_line(text: str) -> int | None:
    """The line that opens the most arrays and inline tables: where nesting ran too deep
    (tomllib's RecursionError names no line)."""
    lines = text.splitlines()
    if not lines:
        return None
    return 1 + max(range(len(lines)), key=lambda i: lines[i].count("[") + lines[i].count("{"))


def toml_line(exc: tomllib.TOMLDecodeError) -> int | None:
    """The line a ``TOMLDecodeError`` points at (its attribute on Python 3.14+, else
    parsed from its message)."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return lineno
    message = str(exc)
    if "(at line " in message:
        digits = message.split("(at line ", 1)[1].split(",", 1)[0].strip()
        if digits.isdigit():
            return int(digits)
    return None


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def locate(text: str | None, dotted: str) -> int | None:
    """Best-effort line number (1-based) of a dotted TOML key in ``text``.

    ``policy.budget.total_eur`` finds ``total_eur =`` inside ``[policy.budget]``,
    or ``budget.total_eur =`` inside ``[policy]``; array-of-table indices such as
    ``traffic[2].rate`` find the key inside the third ``[[traffic]]`` block.
    """
    if not text:
        return None
    parts = dotted.split(".")
    key = re.sub(r"\[\d+\]$", "", parts[-1])
    wanted_table = ".".join(re.sub(r"\[\d+\]", "", p) for p in parts[:-1])
    index_match = re.search(r"\[(\d+)\]", dotted)
    wanted_index = int(index_match.group(1)) if index_match else None
    current = ""
    seen_for_table: dict[str, int] = {}
    fallback: int | None = None
    owner: int | None = None  # ``traffic = [{...}]``: the table written inline
    for number, raw in enumerate(text.splitlines(), start=1):
        table = _TABLE.match(raw)
        if table:
            # a quoted part names the same table as a bare one: ["policy"] is [policy]
            current = ".".join(p.strip().strip("\"'") for p in table.group(1).split("."))
            seen_for_table[current] = seen_for_table.get(current, -1) + 1
            if not parts[-1:] or dotted == current:
                return number
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        lhs = stripped.split("=", 1)[0].strip().strip('"')
        full = f"{current}.{lhs}" if current else lhs
        matched = full == f"{wanted_table}.{key}" if wanted_table else lhs == key
        if matched and (wanted_index is None or seen_for_table.get(current) == wanted_index):
            return number
        if wanted_table and full == wanted_table and owner is None:
            owner = number
        if lhs == key and fallback is None:
            fallback = number
    if wanted_table:
        for number, raw in enumerate(text.splitlines(), start=1):
            table = _TABLE.match(raw)
            if table and table.group(1).strip() == wanted_table:
                return number
    # A table written inline holds its keys on its own line(s): that line, not a key of
    # the same name in another table (the scenario's own duration, a flood's rate).
    return owner if owner is not None else fallback
