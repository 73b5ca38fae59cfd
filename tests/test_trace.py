"""Trace I/O: every bad line names the file and the line; writing is byte-for-byte stable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sim.metrics import MAX_SPAN_S
from sim.trace import (
    TraceError,
    TraceRecord,
    default_message_id,
    dumps_record,
    key_warnings,
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
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "", "id": 7.5}',
         '"id" must be a non-empty string or an integer'),
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "", "id": true}',
         '"id"'),
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "", "id": ""}',
         '"id"'),
        # past the 366-day horizon: 1e308 overflowed the time series, 3e10 ran out of memory
        ('{"t": 1e308, "from": "+33612345678", "to": "+33644649021", "body": ""}', "366 days"),
        ('{"t": 3e10, "from": "+33612345678", "to": "+33644649021", "body": ""}', "366 days"),
        ('{"t": 1' + "0" * 400 + ', "from": "+33612345678", "to": "+33644649021", "body": ""}',
         '"t" is about 1e400 s'),
        ('{"t": Infinity, "from": "+33612345678", "to": "+33644649021", "body": ""}', "JSON"),
        ('{"t": 1e999, "from": "+33612345678", "to": "+33644649021", "body": ""}', "finite"),
        # a repeated key: the last value used to win silently
        ('{"t": 1, "t": 2, "from": "+33612345678", "to": "+33644649021", "body": ""}',
         'the key "t" appears more than once'),
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "", "x": {"a": 1, '
         '"a": 2}}', 'the key "a" appears more than once'),
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


def test_a_misspelt_label_or_id_is_warned_about_and_a_misspelt_body_is_named(
        tmp_path: Path) -> None:
    """Unknown keys are ignored, so "lable" left every message unlabelled (legit 0, raid 0)
    and every spend gate passed without a word. A key that looks like a missing label or
    id is now warned about, once, with its line; extra fields and a key that sits beside
    the real one are not. A misspelt required key's error names the key written."""
    base = '{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": ""'
    path = write(tmp_path, GOOD, base + ', "lable": "raid", "sid": "SM1"}',
                 base + ', "lable": "raid"}', base + ', "label": "raid", "Label": "x"}',
                 base + ', "source": "capture", "ts": 3}')
    warnings = key_warnings(path)
    assert len(warnings) == 2
    assert warnings[0].startswith(f'{path}:2: unknown key "lable" is ignored')
    assert 'did you mean "label"' in warnings[0] and 'did you mean "id"' in warnings[1]
    assert len(list(read_trace(path))) == 5  # still read: the format ignores them
    assert key_warnings(write(tmp_path, GOOD)) == []
    misspelt = error_for(write(tmp_path, GOOD, base.replace('"body"', '"Body"') + "}"))
    assert 'missing "body"' in str(misspelt) and 'not "Body": keys are lowercase' in str(
        misspelt)
    # a key that is there but null is not a misspelling of itself
    null = error_for(write(tmp_path, GOOD, base.replace('"+33612345678"', "null") + "}"))
    assert 'missing "from"' in str(null) and "not \"from\"" not in str(null)
    assert "keys are lowercase" not in str(null)


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


