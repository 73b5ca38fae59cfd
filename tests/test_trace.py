"""Trace I/O: every bad line names the file and the line; writing is byte-for-byte stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.trace import (
    TraceError,
    TraceRecord,
    default_message_id,
    dumps_record,
    read_trace,
    write_trace,
)

GOOD = '{"t": 0.5, "from": "+33612345678", "to": "+33644649021", "body": "Salut", "label": "legit"}'


def write(tmp_path: Path, *lines: str | bytes) -> Path:
    path = tmp_path / "trace.jsonl"
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    path.write_bytes(data)
    return path


def error_for(path: Path) -> TraceError:
    with pytest.raises(TraceError) as caught:
        list(read_trace(path))
    return caught.value


def test_reads_valid_lines_and_ignores_unknown_keys(tmp_path: Path) -> None:
    """A valid trace streams records; unknown keys are ignored, blank lines skipped."""
    path = write(tmp_path, GOOD, "",
                 '{"t": 1, "from": "+33712345678", "to": "+33644649021", "body": "é 😘", '
                 '"extra": [1], "id": "SMabc"}')
    records = list(read_trace(path))
    assert records == [
        TraceRecord(0.5, "+33612345678", "+33644649021", "Salut", "legit", default_message_id(0)),
        TraceRecord(1.0, "+33712345678", "+33644649021", "é 😘", None, "SMabc"),
    ]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("not json at all", "not a JSON object"),
        ("[1, 2]", "expected a JSON object"),
        ('{"t": "soon", "from": "+33612345678", "to": "+33644649021", "body": ""}', '"t"'),
        ('{"t": -1, "from": "+33612345678", "to": "+33644649021", "body": ""}', "at least 0"),
        ('{"t": NaN, "from": "+33612345678", "to": "+33644649021", "body": ""}', "JSON"),
        ('{"t": 0.1, "from": "+33612345678", "to": "+33644649021", "body": ""}', "back in time"),
        ('{"t": 1, "from": "06 12 34 56 78", "to": "+33644649021", "body": ""}', "phone number"),
        ('{"t": 1, "to": "+33644649021", "body": ""}', 'missing "from"'),
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": 5}', '"body"'),
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "", "label": "spam"}',
         '"label"'),
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "", "id": 7}', '"id"'),
    ],
)
def test_bad_line_names_file_line_reason_and_fix(tmp_path: Path, bad_line: str,
                                                  reason: str) -> None:
    """Each malformed line stops the read with FILE:LINE: reason (hint: fix)."""
    path = write(tmp_path, GOOD, bad_line)
    err = error_for(path)
    assert err.line == 2
    assert str(err).startswith(f"{path}:2: ")
    assert reason in str(err)
    assert "(hint: " in str(err)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    """A line that is not UTF-8 is reported with its line number."""
    path = write(tmp_path, GOOD, GOOD, b'{"t": 1, "from": "+33612345678", "body": "\xe9"}')
    err = error_for(path)
    assert err.line == 3 and "not UTF-8" in str(err)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    """A missing file (or a directory) gives an error naming it, not a traceback."""
    err = error_for(tmp_path / "missing.jsonl")
    assert "missing.jsonl" in str(err) and "cannot read" in str(err)
    err = error_for(tmp_path)
    assert "cannot read" in str(err)


def test_error_is_raised_lazily_after_good_records(tmp_path: Path) -> None:
    """Streaming: the good records before a bad line come out first."""
    path = write(tmp_path, GOOD, "oops")
    records = read_trace(path)
    assert next(records).body == "Salut"
    with pytest.raises(TraceError):
        next(records)


def test_write_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    """write_trace -> read_trace gives the same records; key order and bytes are fixed."""
    records = [
        TraceRecord(0.0, "+33612345678", "+33644649021", "Ça va ? 😘", "legit", "SM1"),
        TraceRecord(2.5, "+33712345678", "+33644649021", 'a "quote"\nnewline', "raid", "SM2"),
        TraceRecord(2.5, "36665", "+33644649021", "", None, "SM3"),
    ]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert write_trace(records, first) == 3
    write_trace(iter(records), second)
    assert first.read_bytes() == second.read_bytes()
    assert list(read_trace(first)) == records
    line = first.read_text(encoding="utf-8").splitlines()[0]
    assert line == ('{"t":0.0,"from":"+33612345678","to":"+33644649021","body":"Ça va ? 😘",'
                    '"label":"legit","id":"SM1"}')
    assert list(json.loads(dumps_record(records[2]))) == ["t", "from", "to", "body", "id"]
