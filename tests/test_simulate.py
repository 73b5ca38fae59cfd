"""`raidsim simulate` end to end, as a user runs it: the 2017 raid, determinism, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "scenarios" / "anti-relous-2017.toml"


def raidsim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raidsim", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, bytes, str]:
    out = tmp_path_factory.mktemp("ref") / "r.json"
    run = raidsim("simulate", str(REFERENCE), "--json", str(out))
    assert run.returncode == 0, run.stderr
    raw = out.read_bytes()
    return json.loads(raw, parse_float=Decimal), raw, run.stdout


def test_reference_raid_matches_what_was_reported(reference: tuple[dict, bytes, str]) -> None:
    """About 30,000 SMS, about 22,000 of them raid, about EUR 4,800 to answer them all."""
    results, _, _ = reference
    assert abs(results["messages"]["total"] - 30_000) <= 3_000
    assert abs(results["messages"]["raid"] - 22_000) <= 2_200
    assert abs(results["naive_spend_eur"] - Decimal(4800)) <= Decimal(480)


def test_defaults_spend_near_the_oracle_and_answer_genuine_senders(
    reference: tuple[dict, bytes, str],
) -> None:
    """Default defences: at most 1.25 x the oracle spend, with 99% of genuine senders answered."""
    results, _, _ = reference
    assert results["spend_eur"] <= Decimal("1.25") * results["oracle_spend_eur"]
    assert results["legit_coverage"] >= Decimal("0.99")
    assert results["spend_eur"] < results["per_sender_spend_eur"]
    assert results["budget"]["cap_eur"] is not None
    assert results["spend_eur"] <= results["budget"]["cap_eur"]


def test_results_have_the_contract_keys(reference: tuple[dict, bytes, str]) -> None:
    """Every key the results contract (docs/results.md) requires is present, shaped right."""
    results, _, _ = reference
    for key in ("scenario", "seed", "policy", "messages", "replies", "spend_eur",
                "oracle_spend_eur", "naive_spend_eur", "legit_senders",
                "legit_senders_replied", "legit_coverage", "reply_latency_s", "budget",
                "thresholds", "passed"):
        assert key in results, key
    assert set(results["reply_latency_s"]) >= {"p50", "p95", "p99"}
    assert results["seed"] == 2017
    assert results["passed"] is True
    assert {t["name"] for t in results["thresholds"]} >= {"spend_eur", "legit_coverage"}


def test_summary_names_every_spend(reference: tuple[dict, bytes, str]) -> None:
    """The printed summary has naive, per-sender, defended and oracle spend, coverage, latency."""
    _, _, stdout = reference
    for label in ("naive spend", "per-sender spend", "defended spend", "oracle spend",
                  "legit coverage", "reply latency", "p50", "p95", "p99"):
        assert label in stdout, label


def test_same_seed_same_bytes(reference: tuple[dict, bytes, str], tmp_path: Path) -> None:
    """The same scenario and seed give a byte-identical results JSON."""
    _, raw, _ = reference
    again = tmp_path / "again.json"
    run = raidsim("simulate", str(REFERENCE), "--json", str(again), "--quiet")
    assert run.returncode == 0, run.stderr
    assert again.read_bytes() == raw


def test_trace_round_trip_scores_the_same(tmp_path: Path) -> None:
    """A scenario's trace, scored with --trace and the scenario's policy, decides the same."""
    scenario = ROOT / "scenarios" / "rotating-flood.toml"
    trace = tmp_path / "t.jsonl"
    assert raidsim("trace", str(scenario), "-o", str(trace)).returncode == 0
    direct, replay = tmp_path / "a.json", tmp_path / "b.json"
    assert raidsim("simulate", str(scenario), "--json", str(direct), "--quiet").returncode == 0
    run = raidsim("simulate", str(scenario), "--trace", str(trace), "--json", str(replay),
                  "--quiet")
    assert run.returncode == 0, run.stderr
    a, b = json.loads(direct.read_text()), json.loads(replay.read_text())
    for key in ("messages", "replies", "spend_eur", "legit_coverage", "decisions"):
        assert a[key] == b[key], key


def test_threshold_breach_exits_1(tmp_path: Path) -> None:
    """A threshold the run breaks exits 1 and names it on the console."""
    run = raidsim("simulate", str(ROOT / "scenarios" / "press-surge.toml"),
                  "--threshold", "spend_eur<=1")
    assert run.returncode == 1
    assert "spend_eur" in run.stdout + run.stderr


def test_replications_report_confidence_intervals(tmp_path: Path) -> None:
    """--replications N runs N seeds and reports 95% intervals around the mean."""
    out = tmp_path / "r.json"
    run = raidsim("simulate", str(ROOT / "scenarios" / "press-surge.toml"),
                  "--replications", "3", "--json", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    reps = json.loads(out.read_text())["replications"]
    assert reps["n"] == 3
    assert reps["seeds"] == [reps["seeds"][0] + i for i in range(3)]
    spend = reps["spend_eur"]
    assert spend["low"] <= spend["mean"] <= spend["high"]
    coverage = reps["legit_coverage"]  # a share: its interval stays within [0, 1]
    assert 0.0 <= coverage["low"] <= coverage["mean"] <= coverage["high"] <= 1.0
    # The same replications in two worker processes: the same bytes.
    parallel = tmp_path / "r2.json"
    run = raidsim("simulate", str(ROOT / "scenarios" / "press-surge.toml"),
                  "--replications", "3", "--jobs", "2", "--json", str(parallel), "--quiet")
    assert run.returncode == 0, run.stderr
    assert parallel.read_bytes() == out.read_bytes()


def test_coverage_interval_stays_a_share() -> None:
    """A t-interval around a share near 100 % is clipped at 1, not printed as 100.01 %."""
    from sim.run import _ci95

    values = [1.0, 0.9992, 1.0, 1.0]
    assert _ci95(values)["high"] > 1.0  # what the plain interval says
    clipped = _ci95(values, bounds=(0.0, 1.0))
    assert clipped["high"] == 1.0
    assert clipped["low"] == _ci95(values)["low"] and clipped["mean"] == 0.9998
    # replications none of which replied to anyone have no latency to average
    assert _ci95([]) == {"mean": None, "low": None, "high": None, "runs": 0}
    assert clipped["runs"] == 4  # how many runs each interval stands on


def test_ucs2_reply_text_warns_about_cost(tmp_path: Path) -> None:
    """A reply text that is UCS-2 or multi-segment is flagged with what it does to the cost."""
    source = ROOT / "scenarios" / "press-surge.toml"
    original = source.read_text(encoding="utf-8")
    assert '[reply]\ntext = "' in original
    text = original.replace('[reply]\ntext = "', '[reply]\ntext = "Ça, ça suffit. ', 1)
    scenario = tmp_path / "ucs2.toml"
    scenario.write_text(text, encoding="utf-8")
    run = raidsim("simulate", str(scenario), "--quiet")
    assert "warning" in run.stderr and "UCS-2" in run.stderr
    assert "'ç'" in run.stderr  # names the culprit...
    assert "'Ç'" not in run.stderr  # ...and not the capital, which is GSM-7


@pytest.mark.parametrize(
    ("content", "where", "hint"),
    [
        ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "a"}\nnot json\n',
         ":2:", "one object per line"),
        ('{"t": 5, "from": "+33612345678", "to": "+33644649021", "body": "a"}\n'
         '{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "b"}\n',
         ":2:", "sort the lines"),
    ],
)
def test_bad_trace_exits_2_naming_file_and_line(tmp_path: Path, content: str, where: str,
                                                hint: str) -> None:
    """A malformed trace line stops the run with exit 2, the file, the line and the fix."""
    trace = tmp_path / "bad.jsonl"
    trace.write_text(content, encoding="utf-8")
    run = raidsim("simulate", "--trace", str(trace))
    assert run.returncode == 2
    assert f"bad.jsonl{where}" in run.stderr
    assert hint in run.stderr


def test_unknown_traffic_kind_exits_2_naming_the_line(tmp_path: Path) -> None:
    """A typo in a scenario's traffic kind names the line and the known kinds."""
    text = REFERENCE.read_text(encoding="utf-8")
    scenario = tmp_path / "typo.toml"
    scenario.write_text(text.replace('kind = "press"', 'kind = "pres"', 1), encoding="utf-8")
    line = next(i for i, row in enumerate(scenario.read_text().splitlines(), 1)
                if 'kind = "pres"' in row)
    run = raidsim("simulate", str(scenario))
    assert run.returncode == 2
    assert f"typo.toml:{line}:" in run.stderr
    assert "known kinds" in run.stderr


