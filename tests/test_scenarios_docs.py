"""docs/scenarios.md documents every [[traffic]] key of every kind, with its type and default.

The reference tables under "Traffic kinds" are checked against what ``parse_spec`` accepts
(``known_keys``, the list an unknown key's error prints), the spec's field types, and its
defaults: every documented default, written explicitly in a scenario, loads to the same spec
as leaving the key out.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from sim.scenario import load_scenario
from sim.traffic import KINDS
from sim.traffic.base import (
    MAX_MESSAGES,
    SpecProblem,
    TrafficSpec,
    known_keys,
    parse_spec,
    toml_key,
)
from sim.traffic.raid import Raid

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"
COMMON = "common"
# common keys whose default is not a TOML value (required, or depends on the kind)
NO_LITERAL_DEFAULT = {"kind", "duration", "label"}


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Traffic kinds")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _rows(block: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``block``, as stripped cells."""
    lines = [line for line in block.splitlines() if line.startswith("|")]
    assert len(lines) >= 3, block[:200]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[2:]]


def _first_table(block: str) -> str:
    """``block`` up to the end of its first table."""
    match = re.search(r"(?:^\|.*\n)+", block, re.M)
    assert match, block[:200]
    return match.group(0)


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected a `key` cell, got {cell!r}"
    return match.group(1)


def _reference() -> dict[str, dict[str, tuple[str, str, str]]]:
    """{kind or COMMON: {key: (type, default, what)}} from the reference subsections."""
    tables: dict[str, dict[str, tuple[str, str, str]]] = {}
    for heading, body in re.findall(r"^### ([^\n]+)\n(.*?)(?=^### |\Z)", _section(), re.M | re.S):
        own = re.fullmatch(r"`(\w+)` keys", heading.strip())
        name = own.group(1) if own else COMMON
        assert name not in tables, f"two reference tables for {name}"
        rows = _rows(_first_table(body))
        assert all(len(row) == 4 for row in rows), heading
        keys = [_code(row[0]) for row in rows]
        assert len(keys) == len(set(keys)), f"{heading}: a key listed twice"
        tables[name] = {_code(row[0]): (row[1], row[2], row[3]) for row in rows}
    return tables


def _overview() -> dict[str, tuple[str, set[str]]]:
    """{kind: (label, own keys)} from the "Traffic kinds" summary table."""
    rows = _rows(_first_table(_section()))
    return {_code(row[0]): (row[1], set(re.findall(r"`(\w+)`", row[3]))) for row in rows}


def _common_keys() -> set[str]:
    return set(known_keys(TrafficSpec))


def test_every_kind_has_a_reference_table_and_the_common_keys_one() -> None:
    assert set(_reference()) == {COMMON, *KINDS}


def test_each_reference_table_lists_exactly_the_keys_the_parser_accepts() -> None:
    """Common keys plus the kind's own are the known keys ``parse_spec`` names, no more."""
    reference = _reference()
    assert set(reference[COMMON]) == _common_keys()
    for kind, spec_class in KINDS.items():
        own = set(reference[kind])
        assert not own & _common_keys(), f"{kind}: a common key in its own table"
        assert own | set(reference[COMMON]) == set(known_keys(spec_class)), kind


def test_the_summary_table_agrees_with_the_reference() -> None:
    """The "its own keys" column and the label column match the code too."""
    overview = _overview()
    assert set(overview) == set(KINDS)
    for kind, spec_class in KINDS.items():
        label, own = overview[kind]
        assert label == spec_class.default_label, kind
        assert own == set(known_keys(spec_class)) - _common_keys(), kind


def _is_share(spec_class: type[TrafficSpec], key: str) -> bool:
    try:
        parse_spec(spec_class, {key: 1.5})
    except SpecProblem as problem:
        return problem.key == key and "share between 0 and 1" in problem.message
    return False