def test_an_interrupted_write_leaves_the_old_trace_and_no_partial_file(tmp_path: Path) -> None:
    """Ctrl-C (or any error) while a trace streams out: the file keeps its previous
    content, whole, and no cut-off trace (still valid JSONL, a shorter traffic) is left."""
    record = TraceRecord(0.0, "+33612345678", "+33644649021", "Salut", "legit", "SM1")
    out = tmp_path / "trace.jsonl"
    write_trace([record], out)
    before = out.read_bytes()

    def interrupted():
        for _ in range(5000):  # more than the file buffer: some lines reach the disk
            yield record
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_trace(interrupted(), out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.jsonl"]
    with pytest.raises(KeyboardInterrupt):
        write_trace(interrupted(), tmp_path / "new.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.jsonl"]
    assert write_trace([record], os.devnull) == 1  # not a file: written in place


def test_t_may_reach_the_horizon_but_not_pass_it(tmp_path: Path) -> None:
    """366 days is the longest trace: its last second reads, the next one is refused."""
    line = '{"t": %s, "from": "+33612345678", "to": "+33644649021", "body": ""}'
    assert MAX_SPAN_S == 366 * 86400
    assert list(read_trace(write(tmp_path, GOOD, line % MAX_SPAN_S)))[-1].t == MAX_SPAN_S
    err = error_for(write(tmp_path, GOOD, line % (MAX_SPAN_S + 0.5)))
    assert err.line == 2 and "Unix time" in str(err)


def _with_id(t: float, sender: str, message_id: str | None) -> str:
    record = {"t": t, "from": sender, "to": "+33644649021", "body": "Salut"}
    if message_id is not None:
        record["id"] = message_id
    return json.dumps(record)


def test_an_id_reused_by_another_sender_names_both_lines(tmp_path: Path) -> None:
    """The second sender's genuine message would be dropped as a duplicate: refuse it."""
    path = write(tmp_path, _with_id(0, "+33612345678", "SMa"), "",
                 _with_id(1, "+33612345678", "SMb"), _with_id(2, "+33712345678", "SMa"))
    err = error_for(path)
    assert err.line == 4
    assert str(err).startswith(f'{path}:4: "id" "SMa" is already used by line 1 from '
                               "+33•••••••78; this line is from +33•••••••78")
    assert "(hint: " in str(err)


@pytest.mark.parametrize("value, shown", [
    ('"+33 6 12 34 56 78"', "'+33 • •• •• •• 78'"),
    ("33612345678", "33•••••••78"),
    ('"06.12.34.56.78"', "'06.••.••.••.78'"),
    ('"+3361234567812345678"', "'+33•••••••••••••••78'"),
    ('"12-34"', "'12-34'"),  # no number to hide: a typo shown whole
])
def test_a_bad_from_is_quoted_with_its_digits_hidden(tmp_path: Path, value: str,
                                                     shown: str) -> None:
    """stderr lands in CI logs: the error shows the number's shape, not the number."""
    path = write(tmp_path, '{"t": 0, "from": ' + value + ', "to": "+33644649021", '
                 '"body": "x"}')
    err = error_for(path)
    assert err.line == 1 and f'"from" is not a phone number: {shown}' in str(err), str(err)


def test_an_id_reused_by_the_same_sender_is_a_retry(tmp_path: Path) -> None:
    """A provider retry repeats the id from the same sender: the policy's dedup rule is for
    it, so the reader keeps both records."""
    path = write(tmp_path, _with_id(0, "+33612345678", "SMa"), _with_id(1, "+33712345678", None),
                 _with_id(5, "+33612345678", "SMa"))
    assert [r.message_id for r in read_trace(path)] == ["SMa", default_message_id(1), "SMa"]


def test_an_id_that_collides_with_a_positional_id_is_refused(tmp_path: Path) -> None:
    """A line without an id is numbered by position; another sender may not take that id."""
    path = write(tmp_path, _with_id(0, "+33612345678", None),
                 _with_id(1, "+33712345678", default_message_id(0)))
    err = error_for(path)
    assert err.line == 2 and "already used by line 1" in str(err)
    # line 1 carries no "id": the message says its id comes from its position
    assert ('already used by line 1 from +33•••••••78, which has no "id" and is numbered so '
            "by its position; this line is from" in str(err)), str(err)


def test_a_line_without_id_whose_position_clashes_says_it_has_no_id(tmp_path: Path) -> None:
    """The clashing line itself has no "id": it used to read '"id" "SM...1" is already
    used', naming an id the line does not carry."""
    path = write(tmp_path, _with_id(0, "+33612345678", default_message_id(1)),
                 _with_id(1, "+33712345678", None))
    err = error_for(path)
    assert err.line == 2
    assert str(err).startswith(
        f'{path}:2: this line has no "id", so its position numbers it '
        f'"{default_message_id(1)}", which line 1 from +33•••••••78 already uses; '), str(err)


@pytest.mark.parametrize("message_id", ["C" * 65, "SM\\u0000x", "SM\\ufffdx"])
def test_an_id_the_responder_refuses_is_refused(tmp_path: Path, message_id: str) -> None:
    """The trace took an id of 65 characters (or with NUL / U+FFFD): simulate replied to
    it, while the live responder answered its webhook 400 and `raidsim load` scored the
    run without that message, so the two drivers disagreed on spend and coverage."""
    from responder.app import MAX_ID_LEN
    from sim.trace import MAX_ID_CHARS

    assert MAX_ID_CHARS == MAX_ID_LEN
    path = write(tmp_path, GOOD, GOOD.replace('"t": 0.5', '"t": 1').replace(
        "}", f', "id": "{message_id}"}}'))
    error = error_for(path)
    assert f"{path}:2:" in str(error) and '"id" must be at most 64 characters' in str(error)
    assert error.hint and "leave it out" in error.hint
    ok = write(tmp_path, GOOD.replace("}", f', "id": "{"C" * 64}"}}'))
    assert [r.message_id for r in read_trace(ok)] == ["C" * 64]


@pytest.mark.parametrize(("line", "hint"), [
    ('{"from": "+33612345678", "to": "+33644649021", "body": ""}',
     'write "t": 12.5 (seconds since the trace start)'),
    ('{"t": null, "from": "+33612345678", "to": "+33644649021", "body": ""}',
     'write "t": 12.5 (seconds since the trace start)'),
    ('{"T": 1, "from": "+33612345678", "to": "+33644649021", "body": ""}',
     'write "t", not "T": keys are lowercase'),
    ('{"time": 1, "from": "+33612345678", "to": "+33644649021", "body": ""}',
     'write "t", not "time"'),
    ('{"timestamp": 1, "from": "+33612345678", "to": "+33644649021", "body": ""}',
     'write "t", not "timestamp"'),
])
def test_a_line_without_t_says_t_is_missing_and_names_the_near_key(
        tmp_path: Path, line: str, hint: str) -> None:
    """It said '"t" must be a number of seconds, got None' where a line without "from" or
    "body" says 'missing' and names the key that looks meant for it."""
    err = error_for(write(tmp_path, GOOD, line))
    assert str(err).startswith(f'{tmp_path / "trace.jsonl"}:2: missing "t" (hint: {hint}')
    assert "None" not in str(err)


def test_an_integer_id_is_a_capture_sequence_number_read_as_its_decimal_string(
        tmp_path: Path) -> None:
    """The shared trace format defines no "id" and ignores keys it does not define, so a
    capture numbering its lines ("id": 17) is a valid trace: it used to stop the run (exit
    2). An integer id names the message as its decimal string; reuse rules still apply."""
    base = '{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "Salut"'
    records = list(read_trace(write(tmp_path, GOOD, base + ', "id": 17}',
                                    base + ', "id": -3}')))
    assert [r.message_id for r in records] == [default_message_id(0), "17", "-3"]
    other = base.replace("+33612345678", "+33612345679")
    err = error_for(write(tmp_path, GOOD, base + ', "id": 17}', other + ', "id": "17"}'))
    assert err.line == 3 and '"id" "17" is already used by line 2' in str(err)
    err = error_for(write(tmp_path, GOOD, base + ', "id": 1' + "0" * 70 + "}"))
    assert err.line == 2 and '"id" must be at most 64 characters' in str(err)