def test_usage_errors_exit_2() -> None:
    """No input at all, or a bad flag value, is a usage error."""
    assert raidsim("simulate").returncode == 2
    assert raidsim("simulate", str(REFERENCE), "--replications", "0").returncode == 2
    assert raidsim("simulate", str(REFERENCE), "--jobs", "-1").returncode == 2
    assert raidsim("simulate", str(REFERENCE), "--threshold", "spend_eur<<5").returncode == 2


def test_no_legit_reply_means_no_latency_and_a_latency_gate_fails(tmp_path: Path) -> None:
    """A budget of €0 answers nobody: latency is null (not 0 s), the summary says so, and
    `reply_latency_s.p95<30` fails instead of passing on nothing sent."""
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(
        json.dumps({"t": 60.0 * i, "from": f"+3361234{i:04d}", "to": "+33644649021",
                    "body": "Salut, on m'a donné ce numéro", "label": "legit"}) + "\n"
        for i in range(5)), encoding="utf-8")
    policy = tmp_path / "nothing.toml"
    policy.write_text('[budget]\ntotal_eur = "0"\n', encoding="utf-8")
    out = tmp_path / "r.json"
    run = raidsim("simulate", "--trace", str(trace), "--policy", str(policy), "--json",
                  str(out), "--threshold", "reply_latency_s.p95<30")
    assert run.returncode == 1, run.stderr
    results = json.loads(out.read_text())
    assert results["replies"]["legit"] == 0
    assert results["reply_latency_s"] == {"p50": None, "p95": None, "p99": None, "max": None}
    assert "reply latency     n/a (no legit sender got a reply)" in run.stdout
    assert "reply_latency_s.p95" in run.stdout + run.stderr


