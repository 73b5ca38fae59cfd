"""Traces: JSONL files of inbound SMS, one per line, sorted by ``t`` (docs/scenarios.md).

``read_trace`` streams and validates every line; the first bad line stops the run with a
``TraceError`` that names the file, the line, what is wrong and how to fix it. A trace with
no message at all is an error too: scored, it would pass any cost gate.
``write_trace`` writes byte-for-byte reproducible lines: same records, same bytes.

A line may carry an ``id`` (the provider's message id). Without one, the record's id is
``SM`` + its zero-based index in the file as 32 hex digits, the shape of a Twilio MessageSid,
so two replays of the same trace agree on ids.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, BinaryIO

from responder.policy.errors import ConfigError
from sim.metrics import MAX_SPAN_S

LABELS = ("legit", "raid")

# E.164 (+ and 7 to 15 digits), a short code (3 to 8 digits) or an alphanumeric sender id
# (up to 11 letters, digits, spaces, dots or dashes, at least one letter). The policy decides
# what to do with short codes and alphanumeric senders; the trace only has to carry them.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")  # 8: the policy's SHORT_CODE_MAX_DIGITS
_ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9 .\-]{0,10}")

_ADDRESS_HINT = 'write an E.164 number such as "+33612345678" (or a short code / sender id)'


class TraceError(ConfigError):
    """A trace file that cannot be read: ``FILE:LINE: reason (hint: fix)``."""


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One inbound SMS. ``t`` is seconds since the trace start; ``label`` is ground truth."""

    t: float
    sender: str
    to: str
    body: str
    label: str | None = None
    message_id: str = ""


def default_message_id(index: int) -> str:
    """The id of the ``index``-th record (0-based) when the trace gives none."""
    return f"SM{index:032x}"


@lru_cache(maxsize=65536)  # traces repeat numbers: the "to" on every line, senders often
def is_address(value: str) -> bool:
    """True for an E.164 number, a short code or an alphanumeric sender id."""
    return bool(
        E164.fullmatch(value) or _SHORT_CODE.fullmatch(value) or _ALPHANUMERIC.fullmatch(value)
    )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's pairs as a dict; a key given twice is refused (readers disagree on which
    value wins, so the line means different things to different tools)."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return data


# The longest trace line read: an SMS body is at most a few thousand characters (Twilio
# takes 1,600), so a longer line is not a message (``/dev/zero``, a binary file) and is
# refused before it fills memory.
MAX_LINE_BYTES = 1024 * 1024

# The longest message id the live responder takes (``responder.app.MAX_ID_LEN``): a longer
# one is answered 400, so the simulator must refuse it too or the two score different traffic.
MAX_ID_CHARS = 64

_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


def read_trace(path: str | Path) -> Iterator[TraceRecord]:
    """Stream the records of a JSONL trace, validating each line as it goes.

    Besides each line on its own, the reader checks that an ``id`` names one message: the
    same id again from the same sender is a provider retry (the policy's ``dedup`` rule
    drops it), but from another sender it would silently drop a genuine message as a
    duplicate, so it stops the read naming both lines. That check keeps each id and its
    sender, about 130 bytes per message (130 MB for a million-line trace); the line of the
    first use is found again by reading the file a second time, only when there is an error.
    """
    file = Path(path)
    handle = _open(file)
    with handle:
        senders: dict[str, str] = {}  # one string per distinct sender
        first_sender: dict[str, str] = {}  # message id -> its sender
        for line, record in _records(file, handle):
            sender = senders.setdefault(record.sender, record.sender)
            first = first_sender.setdefault(record.message_id, sender)
            if first != sender:
                raise _reused_id(file, line, record, first)
            yield record


KEYS = ("t", "from", "to", "body", "label", "id")
_OPTIONAL = ("label", "id")
_KEY_LINES = 1000  # lines key_warnings reads


