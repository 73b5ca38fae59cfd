"""Configuration errors that point at the file, the line and the fix."""

from __future__ import annotations

import re
from pathlib import Path


class ConfigError(ValueError):
    """A configuration or scenario problem a user must fix.

    ``str(err)`` reads ``FILE:LINE: what is wrong (hint: how to fix)``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"


def read_utf8(path: Path, what: str, *, hint: str | None = None) -> str:
    """The text of a configuration file; a ``ConfigError`` naming ``what`` (and, for bytes
    that are not UTF-8, the line) when it cannot be read. ``hint`` helps a missing file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", path=path,
                          hint=hint) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{what} is not UTF-8", path=path, line=line,
                          hint="save the file as UTF-8") from exc


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
    for number, raw in enumerate(text.splitlines(), start=1):
        table = _TABLE.match(raw)
        if table:
            current = table.group(1).strip()
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
        if lhs == key and fallback is None:
            fallback = number
    if wanted_table:
        for number, raw in enumerate(text.splitlines(), start=1):
            table = _TABLE.match(raw)
            if table and table.group(1).strip() == wanted_table:
                return number
    return fallback
