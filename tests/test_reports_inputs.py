"""Hand-edited results files and threshold typos, found by a CI walkthrough: each is exit
2 with a message that names the fix, never a traceback (exit 3), gigabytes of output, a
JUnit file a CI server cannot parse, or a gate that silently checks nothing."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from raidsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
PRESS = ROOT / "scenarios" / "press-surge.toml"


@pytest.fixture(scope="module")
def results_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("r") / "r.json"
    assert main(["simulate", str(PRESS), "--json", str(out), "--quiet"]) == 0
    return out.read_text(encoding="utf-8")


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def edited(tmp_path: Path, text: str, pattern: str, replacement: str) -> Path:
    path = tmp_path / "edited.json"
    new, count = re.subn(pattern, replacement, text, count=1)
    assert count == 1, pattern
    path.write_text(new, encoding="utf-8")
    return path


@pytest.mark.parametrize("limit", ["1e30", "1e26", "1e999999999", "1e-999999999",
                                   "0.0000000000001"])
def test_an_absurd_threshold_limit_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str,
        limit: str) -> None:
    results = tmp_path / "r.json"
    results.write_text(results_text, encoding="utf-8")
    code, _, err = run(capsys, "report", results, "-o", tmp_path / "out",
                       "--threshold", f"spend_eur<={limit}")
    assert code == 2, err
    assert "out of range" in err or "decimal places" in err
    assert not (tmp_path / "out").exists()  # nothing written, let alone gigabytes


def test_digits_of_other_scripts_are_not_a_limit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str) -> None:
    results = tmp_path / "r.json"
    results.write_text(results_text, encoding="utf-8")
    code, _, err = run(capsys, "report", results, "--threshold",
                       "spend_eur<=\u0661\u0662")
    assert code == 2 and "is not a number" in err


@pytest.mark.parametrize(("pattern", "replacement", "problem"), [
    (r'"spend_eur": [0-9.]+', '"spend_eur": 1e30', "out of range"),
    (r'"spend_eur": [0-9.]+', '"spend_eur": 1e400', "out of range"),
    (r'"spend_eur": [0-9.]+', '"spend_eur": NaN', "NaN is not valid JSON"),
    (r'"legit_senders": [0-9]+', '"legit_senders": ' + "9" * 5001, "more than 20 digits"),
])
def test_a_results_number_out_of_range_names_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str, pattern: str,
        replacement: str, problem: str) -> None:
    path = edited(tmp_path, results_text, pattern, replacement)
    line = path.read_text(encoding="utf-8")[:path.read_text(encoding="utf-8").index(
        replacement.split(": ")[1][:6])].count("\n") + 1
    for args in (("report", path), ("report", "compare", path, path)):
        code, _, err = run(capsys, *args)
        assert code == 2, err
        assert f"{path}:{line}:" in err and problem in err
        assert "set_int_max_str_digits" not in err


def test_a_recorded_threshold_is_read_as_strictly_as_a_scenario_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str) -> None:
    path = edited(tmp_path, results_text, r'"op": "<="', '"op": "<=", "abort_on_fail": "yes"')
    code, _, err = run(capsys, "report", path)
    assert code == 2 and "abort_on_fail must be true or false" in err


def test_a_control_character_in_the_scenario_name_keeps_junit_and_html_readable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str) -> None:
    data = json.loads(results_text)
    data["scenario"] = "drip\x1braid\x85"
    path = tmp_path / "ctl.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = run(capsys, "report", path, "-o", tmp_path / "out")
    assert code == 0, err
    ET.parse(tmp_path / "out" / "junit.xml")  # parses
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in html and "\x85" not in html and "drip\ufffdraid" in html
    scenario = tmp_path / "ctl.toml"
    scenario.write_text(PRESS.read_text(encoding="utf-8").replace(
        'name = "press-surge"', 'name = "press\\u001bsurge"'), encoding="utf-8")
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2 and "name holds a control character" in err


@pytest.mark.parametrize(("value", "problem"), [
    ("[]", "an empty list sets no threshold"),
    ('"spend_eur <= 1180"', 'the value repeats the metric; write only the operator and the '
                            'limit: spend_eur = "<= 1180"'),
])
def test_threshold_table_mistakes_are_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, problem: str) -> None:
    text = PRESS.read_text(encoding="utf-8")
    assert "\n[thresholds]\n" in text
    scenario = tmp_path / "s.toml"
    scenario.write_text(re.sub(r"(?m)^spend_eur = .*$", f"spend_eur = {value}", text),
                        encoding="utf-8")
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert problem in err and f"{scenario}:" in err


def test_an_empty_sweep_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sweep", PRESS, "--param", "surge.factor=3,,4")
    assert code == 2 and "an empty value between commas" in err


def test_report_output_mistakes_name_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str) -> None:
    results = tmp_path / "r.json"
    results.write_text(results_text, encoding="utf-8")
    code, _, err = run(capsys, "report", results, "-o", results)
    assert code == 2 and "exists and is not a directory" in err
    import os

    os.environ["GITHUB_STEP_SUMMARY"] = str(tmp_path)  # a folder: cannot be appended to
    try:
        code, _, err = run(capsys, "report", results, "-o", tmp_path / "out")
    finally:
        del os.environ["GITHUB_STEP_SUMMARY"]
    assert code == 0, err  # the gate passed: the courtesy summary does not fail it
    assert "cannot append the summary to GITHUB_STEP_SUMMARY" in err


def test_compare_says_not_a_number_for_a_value_that_is_there(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str) -> None:
    base = tmp_path / "base.json"
    base.write_text(results_text, encoding="utf-8")
    new = edited(tmp_path, results_text, r'"spend_eur": ([0-9.]+)', r'"spend_eur": "\1"')
    code, out, _ = run(capsys, "report", "compare", base, new)
    assert code == 1
    assert "❌ not a number" in out and "❌ missing" not in out


@pytest.mark.parametrize(("text", "hint"), [
    ("messages = inf", "write messages = 1"),
    ("messages = nan", "write messages = 1"),
    ('messages = "4600"', "write messages = 4600"),
])
def test_a_whole_number_field_given_otherwise_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, hint: str) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "x"\nseed = 1\nduration = "1h"\n[[traffic]]\n'
                        f'kind = "organic"\n{text}\n', encoding="utf-8")
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}:6:" in err and hint in err


@pytest.mark.parametrize("seeds", [5, {"0": 1}, None, []])
def test_replication_seeds_that_are_no_list_still_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str,
        seeds: object) -> None:
    """A damaged ``replications.seeds`` (a number) crashed the summary (exit 3); the report
    is written, naming no seed range."""
    results = json.loads(results_text)
    results["replications"] = {"n": 2, "seeds": seeds}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    code, _, err = run(capsys, "report", path, "-o", tmp_path / "out")
    assert code == 0, err
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "Replications (2 seeds)" in summary and "over every run" in summary


def test_a_base_value_near_zero_is_reported_without_a_percentage(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], results_text: str) -> None:
    """A naive spend or a base count of 1e-300 (a damaged file) made a percentage of 300
    digits, and quantizing it raised InvalidOperation (exit 3) in the summary and in
    `report compare`. Such a number is now refused when the file is read (at most 20
    decimal places); the smallest one a file may hold is still reported without one."""
    results = json.loads(results_text)
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps({**results, "naive_spend_eur": 1e-300}), encoding="utf-8")
    code, _, err = run(capsys, "report", damaged, "-o", tmp_path / "never")
    assert code == 2 and "the number 1e-300 has more than 20 decimal places" in err, err
    results["naive_spend_eur"] = 1e-20
    results["decisions"]["by_rule"]["first_contact"] = 1e-20
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps(results), encoding="utf-8")
    base = tmp_path / "base.json"
    base.write_text(results_text, encoding="utf-8")
    code, _, err = run(capsys, "report", tiny, "-o", tmp_path / "out")
    assert code == 0, err
    assert "this policy saves" in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    code, out, err = run(capsys, "report", "compare", tiny, base)
    assert code == 0, err
    assert "| `first_contact` | 1E-20 |" in out