def key_warnings(path: str | Path) -> list[str]:
    """Warnings for keys that look like a misspelt ``label`` or ``id`` (``lable``,
    ``Label``, ``ID``) on a line that lacks the real one, from the first lines of the trace.

    Unknown keys are ignored (the trace format lets captures carry fields of their own),
    so a misspelt ``label`` silently left every message unlabelled: ``legit 0, raid 0``
    and every spend gate passed. Best effort: a file the reader refuses gives none (the
    run reports it).
    """
    found: dict[str, tuple[int, str]] = {}
    file = Path(path)
    try:
        if not file.is_file():  # a pipe would be read empty before the run reads it
            return []
        with file.open("rb") as handle:
            for number in range(1, _KEY_LINES + 1):
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw or len(raw) > MAX_LINE_BYTES:
                    break
                try:
                    data = json.loads(raw)
                except (ValueError, RecursionError):  # the reader reports bad lines
                    continue
                if not isinstance(data, dict):
                    continue
                for key in data:
                    if key in KEYS or not isinstance(key, str) or key in found:
                        continue
                    # a missing t, from, to or body stops the read (naming the near key);
                    # a missing label or id does not, so only those are looked for here
                    near = closest(key, _OPTIONAL)
                    if near is not None and near not in data:
                        found[key] = (number, near)
    except OSError:
        return []
    return [f'{path}:{number}: unknown key {json.dumps(key, ensure_ascii=False)} is ignored '
            f'(hint: did you mean "{known}"? a trace line\'s keys are {", ".join(KEYS)})'
            for key, (number, known) in found.items()]


def _open(file: Path) -> BinaryIO:
    if str(file) == "-":  # a trace is read more than once (replications, sweeps, jobs)
        raise TraceError(
            "a trace cannot be read from standard input",
            path=file,
            hint="write it to a file first: raidsim trace SCENARIO.toml -o FILE.jsonl",
        )
    try:
        return file.open("rb")
    except OSError as exc:
        raise TraceError(
            f"cannot read trace: {exc.strerror or exc}",
            path=file,
            hint="check the path; `raidsim trace SCENARIO -o FILE.jsonl` writes one",
        ) from exc


def _records(file: Path, handle: BinaryIO) -> Iterator[tuple[int, TraceRecord]]:
    """Each valid line's number and record; a ``TraceError`` at the first bad line."""
    previous_t = 0.0
    index = 0
    line_number = 0
    while True:
        try:
            raw = handle.readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise TraceError(f"cannot read trace: {exc.strerror or exc}", path=file,
                             line=line_number + 1) from exc
        if len(raw) > MAX_LINE_BYTES:
            raise TraceError(
                f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB", path=file,
                line=line_number + 1,
                hint="one message per line: an SMS body is a few thousand characters at "
                "most; is this file a trace?",
            )
        if not raw:
            if index == 0:  # scoring nothing would pass every gate: refuse it
                raise TraceError(
                    "the trace has no messages" if line_number == 0
                    else "the trace has only blank lines, no messages",
                    path=file,
                    hint="write one JSON object per line; `raidsim trace SCENARIO -o "
                    "FILE.jsonl` writes one",
                )
            return
        line_number += 1
        record = _parse_line(raw, file, line_number, index, previous_t)
        if record is None:
            continue
        previous_t = record.t
        index += 1
        yield line_number, record


def _reused_id(file: Path, line: int, record: TraceRecord, first_sender: str) -> TraceError:
    """The error for an id that an earlier line gave to another sender. A line without an
    ``id`` is numbered by its position, so either side may not carry the id it clashes on:
    the message says which."""
    message_id = json.dumps(record.message_id, ensure_ascii=False)
    first_line = _first_line_with(file, record.message_id)
    first = f"{'an earlier line' if first_line is None else f'line {first_line}'} from " \
            f"{masked(first_sender)}"
    if first_line is not None and _gives_id(file, first_line) is False:
        first += ', which has no "id" and is numbered so by its position'
    if _gives_id(file, line) is False:
        reason = (f'this line has no "id", so its position numbers it {message_id}, which '
                  f"{first} already uses")
    else:
        reason = f'"id" {message_id} is already used by {first}'
    return TraceError(
        f"{reason}; this line is from {masked(record.sender)}",
        path=file, line=line,
        hint="give each message its own id; an id may repeat only from the same sender "
        "(a provider retry), and a line without an id is numbered by its position",
    )


def _first_line_with(file: Path, message_id: str) -> int | None:
    """The first line whose record has ``message_id``, read again from a regular file."""
    if not file.is_file():  # a pipe cannot be read twice
        return None
    try:
        with file.open("rb") as handle:
            for line, record in _records(file, handle):
                if record.message_id == message_id:
                    return line
    except (OSError, TraceError):  # changed under us: name no line rather than a wrong one
        return None
    return None


def _gives_id(file: Path, line: int) -> bool | None:
    """Whether ``line`` of a regular file has an ``id`` key (None: it cannot be read again)."""
    if not file.is_file():
        return None
    try:
        with file.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == line:
                    data = json.loads(raw)
                    return isinstance(data, dict) and data.get("id") is not None
    except (OSError, ValueError, RecursionError):
        return None
    return None