@pytest.mark.parametrize("label", [None, "raid"])
def test_no_legit_sender_means_no_coverage_and_a_coverage_gate_fails(tmp_path: Path,
                                                                      label: str | None) -> None:
    """An unlabelled or raid-only trace has no legit sender to cover: coverage is null (not
    a vacuous 100 %), the summary says so, and `legit_coverage>=0.99` fails."""
    trace = tmp_path / "t.jsonl"
    lines = []
    for i in range(4):
        line: dict[str, object] = {"t": 60.0 * i, "from": f"+3361234{i:04d}",
                                   "to": "+33644649021", "body": "Salut"}
        if label:
            line["label"] = label
        lines.append(json.dumps(line) + "\n")
    trace.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "r.json"
    run = raidsim("simulate", "--trace", str(trace), "--json", str(out),
                  "--threshold", "legit_coverage>=0.99")
    assert run.returncode == 1, run.stderr
    results = json.loads(out.read_text())
    assert results["legit_senders"] == 0 and results["legit_coverage"] is None
    assert "legit coverage    n/a (no message labelled legit)" in run.stdout


def test_the_gates_docs_ci_md_shows_pass_on_the_reference_raid(
    reference: tuple[dict, bytes, str],
) -> None:
    """docs/ci.md's first command gated on `reply_latency_s.p95<30` (and its TOML on
    `replies.raid <= 500`), so on the raid it runs it exited 1: its examples must pass there."""
    import re
    import tomllib

    from reports.thresholds import evaluate, parse_threshold, thresholds_from_table

    results, _, _ = reference
    doc = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    (command,) = [b for b in re.findall(r"```sh\n(.*?)```", doc, re.S)
                  if "--threshold" in b and "anti-relous-2017" in b]
    gates = [parse_threshold(expr) for expr in re.findall(r"--threshold '([^']+)'", command)]
    (toml_text,) = re.findall(r"```toml\n(.*?)```", doc, re.S)
    gates += thresholds_from_table(tomllib.loads(toml_text)["thresholds"], text=toml_text)
    assert len(gates) == 8
    failing = [r for r in evaluate(results, gates) if not r.ok]
    assert not failing, failing


def test_the_summary_names_the_policy_that_defended(reference: tuple[dict, bytes, str]) -> None:
    """The defended-spend line said "default defences" whatever --policy was given."""
    from sim.run import summary_lines

    results, _, stdout = reference
    assert "  default defences (" in stdout
    lines = summary_lines({**results, "policy": "lenient"})
    (defended,) = [line for line in lines if "defended spend" in line]
    assert "  lenient defences (" in defended, defended


@pytest.mark.parametrize(("text", "expected", "absent"), [
    ("Bonjour.", None, None),
    ("Ça suffit, ça.", "fits one segment (€0.16 per reply, 14 of 70 units)", "2x"),
    ("ç" * 71, "€0.32 per reply, 2x the €0.16", "fits one segment"),
    ("x" * 161, "it needs 2 segments (161 units)", "UCS-2"),
])
def test_the_reply_warning_says_what_the_text_does_to_the_cost(
        text: str, expected: str | None, absent: str | None) -> None:
    from responder.policy import PolicyConfig
    from sim.run import reply_warning

    warning = reply_warning(PolicyConfig(reply_text=text))
    if expected is None:
        assert warning is None
        return
    assert warning is not None and expected in warning
    assert absent not in warning