def _expected_type(spec_class: type[TrafficSpec], name: str, hint: typing.Any) -> str:
    duration = name.endswith("_s")
    if typing.get_origin(hint) in (types.UnionType, typing.Union):  # "X | None"
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        item, *rest = typing.get_args(hint)
        plural = "durations" if duration else {int: "integers", float: "numbers"}[item]
        if rest == [Ellipsis]:
            return f"list of {plural}"
        return f"[low, high] range of {plural}"
    if hint is float:
        if duration:
            return "duration"
        return "share 0-1" if _is_share(spec_class, toml_key(name)) else "number"
    return {int: "integer", bool: "bool", str: "string"}[hint]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_documented_types_are_the_parser_s(kind: str) -> None:
    spec_class = KINDS[kind]
    reference = _reference()
    documented = {**reference[COMMON], **reference[kind]}
    assert documented["kind"][0] == "string"
    hints = typing.get_type_hints(spec_class)
    for field in fields(spec_class):
        key = toml_key(field.name)
        assert documented[key][0] == _expected_type(spec_class, field.name, hints[field.name]), (
            f"{kind}.{key}")


def _literal(cell: str) -> str | None:
    """The TOML value a default cell starts with (`"4m"`, `[1, 3]`), or None for prose."""
    match = re.match(r"`([^`]+)`", cell)
    return match.group(1) if match else None


def test_every_documented_default_written_out_loads_as_the_default(tmp_path: Path) -> None:
    """One table per kind with each documented default written explicitly loads through
    ``load_scenario`` to the very spec that leaving the keys out gives."""
    reference = _reference()
    for key, (_, default, _) in reference[COMMON].items():
        assert (_literal(default) is None) == (key in NO_LITERAL_DEFAULT), key
    lines = ['name = "documented-defaults"', 'duration = "2d"', ""]
    for kind in KINDS:
        lines += ["[[traffic]]", f'kind = "{kind}"']
        for key, (_, default, _) in {**reference[COMMON], **reference[kind]}.items():
            value = _literal(default)
            assert value is not None or key in NO_LITERAL_DEFAULT, f"{kind}.{key}: {default!r}"
            if value is not None:
                lines.append(f"{key} = {value}")
        lines.append("")
    # every table above sends its default 0 messages; a scenario must send some
    lines += ["[[traffic]]", 'kind = "organic"', "messages = 1", ""]
    path = tmp_path / "defaults.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    scenario = load_scenario(path)
    assert [spec.kind for spec in scenario.traffic] == [*KINDS, "organic"]
    for spec in scenario.traffic[:-1]:
        assert spec == parse_spec(KINDS[spec.kind], {}), spec.kind


def test_a_small_scenario_from_documented_values_loads(tmp_path: Path) -> None:
    """What a reader writes from the tables alone: lists for waves, ranges, durations."""
    path = tmp_path / "from-docs.toml"
    path.write_text("""\
duration = "2d"

[[traffic]]
kind = "organic"
messages = 200
messages_per_sender = [1, 3]
gap = "4m"
buzz_floor = 0.3

[[traffic]]
kind = "press"
start = "20h"
messages = 100
rise = "4m"
decay = "25m"

[[traffic]]
kind = "raid"
start = "1d"
duration = "12h"
messages = 500
waves = ["0m", "3h"]
wave_sizes = [1.0, 0.5]
wave_decay = "90m"
script_interval = ["1s", "8s"]
per_number = [1, 4]

[[traffic]]
kind = "drip"
messages = 50
daily_cycle = false

[[traffic]]
kind = "flood"
start = "1d2h"
duration = "10m"
rate = 2.0
virtual = 0.8
""", encoding="utf-8")
    scenario = load_scenario(path)
    raid = scenario.traffic[2]
    assert isinstance(raid, Raid)
    assert raid.waves_s == (0.0, 10800.0) and raid.script_interval_s == (1.0, 8.0)


def test_every_integer_range_documents_the_message_bound_the_parser_checks() -> None:
    """Each [low, high] range of integers says "high at most 10,000,000", and the parser
    takes that high end and refuses one more (a runaway range once took 22 GB)."""
    reference = _reference()
    for kind, spec_class in KINDS.items():
        for key, (kind_of, _, what) in reference[kind].items():
            if kind_of != "[low, high] range of integers":
                continue
            assert f"high at most {MAX_MESSAGES:,}" in what, f"{kind}.{key}"
            spec = parse_spec(spec_class, {key: [1, MAX_MESSAGES]})
            assert getattr(spec, key)[1] == MAX_MESSAGES
            with pytest.raises(SpecProblem) as problem:
                parse_spec(spec_class, {key: [1, MAX_MESSAGES + 1]})
            assert problem.value.key == key and f"{MAX_MESSAGES:,}" in problem.value.message