def _parse_line(
    raw: bytes, file: Path, line: int, index: int, previous_t: float
) -> TraceRecord | None:
    def fail(message: str, hint: str) -> TraceError:
        return TraceError(message, path=file, line=line, hint=hint)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}",
            "the file is gzip-compressed: decompress it first (gunzip FILE)"
            if line == 1 and raw.startswith(b"\x1f\x8b") else "save the trace as UTF-8",
        ) from exc
    if line == 1:
        text = text.removeprefix("\ufeff")
    if not text.strip():
        return None
    try:
        data = _DECODER.decode(text)
    except RecursionError as exc:  # json recurses into nested arrays and objects
        raise fail("not a JSON object: arrays or objects nested too deeply to read",
                   'write one flat object per line, e.g. {"t": 0.5, "from": ..., ...}') from exc
    except _RepeatedKey as exc:
        key = json.dumps(exc.key, ensure_ascii=False)
        raise fail(f"the key {key} appears more than once in the object",
                   f"give {key} once: JSON readers disagree on which value wins") from exc
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        if "integer string conversion" in reason:  # Python's own limit, not the user's fix
            reason = "a number of more than 4,300 digits"
        raise fail(
            f"not a JSON object: {reason}",
            'write one object per line, e.g. {"t": 0.5, "from": "+33612345678", '
            '"to": "+33644649021", "body": "Salut"}',
        ) from exc
    if not isinstance(data, dict):
        raise fail(f"expected a JSON object, got {type(data).__name__}",
                   'write one object per line, e.g. {"t": 0.5, "from": ..., ...}')
    t = data.get("t")
    if t is None:  # as for "from" and "to": absent or null, the time is missing
        raise fail('missing "t"', _misspelt(data, "t") or _time_alias(data)
                   or 'write "t": 12.5 (seconds since the trace start)')
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise fail(f'"t" must be a number of seconds, got {t!r}',
                   'write "t": 12.5 (seconds since the trace start)')
    if isinstance(t, float) and not math.isfinite(t):  # 1e999 reads as inf
        raise fail(f'"t" must be a finite number of seconds, got {t!r}',
                   'write "t": 12.5 (seconds since the trace start)')
    if t < 0:
        raise fail(f'"t" must be at least 0, got {_short(t)}', "times count from the trace start")
    if t > MAX_SPAN_S:  # compared before float(): an int such as 10**400 has no float
        raise fail(
            f'"t" is {_short(t)} s, past the longest trace a run can cover: '
            f"{MAX_SPAN_S} s (366 days)",
            '"t" counts seconds since the trace start, not a Unix time or milliseconds; '
            "split a longer capture into traces of at most 366 days",
        )
    t = float(t)
    if t < previous_t:
        raise fail(
            f'"t" goes back in time: {t!r} after {previous_t!r}',
            "sort the lines by t; equal times may keep any order",
        )
    sender = _address(data, "from", fail)
    to = _address(data, "to", fail)
    body = data.get("body")
    if body is None and "body" not in data:
        raise fail('missing "body"', _misspelt(data, "body") or 'write "body": "" for an '
                   "empty SMS")
    if not isinstance(body, str):
        raise fail(f'"body" must be a string, got {body!r}', 'write "body": "" for an empty SMS')
    if "\\u" in text:  # only a \uXXXX escape can smuggle in a lone surrogate
        _whole_unicode(body, "body", fail)
    label = data.get("label")
    if label is not None and label not in LABELS:
        raise fail(f'"label" must be "legit" or "raid", got {label!r}',
                   'use "legit", "raid", null, or leave it out')
    message_id = data.get("id")
    if message_id is None:
        message_id = default_message_id(index)
    elif isinstance(message_id, int) and not isinstance(message_id, bool):
        # A capture's sequence number ("id": 17): the shared trace format ignores keys it
        # does not define, so a trace valid there must read here. It names the message as
        # its decimal string does (17 and "17" are the same id).
        message_id = str(message_id)  # (json refuses more than 4,300 digits)
    elif not isinstance(message_id, str) or not message_id:
        raise fail(f'"id" must be a non-empty string or an integer, got {message_id!r}',
                   "leave it out to number messages by position")
    if "\\u" in text:
        _whole_unicode(message_id, "id", fail)
    if len(message_id) > MAX_ID_CHARS or "\x00" in message_id or "\ufffd" in message_id:
        # the live responder answers such a webhook 400 and never decides it, so the
        # simulator and `raidsim load` would score different traffic
        raise fail(f'"id" must be at most {MAX_ID_CHARS} characters with no NUL or U+FFFD, '
                   f"got {_short_id(message_id)}",
                   "a provider message id is short (a Twilio MessageSid has 34 characters); "
                   "shorten it, or leave it out to number messages by position")
    return TraceRecord(t, sender, to, body, label, message_id)


