"""``raidsim report`` and ``raidsim report compare``: exit codes and what users read."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from raidsim.cli import main
from reports import apply, parse_threshold
from reports.compare import compare
from reports.results import load, write

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
DEFAULT = str(FIXTURES / "results_default.json")
LENIENT = str(FIXTURES / "results_lenient.json")


def test_breached_threshold_exits_1_names_it_and_lists_it_in_junit(tmp_path, capsys):
    """--threshold 'spend_eur<=1' exits 1, the console names value and limit, and
    junit.xml carries the failure."""
    code = main(["report", DEFAULT, "-o", str(tmp_path), "--threshold", "spend_eur<=1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "threshold failed: spend_eur <= €1.00: value €85.92 (limit <= €1.00)" in out
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    (case,) = suite.iter("testcase")
    assert case.get("name") == "spend_eur <= €1.00"
    assert case.find("failure") is not None
    written = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert written["passed"] is False
    assert written["thresholds"][0]["value"] == 85.92


def test_threshold_on_a_missing_metric_exits_1_and_says_missing(capsys):
    """--threshold 'no_such_metric<5' fails closed, and says the metric is missing."""
    code = main(["report", DEFAULT, "--threshold", "no_such_metric<5"])
    out = capsys.readouterr().out
    assert code == 1
    assert "no_such_metric < 5: metric 'no_such_metric' is missing from the results" in out


def test_bad_threshold_syntax_exits_2_and_shows_the_expected_syntax(capsys):
    """--threshold 'spend_eur<<5' is a usage error that teaches the syntax."""
    code = main(["report", DEFAULT, "--threshold", "spend_eur<<5"])
    err = capsys.readouterr().err
    assert code == 2
    assert "'<<' is not an operator" in err
    assert "expected METRIC OP NUMBER, e.g. 'spend_eur<=600'" in err


def test_passing_thresholds_exit_0_and_recorded_thresholds_are_re_checked(tmp_path, capsys):
    """Thresholds already in the results are evaluated again next to --threshold ones."""
    results = load(DEFAULT)
    apply(results, [parse_threshold("legit_coverage >= 0.99")])
    path = write(results, tmp_path / "in.json")
    assert main(["report", str(path), "--threshold", "spend_eur<=600"]) == 0
    out = capsys.readouterr().out
    assert "PASS  legit_coverage >= 0.99: value 0.9944" in out
    assert "PASS  spend_eur <= €600.00: value €85.92" in out
    assert "thresholds: all 2 passed" in out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{\n  "spend_eur": 1,\n  "x": tru\n}\n', "bad.json:3:8: invalid JSON"),
        ("[1, 2]\n", "bad.json:1: results must be a JSON object"),
        ('{"spend_eur": NaN}', "NaN is not valid JSON"),
    ],
)
def test_bad_results_file_exits_2_naming_file_and_line(tmp_path, capsys, content, needle):
    """Unreadable results are an input error (exit 2) that names the file and line."""
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    assert main(["report", str(bad)]) == 2
    assert needle in capsys.readouterr().err


def test_missing_file_and_wrong_arity_are_usage_errors(tmp_path, capsys):
    """A missing file, two files without 'compare', or compare with one file exit 2."""
    assert main(["report", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such results file" in capsys.readouterr().err
    assert main(["report", DEFAULT, LENIENT]) == 2
    assert "expected one results file, got 2" in capsys.readouterr().err
    assert main(["report", "compare", DEFAULT]) == 2
    assert "compare takes BASE.json and NEW.json" in capsys.readouterr().err


def test_compare_shows_the_spend_delta_to_the_cent(tmp_path, capsys):
    """compare on two policies prints the exact spend delta and writes compare.md/json."""
    code = main(["report", "compare", DEFAULT, LENIENT, "-o", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert ("This change costs +€49.44 on anti-relous-2017-window (+57.5%): "
            "€85.92 → €135.36.") in out
    assert "| spend | €85.92 | €135.36 | +€49.44 (+57.5%) |" in out
    assert "| legit coverage | 99.44% | 99.44% | no change |" in out
    assert "| reply latency p95 | 5.088 s | 8.775 s | +3.687 s (+72.5%) |" in out
    assert "| `burst_guard` | 1,300 | 1,465 | +165 (+12.7%) |" in out
    assert (tmp_path / "compare.md").read_text(encoding="utf-8") + "\n" == out
    data = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"),
                      parse_float=Decimal)
    spend = next(m for m in data["metrics"] if m["key"] == "spend_eur")
    assert spend["delta"] == Decimal("49.44")
    assert data["passed"] is True


def test_compare_exits_1_when_new_breaks_a_threshold_base_met(tmp_path, capsys):
    """A threshold recorded in BASE gates NEW even when NEW recorded none."""
    base = load(DEFAULT)
    apply(base, [parse_threshold("spend_eur <= 100"), parse_threshold("replies.raid < 1000")])
    base_path = write(base, tmp_path / "base.json")
    code = main(["report", "compare", str(base_path), LENIENT])
    captured = capsys.readouterr()
    assert code == 1
    assert "| `spend_eur <= 100` | ✅ €85.92 | ❌ €135.36 | ❌ regression |" in captured.out
    assert "threshold regression: spend_eur <= 100" in captured.err
    # The other way round the threshold is fixed, not broken: exit 0.
    assert main(["report", "compare", LENIENT, str(base_path)]) == 0
    assert "✅ fixed" in capsys.readouterr().out


def test_compare_wording_for_savings_and_different_scenarios():
    """A cheaper NEW 'saves'; different scenarios or seeds are flagged."""
    base, new = load(LENIENT), load(DEFAULT)
    new["seed"] = 7
    comparison = compare(base, new)
    assert comparison.headline() == ("this change saves €49.44 on anti-relous-2017-window "
                                     "(-36.5%): €135.36 → €85.92")
    assert comparison.notes and "differ in seed" in comparison.notes[0]
    assert compare(base, base).headline().startswith("this change does not change spend")


def test_compare_flags_other_traffic_under_the_same_name_and_seed():
    """An edited scenario (a wave of 9,000 messages instead of 4,600) keeps its name and
    seed: the comparison said nothing and charged the traffic change to the policy. A live
    replay's latencies are wall seconds: compared with a simulation's, it says so."""
    base, new = load(DEFAULT), load(DEFAULT)
    assert not compare(base, new).notes
    new["messages"] = {**new["messages"], "total": new["messages"]["total"] + 4400}
    notes = compare(base, new).notes
    assert len(notes) == 1 and "different traffic (messages.total" in notes[0]
    live = {**load(DEFAULT), "live": {"speed": 60}}
    assert any("live replay" in note for note in compare(base, live).notes)
    capped = load(DEFAULT)
    capped["budget"] = {**capped["budget"], "cap_eur": Decimal("1500")}
    uncapped = load(DEFAULT)
    uncapped["budget"] = {**uncapped["budget"], "cap_eur": None}
    (note,) = compare(capped, uncapped).notes
    assert "different budget caps (€1,500.00 vs no cap)" in note
    as_text = {**capped, "budget": {**capped["budget"], "cap_eur": "1500.00"}}
    assert not compare(capped, as_text).notes  # load writes caps as strings


def test_compare_shows_a_coverage_change_below_a_hundredth_of_a_point():
    """One legit sender of 30,000 losing their reply is a change, not '-0.00 pp'."""
    base, new = load(DEFAULT), load(DEFAULT)
    base["legit_coverage"], new["legit_coverage"] = Decimal("1.0"), Decimal("0.999967")
    row = next(line for line in compare(base, new).markdown().splitlines()
               if line.startswith("| legit coverage |"))
    assert row == "| legit coverage | 100.00% | 99.997% | -0.0033 pp |"
    new["legit_coverage"] = Decimal("0.9944")
    assert "| legit coverage | 100.00% | 99.44% | -0.56 pp |" in compare(base, new).markdown()


def test_compare_notes_are_separate_quotes_so_they_do_not_run_together():
    """Adjacent '>' lines would render as one paragraph on GitHub: each note stands alone."""
    base, new = load(DEFAULT), load(DEFAULT)
    new["scenario"], new["seed"] = "other", 7
    lines = compare(base, new).markdown().splitlines()
    notes = [i for i, line in enumerate(lines) if line.startswith("> ")]
    assert len(notes) == 2
    assert lines[notes[0] + 1] == "" and lines[notes[1] + 1] == ""
    assert "differ in scenario" in lines[notes[0]] and "differ in seed" in lines[notes[1]]


def test_compare_writes_its_files_before_printing_to_a_pipe_closed_early(tmp_path):
    """`raidsim report compare BASE NEW -o DIR | head -8`: the print met a closed pipe
    before the files were written, so DIR held no compare.md or compare.json."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "raidsim", "report", "compare",
               str(FIXTURES / "results_default.json"), str(FIXTURES / "results_lenient.json"),
               "-o", str(tmp_path / "cmp")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        proc.stdout.close()  # the reader is gone before anything is printed
        proc.wait(timeout=60)
    assert (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8").startswith(
        "## raidsim compare")
    assert (tmp_path / "cmp" / "compare.json").exists()