def _short_id(message_id: str) -> str:
    """An id for an error message: its length, and its start when it is long."""
    shown = json.dumps(message_id[:40], ensure_ascii=False)
    return f"{len(message_id)} characters: {shown}" + ("..." if len(message_id) > 40 else "")


def _short(number: int | float) -> str:
    """A number for an error message; a huge int is shown by its magnitude."""
    text = repr(number)
    if len(text) <= 24:
        return text
    digits = text.lstrip("-")
    return f"about {text[:len(text) - len(digits)]}1e{len(digits) - 1}"


def _whole_unicode(value: str, key: str, fail: Any) -> None:
    """Refuse a lone UTF-16 surrogate (``"\\ud800"``): it is not text and cannot be sent."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise fail(f'"{key}" has a lone surrogate escape '
                   f"\\u{ord(value[exc.start]):04x} at character {exc.start + 1}",
                   "escape characters outside the BMP as a pair, e.g. "
                   "\\ud83d\\ude00 for 😀, or write them as UTF-8") from exc


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` looks like a misspelling of (or that looks like a misspelt
    ``word``): the same but for case, else the closest at 0.75 similarity, in lowercase."""
    lowered: dict[str, str] = {}
    for candidate in candidates:
        lowered.setdefault(candidate.lower(), candidate)
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None


def _misspelt(data: dict[str, Any], key: str) -> str | None:
    """A hint naming the key of ``data`` that looks like a misspelt ``key``, if any."""
    # the key itself is no misspelling of it ("from": null is a missing sender)
    actual = closest(key, [k for k in data if isinstance(k, str) and k != key])
    if actual is None:
        return None
    return (f'write "{key}", not {json.dumps(actual, ensure_ascii=False)}'
            + (": keys are lowercase" if actual.lower() == key else ""))


_TIME_ALIASES = ("time", "timestamp", "ts", "at", "seconds", "offset")


def _time_alias(data: dict[str, Any]) -> str | None:
    """A hint naming the key of ``data`` that looks meant as ``t`` ("time", "ts"...)."""
    for key in data:
        if isinstance(key, str) and key.lower() in _TIME_ALIASES:
            return (f'write "t", not {json.dumps(key, ensure_ascii=False)}: seconds since the '
                    "trace start")
    return None


def _address(data: dict[str, Any], key: str, fail: Any) -> str:
    value = data.get(key)
    if value is None:
        raise fail(f'missing "{key}"', _misspelt(data, key) or _ADDRESS_HINT)
    if not isinstance(value, str) or not is_address(value):
        raise fail(f'"{key}" is not a phone number: {masked(repr(value))}', _ADDRESS_HINT)
    return value


_DIGITS = re.compile(r"\d")


def masked(text: str) -> str:
    """``text`` with the digits of any phone number in it hidden but the first two and
    the last two, for error messages: stderr ends up in CI logs, and numbers are personal
    data. The shape (spaces, dots, a missing +) still shows what to fix; the line number
    says where. Texts with fewer than 7 digits (short codes, typos) are shown whole."""
    count = len(_DIGITS.findall(text))
    if count < 7:
        return text
    seen = 0

    def hide(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return match.group() if seen <= 2 or seen > count - 2 else "•"

    return _DIGITS.sub(hide, text)


def dumps_record(record: TraceRecord) -> str:
    """One trace line, without the newline. Keys in order: t, from, to, body, label, id."""
    out: dict[str, Any] = {"t": record.t, "from": record.sender, "to": record.to,
                           "body": record.body}
    if record.label is not None:
        out["label"] = record.label
    if record.message_id:
        out["id"] = record.message_id
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def write_lines(records: Iterable[TraceRecord], handle: IO[str]) -> int:
    """Write records as JSONL to an open text handle; returns the number written."""
    count = 0
    for record in records:
        handle.write(dumps_record(record))
        handle.write("\n")
        count += 1
    return count


def write_trace(records: Iterable[TraceRecord], path: str | Path) -> int:
    """Write records to ``path`` as UTF-8 JSONL (streaming); returns the number written.

    A file is written whole or not at all: the lines stream into a temporary file beside
    it, which replaces it at the end. A run stopped by Ctrl-C or an error leaves the
    previous file as it was and no cut-off trace, which would still read as a valid,
    shorter traffic. Anything but a file (``/dev/null``, a pipe) is written directly.
    """
    from reports.files import replaced_whole

    with replaced_whole(path) as handle:
        return write_lines(records, handle)