def test_compare_checks_a_limit_the_change_moved_against_news_own(tmp_path, capsys):
    """A pull request that loosens spend_eur <= 80 to <= 100 on purpose failed compare with
    "threshold regression: spend_eur <= 80" and no word that the limit had moved; the limit
    NEW's file sets is the one checked now, and the move is named."""
    base, new = load(DEFAULT), load(DEFAULT)  # €85.92 both
    base["thresholds"] = [{"name": "spend_eur", "op": "<=", "limit": 80}]
    new["thresholds"] = [{"name": "spend_eur", "op": "<=", "limit": 100},
                         {"name": "legit_coverage", "op": ">=", "limit": Decimal("0.9")}]
    comparison = compare(base, new)
    assert "NEW changes the limit of spend_eur <= from 80 to 100: NEW's is the one checked" \
        in comparison.notes
    assert [c.threshold.expression for c in comparison.thresholds] == [
        "spend_eur <= 100", "legit_coverage >= 0.9"]
    assert not comparison.regressions
    base_file, new_file = tmp_path / "base.json", tmp_path / "new.json"
    write(base, base_file)
    write(new, new_file)
    assert main(["report", "compare", str(base_file), str(new_file)]) == 0
    # a threshold the change drops (rather than moves) is still held against it
    base["thresholds"] = [{"name": "spend_eur", "op": "<=", "limit": 90}]
    new["thresholds"], new["spend_eur"] = [], Decimal("95")
    write(base, base_file)
    write(new, new_file)
    assert main(["report", "compare", str(base_file), str(new_file)]) == 1
    assert "threshold regression: spend_eur <= 90" in capsys.readouterr().err


def test_compare_refuses_runs_of_two_scenarios(tmp_path, capsys):
    """Each scenario's thresholds were applied to the other's results and the table said
    "this change costs" what two scenarios differ by: exit 2 now, with the reason."""
    other = load(DEFAULT)
    other["scenario"] = "press-surge"
    path = tmp_path / "other.json"
    write(other, path)
    assert main(["report", "compare", DEFAULT, str(path)]) == 2
    err = capsys.readouterr().err
    assert ("BASE ran scenario 'anti-relous-2017-window' and NEW 'press-surge': their "
            "difference is not a change's") in err
