"""Every command as a pipeline uses it: bad paths, bad values and closed pipes exit cleanly.

The project's promise: exit 2 with a message naming the file and the fix on bad input,
never a Python traceback; output that other tools can read.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRESS = ROOT / "scenarios" / "press-surge.toml"
REFERENCE_RAID = ROOT / "scenarios" / "anti-relous-2017.toml"

TINY = """\
name = "tiny"
seed = 3
duration = "1d"

[[traffic]]
kind = "organic"
messages = 60
"""


def raidsim(*args: str | bytes, stdin: bytes | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "raidsim", *args], input=stdin,
                          capture_output=True, cwd=cwd or ROOT, timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))


def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    return path


def test_a_closed_pipe_stops_trace_quietly() -> None:
    """`raidsim trace -o - | head -1` ends with SIGPIPE's status, not a traceback."""
    process = subprocess.Popen([sys.executable, "-m", "raidsim", "trace", str(PRESS), "-o", "-"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # the trace is ~1 MB: far more than a pipe buffers
    with process.stderr:
        stderr = process.stderr.read().decode()
    code = process.wait(timeout=300)
    assert first.startswith(b'{"t":')
    assert "Traceback" not in stderr
    assert code == 141


def test_negative_seeds_are_usage_errors(tmp_path: Path) -> None:
    """--seed -1 is refused by simulate, trace and sweep alike, as a scenario's seed is."""
    scenario = str(tiny(tmp_path))
    for args in (("simulate", scenario), ("trace", scenario, "-o", str(tmp_path / "t.jsonl")),
                 ("sweep", scenario, "--param", "surge.factor=3")):
        run = raidsim(*args, "--seed", "-1")
        assert run.returncode == 2, (args, run.stderr)
        assert "--seed: must be 0 or more" in run.stderr
        assert "Traceback" not in run.stderr


def test_simulate_output_paths_that_cannot_be_written_are_usage_errors(tmp_path: Path) -> None:
    """--json on a folder, --report on a file, --json under a file: exit 2, named, no traceback."""
    scenario = str(tiny(tmp_path))
    folder = tmp_path / "folder"
    folder.mkdir()
    plain = tmp_path / "plain"
    plain.write_text("x")
    cases = {
        ("--json", str(folder)): f"--json {folder}: is a directory",
        ("--report", str(plain)): f"--report {plain}: exists and is not a directory",
        ("--json", str(plain / "r.json")): f"{plain / 'r.json'}: {plain} is a file, not a folder",
    }
    for flags, message in cases.items():
        run = raidsim("simulate", scenario, "--quiet", *flags)
        assert run.returncode == 2, (flags, run.stderr)
        assert message in run.stderr
        assert "Traceback" not in run.stderr
    assert plain.read_text() == "x"


def test_a_policy_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    """--policy and a scenario's policy = "file" both report a non-UTF-8 policy file, exit 2."""
    policy = tmp_path / "latin1.toml"
    policy.write_bytes(b"[surge]\nfactor = 3.0\nname = \"d\xe9fense\"\n")
    scenario = tiny(tmp_path)
    run = raidsim("simulate", str(scenario), "--policy", str(policy), "--quiet")
    assert run.returncode == 2
    assert f"{policy}:3: policy file is not UTF-8" in run.stderr
    assert "Traceback" not in run.stderr
    referring = tmp_path / "referring.toml"
    referring.write_text(TINY.replace('duration = "1d"\n',
                                      'duration = "1d"\npolicy = "latin1.toml"\n'))
    run = raidsim("simulate", str(referring), "--quiet")
    assert run.returncode == 2
    assert "latin1.toml:3: policy file is not UTF-8" in run.stderr
    assert "Traceback" not in run.stderr


def test_an_empty_trace_is_an_input_error_not_a_passing_gate(tmp_path: Path) -> None:
    """An empty or blank trace would score EUR 0 and 100 % coverage: exit 2 instead."""
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n  \n")
    for trace, reason in ((empty, "the trace has no messages"),
                          (blank, "the trace has only blank lines, no messages")):
        run = raidsim("simulate", "--trace", str(trace), "--threshold", "spend_eur<=1",
                      "--quiet")
        assert run.returncode == 2, run.stdout
        assert f"{trace}: {reason}" in run.stderr
        assert "Traceback" not in run.stderr


_RED_TEAM_TRACES = {
    # a time past the 366-day horizon: OverflowError (1e308) or MemoryError (3e10), exit 1
    "far-future": ('{"t": 1e308, "from": "+33612345678", "to": "+33644649021", "body": "x"}',
                   ':2: "t" is 1e+308 s, past the longest trace'),
    "unix-time": ('{"t": 1500000000, "from": "+33612345678", "to": "+33644649021", "body": "x"}',
                  ":2: "),
    # the last "t" silently won
    "repeated-key": ('{"t": 1, "t": 2, "from": "+33612345678", "to": "+33644649021", '
                     '"body": "x"}', ':2: the key "t" appears more than once'),
    # the genuine second sender was dropped as duplicate_id
    "reused-id": ('{"t": 1, "id": "SM0", "from": "+33712345678", "to": "+33644649021", '
                  '"body": "x"}', ':2: "id" "SM0" is already used by line 1'),
}


@pytest.mark.parametrize("command", ["simulate", "sweep", "load"])
@pytest.mark.parametrize("case", sorted(_RED_TEAM_TRACES))
def test_every_command_that_reads_a_trace_refuses_the_same_lines(
        tmp_path: Path, command: str, case: str) -> None:
    """simulate, sweep and load share one reader: each bad line is exit 2 with FILE:LINE."""
    bad_line, expected = _RED_TEAM_TRACES[case]
    trace = tmp_path / f"{case}.jsonl"
    trace.write_text('{"t": 0, "id": "SM0", "from": "+33612345678", "to": "+33644649021", '
                     f'"body": "x"}}\n{bad_line}\n', encoding="utf-8")
    extra = {"simulate": ["--quiet", "--no-progress"],
             "sweep": ["--param", "sender_limit.replies=1,2", "--no-progress"],
             "load": ["--auth-token", "red-team-token-0123456789"]}[command]
    run = raidsim(command, "--trace", str(trace), *extra)
    assert "Traceback" not in run.stderr
    assert run.returncode == 2, run.stderr
    assert f"{trace}{expected}" in run.stderr
    assert "(hint: " in run.stderr


def test_an_infinite_time_is_called_that(tmp_path: Path) -> None:
    """1e400 overflows to inf: the message says "finite", not "at least 0"."""
    from sim.trace import TraceError, read_trace

    path = tmp_path / "inf.jsonl"
    path.write_text('{"t": 1e400, "from": "+33612345678", "to": "+33644649021", "body": "x"}\n')
    with pytest.raises(TraceError) as caught:
        list(read_trace(path))
    assert str(caught.value).startswith(f"{path}:1: ")
    assert '"t" must be a finite number of seconds, got inf' in str(caught.value)


def test_sweep_refuses_a_key_given_twice(tmp_path: Path) -> None:
    """Two --param for one key silently kept only the last value: now a usage error."""
    run = raidsim("sweep", str(tiny(tmp_path)), "--param", "surge.factor=3",
                  "--param", "surge.factor=4")
    assert run.returncode == 2
    assert "--param surge.factor is given twice" in run.stderr
    assert run.stdout == ""


def test_sweep_takes_amounts_as_written(tmp_path: Path) -> None:
    """budget.total_eur=1.50 is an amount, not a float the policy must refuse."""
    out = tmp_path / "sweep.json"
    run = raidsim("sweep", str(tiny(tmp_path)), "--param", "budget.total_eur=1.50,100",
                  "--json", str(out))
    assert run.returncode == 0, run.stderr
    points = json.loads(out.read_text())["points"]
    assert [p["settings"]["budget.total_eur"] for p in points] == ["1.50", "100"]
    assert points[0]["spend_eur"] <= 1.50 < points[1]["spend_eur"]


def test_sweep_json_on_a_folder_is_refused_before_the_runs(tmp_path: Path) -> None:
    """--json DIR: exit 2 naming it, before any simulation, no traceback."""
    run = raidsim("sweep", str(tiny(tmp_path)), "--param", "surge.factor=3",
                  "--json", str(tmp_path))
    assert run.returncode == 2
    assert f"--json {tmp_path}: is a directory" in run.stderr
    assert run.stdout == ""


def test_segments_refuses_text_that_is_not_utf8() -> None:
    """Latin-1 bytes on stdin or in argv: exit 2 with the reason, not a UnicodeEncodeError."""
    piped = raidsim("segments", "-", stdin=b"caf\xe9\n")
    assert piped.returncode == 2
    assert "standard input is not UTF-8: byte 0xe9 at offset 3" in piped.stderr
    assert "Traceback" not in piped.stderr
    argv = raidsim("segments", b"caf\xe9")
    assert argv.returncode == 2
    assert "TEXT is not UTF-8 at character 4" in argv.stderr
    assert "Traceback" not in argv.stderr
    fine = raidsim("segments", "-", stdin="café".encode())
    assert json.loads(fine.stdout) == {"encoding": "GSM-7", "segments": 1, "units": 4}


@pytest.mark.parametrize("ending, units", [
    (b"\n", 160), (b"\r\n", 160), (b"", 160), (b"\n\n", 161),
])
def test_segments_from_stdin_ignores_the_line_end_echo_adds(ending: bytes, units: int) -> None:
    """`echo TEXT | raidsim segments -` counts TEXT: a full 160-septet segment stays one."""
    run = raidsim("segments", "-", stdin=b"x" * 160 + ending)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"encoding": "GSM-7", "segments": 1 if units == 160
                                      else 2, "units": units}


def _results(spend: str) -> dict[str, object]:
    return {"scenario": "s", "seed": 1, "policy": "p", "spend_eur": Decimal(spend),
            "legit_coverage": 1.0,
            "thresholds": [{"name": "spend_eur", "op": "<=", "limit": 2000}]}


def test_compare_shows_threshold_values_in_full() -> None:
    """A value of EUR 1,034.24 was shown as "EUR 1": the thousands comma cut it."""
    from reports.compare import compare

    text = compare(_results("1034.24"), _results("1250.50")).markdown()
    assert "| `spend_eur <= 2000` | ✅ €1,034.24 | ✅ €1,250.50 |  |" in text


def test_report_refuses_recorded_thresholds_it_cannot_read(tmp_path: Path) -> None:
    """A damaged recorded threshold fails closed (exit 2, named), it is not skipped."""
    from reports.thresholds import ThresholdSyntaxError, thresholds_from_results

    cases = {
        '{"spend_eur": 5, "thresholds": [{"name": "spend_eur", "op": "<<", "limit": 1}]}':
            "'thresholds' entry 1 (spend_eur): '<<' is not an operator",
        '{"spend_eur": 5, "thresholds": [{"name": "spend_eur", "op": "<=", "limit": "x"}]}':
            "'thresholds' entry 1 (spend_eur): limit 'x' is not a number",
        '{"spend_eur": 5, "thresholds": [{"op": "<=", "limit": 1}]}':
            "'thresholds' entry 1 has no metric name",
        '{"spend_eur": 5, "thresholds": 5}': "'thresholds' must be a list, not int",
    }
    for n, (text, reason) in enumerate(cases.items()):
        path = tmp_path / f"r{n}.json"
        path.write_text(text)
        with pytest.raises(ThresholdSyntaxError, match=reason.replace("(", r"\(")
                           .replace(")", r"\)")):
            thresholds_from_results(json.loads(text))
        for args in (("report", str(path)), ("report", "compare", str(path), str(path))):
            run = raidsim(*args)
            assert run.returncode == 2, (args, run.stdout)
            assert f"{path}: {reason}" in run.stderr
            assert "Traceback" not in run.stderr
    assert thresholds_from_results({"spend_eur": 5}) == []


def test_fake_provider_refuses_a_negative_price_and_a_speed_that_is_not_a_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A negative price billed negative amounts; --speed nan made every fault window NaN."""
    from raidsim.cli import main

    base = ["fake-provider", "--auth-token", "t", "--port", "0"]
    for flags, message in ((["--eur-per-segment", "-1"], "--eur-per-segment -1 cannot be "
                            "negative"),
                           (["--speed", "nan"], "--speed must be a number above 0, got nan"),
                           (["--speed", "inf"], "--speed must be a number above 0, got inf"),
                           (["--outage", "10s+0s"], "the duration must be above 0")):
        assert main([*base, *flags]) == 2
        assert message in capsys.readouterr().err


def test_load_refuses_nan_speed_and_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """--speed nan crashed with OverflowError; every run left a raidsim-load-* folder."""
    import socket
    import tempfile

    from raidsim.cli import main

    trace = tmp_path / "one.jsonl"
    trace.write_text('{"t": 0, "from": "+33612345678", "to": "+33644649021", "body": "x"}\n')
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    base = ["load", "--trace", str(trace), "--auth-token", "t",
            "--target", f"http://127.0.0.1:{port}", "--provider", f"http://127.0.0.1:{port}"]
    assert main([*base, "--speed", "nan"]) == 2
    assert "--speed must be a number above 0" in capsys.readouterr().err
    assert main([*base, "--json", str(tmp_path)]) == 2  # before any traffic is sent
    assert f"--json {tmp_path}: is a directory" in capsys.readouterr().err
    assert main(base) == 2  # nobody answers: a usage error after the plan was written
    err = capsys.readouterr().err
    assert f"cannot reach the responder at http://127.0.0.1:{port}" in err
    assert "raidsim serve" in err
    assert list(scratch.iterdir()) == []


def test_load_names_the_fake_provider_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A ready responder but no fake provider: the error named neither of the two URLs."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from raidsim.cli import main

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # /readyz answers; anything else is not a fake provider
            body = (b'{"status": "ready"}' if self.path == "/readyz"
                    else b"<html>not a bill</html>")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    trace = tmp_path / "one.jsonl"
    trace.write_text('{"t": 0, "from": "+33612345678", "to": "+33644649021", "body": "x"}\n')
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["load", "--trace", str(trace), "--auth-token", "t",
                     "--target", url, "--provider", url]) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    err = capsys.readouterr().err
    assert f"cannot read the bill of the fake provider at {url}" in err
    assert "raidsim fake-provider" in err


def test_a_lone_surrogate_escape_in_a_trace_is_named(tmp_path: Path) -> None:
    """"\\ud800" is valid JSON but not text: raidsim load crashed writing it; now exit 2."""
    line = '{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "%s"}\n'
    bad = tmp_path / "lone.jsonl"
    bad.write_text(line % "ab\\ud800")
    for args in (("simulate", "--trace", str(bad), "--quiet"),
                 ("load", "--trace", str(bad), "--auth-token", "t",
                  "--target", "http://127.0.0.1:9", "--provider", "http://127.0.0.1:9")):
        run = raidsim(*args)
        assert run.returncode == 2, args
        assert f'{bad}:1: "body" has a lone surrogate escape \\ud800 at character 3' in run.stderr
        assert "Traceback" not in run.stderr
    paired = tmp_path / "pair.jsonl"
    paired.write_text(line % "\\ud83d\\ude00")
    from sim.trace import read_trace

    assert [r.body for r in read_trace(paired)] == ["\U0001f600"]


def test_standard_output_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """A trace on stdout is UTF-8 by contract: a latin-1 PYTHONIOENCODING crashed it."""
    import os

    scenario = tmp_path / "emoji.toml"
    scenario.write_text(TINY.replace('name = "tiny"', 'name = "tiny 😀"'), encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING="latin-1")
    command = [sys.executable, "-m", "raidsim"]
    to_stdout = subprocess.run([*command, "trace", str(REFERENCE_RAID), "-o", "-"], env=env,
                               capture_output=True, cwd=ROOT, timeout=300)
    assert to_stdout.returncode == 0, to_stdout.stderr.decode()
    to_file = tmp_path / "t.jsonl"
    assert raidsim("trace", str(REFERENCE_RAID), "-o", str(to_file)).returncode == 0
    assert to_stdout.stdout == to_file.read_bytes()
    assert any(ord(c) > 255 for c in to_stdout.stdout.decode("utf-8"))  # not latin-1
    summary = subprocess.run([*command, "simulate", str(scenario), "--json", "-"], env=env,
                             capture_output=True, cwd=ROOT, timeout=300)
    assert summary.returncode == 0, summary.stderr.decode()
    assert json.loads(summary.stdout.decode("utf-8"))["scenario"] == "tiny 😀"


def test_every_positional_argument_is_explained_in_help() -> None:
    """`--help` explains each argument: sweep's SCENARIO.toml had no text."""
    from raidsim.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        for action in command._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"raidsim {name}: {action.metavar or action.dest} has no help"


def test_a_bad_setting_in_the_config_file_names_the_file_line_and_key(tmp_path: Path) -> None:
    """A typo or a bad value in RAIDSIM_CONFIG named no line, and a bad value was blamed on
    the environment variable (RAIDSIM_BUDGET_EUR) that the user never set."""
    from responder.config import load_settings
    from responder.policy.errors import ConfigError

    env = {"RAIDSIM_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "RAIDSIM_TWILIO_AUTH_TOKEN": "t"}
    config = tmp_path / "raidsim.toml"
    config.write_text('log_level = "INFO"\nbudgte_hour_eur = "5"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"raidsim\.toml:2: unknown setting 'budgte_hour_eur' "
                                          r"\(hint: did you mean budget_hour_eur\? "
                                          r"known: .*budget_hour_eur"):
        load_settings({**env, "RAIDSIM_CONFIG": str(config)})
    config.write_text('log_level = "INFO"\n\nbudget_eur = "abc"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"raidsim\.toml:3: budget_eur: cannot read 'abc'"):
        load_settings({**env, "RAIDSIM_CONFIG": str(config)})
    config.write_text("send_concurrency = 2.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"raidsim\.toml:1: send_concurrency: cannot read"):
        load_settings({**env, "RAIDSIM_CONFIG": str(config)})
    # The environment overrides the file, and its own bad values are still named by variable.
    config.write_text('budget_eur = "abc"\n', encoding="utf-8")
    assert load_settings({**env, "RAIDSIM_CONFIG": str(config),
                          "RAIDSIM_BUDGET_EUR": "5"}).budget_eur == 5
    with pytest.raises(ConfigError, match=r"^RAIDSIM_BUDGET_EUR: cannot read 'x'"):
        load_settings({**env, "RAIDSIM_BUDGET_EUR": "x"})


def test_load_reports_the_responders_own_cap_when_the_admin_api_says() -> None:
    """With --admin-token, a responder running without a cap was reported with the
    scenario's cap (EUR 1,500 for the reference raid) in budget.cap_eur."""
    from raidsim.commands.load import budget_cap
    from sim.scenario import load_scenario

    scenario = load_scenario(REFERENCE_RAID)
    assert budget_cap(None, scenario) == Decimal("1500")  # no admin API: the scenario's
    assert budget_cap({"total_eur": None, "per_hour_eur": None}, scenario) is None
    assert budget_cap({"total_eur": "500.00"}, scenario) == Decimal("500.00")
    assert budget_cap(None, None) is None


def test_quiet_still_says_which_threshold_failed(tmp_path: Path) -> None:
    """--quiet (or --json -) exited 1 on a failed threshold without a word of why."""
    scenario = str(tiny(tmp_path))
    run = raidsim("simulate", scenario, "--quiet", "--threshold", "spend_eur<=0",
                  "--threshold", "spend_euro<=5")
    assert run.returncode == 1
    assert run.stdout == ""
    assert "raidsim simulate: threshold failed: spend_eur <= €0.00: value €" in run.stderr
    assert "metric 'spend_euro' is missing from the results" in run.stderr
    run = raidsim("simulate", scenario, "--json", "-", "--threshold", "spend_eur<=0")
    assert run.returncode == 1
    assert json.loads(run.stdout)["passed"] is False
    assert "raidsim simulate: threshold failed: spend_eur <= €0.00" in run.stderr
    run = raidsim("simulate", scenario, "--quiet")  # a pass stays silent
    assert run.returncode == 0 and run.stdout == "" and "threshold" not in run.stderr


def test_a_crash_exits_3_not_1(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """A bug is not a verdict: an unexpected exception exits 3 with its traceback, never 1
    (which a CI gate reads as a threshold breach)."""
    from raidsim import cli

    def boom(args: argparse.Namespace) -> int:
        raise MemoryError("out of memory in a model")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        action.choices["segments"].set_defaults(func=boom)
    assert cli.main(["segments", "Salut"]) == cli.EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "MemoryError" in err and "internal error (exit 3)" in err


def test_report_refuses_a_file_that_is_not_results(tmp_path: Path) -> None:
    """`{}` passed the gate (exit 0, nothing declared): a file without the results keys of
    docs/results.md is bad input, for report and for compare."""
    empty = tmp_path / "e.json"
    empty.write_text("{}")
    for args in (("report", str(empty)), ("report", "compare", str(empty), str(empty))):
        run = raidsim(*args)
        assert run.returncode == 2, (args, run.stdout)
        assert "is not a raidsim results file" in run.stderr and "spend_eur" in run.stderr
        assert "Traceback" not in run.stderr


def test_a_threshold_given_twice_is_checked_once(tmp_path: Path) -> None:
    """A --threshold repeating one of the scenario's is reported (and in junit.xml) once."""
    out = tmp_path / "r.json"
    run = raidsim("simulate", str(PRESS), "--threshold", "spend_eur<=1450", "--json",
                  str(out), "--no-progress")
    assert run.returncode == 0, run.stderr
    names = [t["name"] + t["op"] + str(t["limit"])
             for t in json.loads(out.read_text())["thresholds"]]
    assert len(names) == len(set(names)) and "spend_eur<=1450" in names
    assert run.stdout.count("spend_eur <= €1,450.00") == 1


@pytest.mark.parametrize("args", [("segments", "a", "b"),
                                  ("trace", "x.toml", "-o", "-", "--bogus")])
def test_an_unknown_argument_shows_the_commands_usage(args: tuple[str, ...]) -> None:
    run = raidsim(*args)
    assert run.returncode == 2
    assert run.stderr.startswith(f"usage: raidsim {args[0]} ")
    assert f"raidsim {args[0]}: error: unrecognized arguments" in run.stderr


def test_outputs_under_a_file_and_stdin_traces_are_refused_before_any_work(
    tmp_path: Path,
) -> None:
    """`--json scenario.toml/x.json` is refused at once, not after the whole run; a trace
    cannot come from standard input (it is read more than once) and the message says so."""
    scenario = tiny(tmp_path)
    for args in (("simulate", str(scenario), "--json", f"{scenario}/x.json"),
                 ("simulate", str(scenario), "--report", f"{scenario}/deeper/report"),
                 ("trace", str(scenario), "-o", f"{scenario}/t.jsonl")):
        done = raidsim(*args, "--no-progress" if args[0] == "simulate" else "--seed=1")
        assert done.returncode == 2, (args, done.stderr)
        assert f"{scenario} is a file, not a folder" in done.stderr
        assert "messages" not in done.stdout  # refused before the run printed its summary
    stdin = raidsim("simulate", "--trace", "-")
    assert stdin.returncode == 2
    assert "cannot be read from standard input" in stdin.stderr and "-o FILE" in stdin.stderr


def test_outputs_in_a_folder_nothing_can_be_written_in_are_refused_before_any_work(
    tmp_path: Path,
) -> None:
    """An output path in a folder where no file can be created (a read-only or foreign
    folder; here /proc, which takes no new file even from root) was found out only when
    the results were written, after the whole run, and the results were lost."""
    scenario = tiny(tmp_path)
    results = tmp_path / "r.json"
    assert raidsim("simulate", str(scenario), "--quiet", "--json", str(results)).returncode == 0
    for args, shown in (
            (("simulate", str(scenario), "--no-progress", "--json", "/proc/raidsim-r.json"),
             "--json /proc/raidsim-r.json"),
            (("simulate", str(scenario), "--no-progress", "--report", "/proc/raidsim-rep/x"),
             "--report /proc/raidsim-rep/x"),
            (("simulate", str(scenario), "--no-progress", "--report", "/proc"),
             "--report /proc"),
            (("trace", str(scenario), "-o", "/proc/raidsim-t.jsonl"), "-o /proc/raidsim-t.jsonl"),
            (("sweep", str(scenario), "--param", "surge.factor=3", "--no-progress", "--json",
              "/proc/raidsim-s.json"), "--json /proc/raidsim-s.json"),
            (("report", str(results), "-o", "/proc/raidsim-report"), "-o /proc/raidsim-report")):
        done = raidsim(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.endswith(f"{shown}: cannot write in /proc: No such file or directory"
                                    " (hint: give a path in a folder you can write to)\n")
        assert "messages" not in done.stdout  # refused before the run printed its summary


def test_run_counts_and_seeds_out_of_range_are_usage_errors(tmp_path: Path) -> None:
    """--replications is bounded, its last seed must still be a valid --seed (so that any
    replication can be replayed), and sweep's --max-runs must be at least 1."""
    scenario = str(tiny(tmp_path))
    top = "9223372036854775807"
    cases = [
        (("simulate", scenario, "--replications", "10001"), "from 1 to 10,000"),
        (("simulate", scenario, "--seed", top, "--replications", "2"), "above " + top),
        (("sweep", scenario, "--param", "surge.factor=3", "--max-runs", "-1"),
         "--max-runs must be at least 1"),
        (("sweep", scenario, "--param", "surge.factor=3", "--seed", top, "--seeds", "2"),
         "above " + top),
    ]
    for args, message in cases:
        done = raidsim(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr


def test_provider_p95_below_its_median_names_the_line(tmp_path: Path) -> None:
    """A 95th percentile under the median used to make every call take the median."""
    scenario = tmp_path / "slow.toml"
    scenario.write_text(TINY + '\n[provider]\nlatency_median = "1s"\nlatency_p95 = "0.5s"\n',
                        encoding="utf-8")
    done = raidsim("simulate", str(scenario))
    assert done.returncode == 2
    assert f"{scenario}:11: provider.latency_p95 (0.5 s) is below" in done.stderr


def test_sweep_json_writes_money_exactly(tmp_path: Path) -> None:
    """The sweep JSON carries spend as exact decimals (as results files do), not floats."""
    out = tmp_path / "sweep.json"
    done = raidsim("sweep", str(tiny(tmp_path)), "--param", "sender_limit.replies=1,2",
                   "--json", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    points = json.loads(out.read_text(encoding="utf-8"), parse_float=Decimal)["points"]
    assert all(p["spend_eur"] == p["spend_eur"].quantize(Decimal("0.01")) for p in points)
    assert all(isinstance(p["spend_eur"], Decimal) for p in points)


def test_a_scenario_without_traffic_configures_a_trace_run(tmp_path: Path) -> None:
    """With --trace, the trace brings the traffic: a scenario holding only the reply, price,
    policy, provider or thresholds is enough (it used to need a dummy [[traffic]] and a
    duration). Without a trace, such a scenario is still an error that says what to add."""
    config = tmp_path / "config.toml"
    config.write_text('name = "cfg"\n\n[pricing]\neur_per_segment = "0.10"\n', encoding="utf-8")
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(
        f'{{"t": {k}, "from": "+3361200{k:04d}", "to": "+33644649021", "body": "Bonjour",'
        f' "label": "legit"}}\n' for k in range(5)), encoding="utf-8")
    out = tmp_path / "r.json"
    done = raidsim("simulate", str(config), "--trace", str(trace), "--quiet", "--json", str(out))
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text(encoding="utf-8"), parse_float=Decimal)
    assert results["scenario"] == "cfg" and results["spend_eur"] == Decimal("0.5")
    alone = raidsim("simulate", str(config))
    assert alone.returncode == 2
    assert f"{config}:1: the scenario has no traffic" in alone.stderr
    assert "--trace" in alone.stderr


def test_outputs_are_replaced_whole(tmp_path: Path) -> None:
    """--json and --report write each file whole (a temporary file renamed over it) after
    everything is rendered: an earlier results file stays intact until the new one is
    complete, and no temporary file is left behind."""
    from raidsim.cli import write_output
    from reports.writer import write_report

    target = tmp_path / "r.json"
    target.write_text("old", encoding="utf-8")
    write_output(target, '{"new": true}\n', "the results JSON")
    assert target.read_text(encoding="utf-8") == '{"new": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    fixture = ROOT / "tests" / "fixtures" / "reports" / "results_minimal.json"
    results = json.loads(fixture.read_text(encoding="utf-8"))
    written = write_report(results, tmp_path / "rep", environ={})
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == sorted(p.name for p in written) and not any(".part" in n for n in names)


def test_replaced_whole_keeps_the_old_file_on_error_and_its_permissions(
    tmp_path: Path,
) -> None:
    """The one helper behind trace -o, --json and --report: an error inside the block
    leaves the previous file and no temporary one; a replaced file keeps its mode; a
    device such as /dev/null is written directly, not replaced."""
    import os
    import stat

    from reports.files import replaced_whole

    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), replaced_whole(target) as handle:
        handle.write("half")
        raise RuntimeError("stopped")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with replaced_whole(target, "wb") as handle:
        handle.write(b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    with replaced_whole(os.devnull) as handle:
        handle.write("gone")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_markdown_summaries_do_not_pass_html_through_from_names() -> None:
    """summary.md and the compare Markdown wrote a scenario named ``<script>…`` as is,
    while the HTML report and JUnit escape it; a threshold's ``<=`` stays readable."""
    from reports.compare import compare
    from reports.summary import markdown

    evil = "<script>alert(1)</script>"
    base, new = _results("10"), _results("12")
    base["scenario"] = new["scenario"] = evil
    summary = markdown(base)
    both = compare(base, new).markdown()
    assert "<script" not in summary and "<script" not in both
    assert "&lt;script>alert(1)&lt;/script>" in summary
    assert "`spend_eur <= 2000`" in both


@pytest.mark.parametrize(("text", "seconds"), [
    ("5", 5.0), ("0", 0.0), ("1.5", 1.5), (" 90 ", 90.0), ("1e3", 1000.0), ("90s", 90.0),
    ("1h30m", 5400.0), ("250ms", 0.25),
])
def test_a_duration_flag_reads_what_a_scenario_file_reads(text: str, seconds: float) -> None:
    """docs/scenarios.md: "a bare number is seconds (90)"; `--settle 5` and
    `--timeout-delay 5` were "cannot read duration '5'"."""
    from raidsim.cli import duration_flag

    assert duration_flag("--settle", text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("-5", "--settle '-5': a duration cannot be negative"),
    ("nan", "--settle 'nan': a duration must be finite"),
    ("1e400", "--settle '1e400': a duration must be finite"),
    ("5 parsecs", "--settle '5 parsecs': cannot read duration"),
    # written with units, it was "cannot read duration" too
    ("-5m", "--settle '-5m': a duration cannot be negative"),
    ("-1h30m", "--settle '-1h30m': a duration cannot be negative"),
])
def test_a_duration_flag_says_what_is_wrong_with_its_value(text: str, message: str) -> None:
    from raidsim.cli import UsageError, duration_flag

    with pytest.raises(UsageError, match="^" + re.escape(message)):
        duration_flag("--settle", text)


def test_fake_provider_takes_bare_seconds_and_a_timeout_delay_above_0(
        capsys: pytest.CaptureFixture[str]) -> None:
    from raidsim.cli import UsageError, build_parser
    from raidsim.commands.fake_provider import config_from_args

    def resolve(*flags: str) -> Any:
        args = build_parser().parse_args(["fake-provider", "--auth-token", "t", *flags])
        return config_from_args(args, environ={})

    config = resolve("--timeout-delay", "5", "--offset", "90", "--retry-after", "2",
                     "--outage", "100+20", "--latency-median", "0.25", "--latency-p95", "1")
    assert (config.timeout_delay_s, config.offset_s, config.model.retry_after_s) == (5, 90, 2)
    assert (config.faults[0].start_s, config.faults[0].end_s) == (100, 120)
    assert (config.model.latency_median_s, config.model.latency_p95_s) == (0.25, 1)
    for value in ("0", "0s"):
        with pytest.raises(UsageError, match=r"^--timeout-delay must be above 0, got '0s?' "
                           r"\(hint: a timeout answer is held past the responder's read"):
            resolve("--timeout-delay", value)


def test_load_takes_bare_seconds_for_its_duration_flags(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`raidsim load … --settle 5` stopped at "cannot read duration '5'"; it now reads its
    durations and goes on to its next check (here a --report folder it cannot write in)."""
    from raidsim.cli import main

    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "press-surge.toml"
    base = ["load", str(scenario), "--auth-token", "t", "--target", "http://127.0.0.1:9",
            "--provider", "http://127.0.0.1:9", "--report", "/proc/raidsim-report"]
    assert main([*base, "--settle", "5", "--from", "60", "--duration", "30"]) == 2
    err = capsys.readouterr().err
    assert "cannot write in /proc" in err and "cannot read duration" not in err, err
    assert main([*base, "--duration", "0"]) == 2
    assert "--duration must be above 0, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "env", "where"), [
    (["--account-sid", "foo"], {}, "--account-sid"),
    (["--account-sid", "AC" + "0" * 31], {}, "--account-sid"),
    (["--account-sid", "AC" + "0" * 32 + "\n"], {}, "--account-sid"),
    ([], {"RAIDSIM_TWILIO_ACCOUNT_SID": "ACfoo"}, "RAIDSIM_TWILIO_ACCOUNT_SID"),
])
def test_fake_provider_checks_the_account_sid_as_serve_does(
        flags: list[str], env: dict[str, str], where: str) -> None:
    """`raidsim fake-provider --account-sid foo` started, and no responder could ever be
    authorised by it: `raidsim serve` refuses such a SID at start."""
    from raidsim.cli import UsageError, build_parser
    from raidsim.commands.fake_provider import config_from_args
    from responder.config import check_account_sid
    from responder.policy.errors import ConfigError

    args = build_parser().parse_args(["fake-provider", "--auth-token", "t", *flags])
    with pytest.raises(UsageError) as caught:
        config_from_args(args, environ=env)
    with pytest.raises(ConfigError) as serve:  # the very check, and words, serve uses
        check_account_sid((flags or ["", env.get(where, "")])[1], where)
    assert str(caught.value) == str(serve.value)
    assert str(caught.value).startswith(f"{where} must be 'AC' followed by 32 hex digits")
    good = build_parser().parse_args(["fake-provider", "--auth-token", "t",
                                      "--account-sid", "AC" + "0123456789abcdef" * 2])
    assert config_from_args(good, environ={}).account_sid == "AC" + "0123456789abcdef" * 2


def test_a_zero_observe_is_an_input_error_not_a_hang(tmp_path: Path) -> None:
    """[policy.surge] observe = 0 re-held a flood's replies at the same instant forever
    (simulate never ended); it is exit 2 naming its line, at once."""
    scenario = tmp_path / "observe.toml"
    scenario.write_text('duration = "1d"\n\n[[traffic]]\nkind = "flood"\nduration = "2m"\n\n'
                        "[policy.surge]\nobserve = 0\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "raidsim", "simulate", str(scenario),
                           "--quiet"], capture_output=True, cwd=ROOT, timeout=60, text=True)
    assert done.returncode == 2, done.stderr
    assert f"{scenario}:8: policy.surge.observe must be at least 1 s" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_runaway_worker_count_is_refused_with_its_line(tmp_path: Path) -> None:
    """provider.workers = 10000001 started ten million simulated workers (minutes before
    the first message); it is bounded as the responder's RAIDSIM_SEND_CONCURRENCY is."""
    scenario = tmp_path / "workers.toml"
    scenario.write_text(TINY + "\n[provider]\nworkers = 10000001\n", encoding="utf-8")
    done = raidsim("simulate", str(scenario))
    assert done.returncode == 2, done.stderr
    assert f"{scenario}:10: provider.workers must be at most 1,000" in done.stderr
    scenario.write_text(TINY + "\n[provider]\nworkers = 1000\n", encoding="utf-8")
    assert raidsim("simulate", str(scenario), "--quiet").returncode == 0


@pytest.mark.parametrize("line", [
    "workers = 0", "workers = 1001", "max_attempts = 2.5", "breaker_threshold = true",
    'latency_median = "fast"', "retry_after = -1", "breaker_cooldown = []",
    "error_rate = 2", "timeout_rate = -0.1", "segments_per_second = 0",
    'segments_per_second = "x"', "reject_rate = nan",
])
def test_every_provider_value_error_names_its_line_and_says_how_to_write_it(line: str) -> None:
    """A wrong ``[provider]`` value names the file and line, and the hint shows the key
    written right (some errors had no hint)."""
    from responder.policy.errors import ConfigError
    from sim.provider import parse_provider

    text = f'name = "x"\n\n[provider]\n{line}\n'
    key = line.split(" = ")[0]
    with pytest.raises(ConfigError) as caught:
        parse_provider(tomllib.loads(text)["provider"], path="p.toml", text=text)
    err = caught.value
    assert err.path == "p.toml" and err.line == 4, str(err)
    assert err.hint is not None and f"{key} = " in err.hint, str(err)


def test_a_fault_rate_error_says_what_the_rate_is() -> None:
    from responder.policy.errors import ConfigError
    from sim.provider import parse_faults

    text = '[[faults]]\nkind = "errors"\nrate = 1.5\n'
    with pytest.raises(ConfigError) as caught:
        parse_faults(tomllib.loads(text)["faults"], path="f.toml", text=text)
    assert caught.value.line == 3 and caught.value.hint and "rate = 0.5" in caught.value.hint


def test_a_misspelt_traffic_key_is_matched_to_the_closest_key() -> None:
    """`buzz_flor` was matched to `buzz` (a substring test), not to `buzz_floor`."""
    from responder.policy.errors import ConfigError
    from sim.scenario import scenario_from_mapping

    for typo, meant in (("buzz_flor", "buzz_floor"), ("mesages", "messages"),
                        ("messages_per_sendr", "messages_per_sender")):
        data = {"duration": "1h", "traffic": [{"kind": "organic", "messages": 5, typo: 1}]}
        with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
            scenario_from_mapping(data)


def test_a_bad_sweep_value_is_explained_in_command_line_terms() -> None:
    """`--param surge.factor=3,x` was answered with a policy file's advice (quotes, `=`
    with spaces) about a key named `policy.surge.factor`, which the user never wrote."""
    from responder.policy import PolicyConfig
    from sim.sweep import configure

    with pytest.raises(ValueError) as caught:
        configure(PolicyConfig(), {"surge.factor": "x"})
    assert str(caught.value) == ("--param: surge.factor must be a number, got 'x' "
                                 "(e.g. --param surge.factor=0.5)")
    with pytest.raises(ValueError, match=r"unknown key 'surge\.factr'"):
        configure(PolicyConfig(), {"surge.factr": 3})
    # the other hints too (they were a policy file's: `write window = "20m"`), and a
    # count that must be 1 or more no longer says "write 0 or more" for a negative one
    for setting, value, message in (
            ("surge.window", "5 min", "surge.window: cannot read duration '5 min'; use "
             'numbers with units w, d, h, m, s or ms, e.g. "30m", "5d20h" or "90s" '
             "(e.g. --param surge.window=20m)"),
            # a negative one, written with units, was "cannot read" too
            ("surge.window", "-5m", "surge.window: a duration cannot be negative: '-5m' "
             "(e.g. --param surge.window=20m)"),
            ("surge.factor", float("inf"), "surge.factor must be a finite number, got inf "
             "(e.g. --param surge.factor=0.5)"),
            ("eur_per_segment", "-1", "eur_per_segment cannot be negative "
             "(e.g. --param eur_per_segment=0.16)"),
            ("sender_limit.replies", -1, "sender_limit.replies must be at least 1, got -1 "
             "(to turn the rule off, set sender_limit.enabled = false)"),
            ("repeats.max_messages", 0, "repeats.max_messages must be at least 1, got 0 "
             "(to turn the rule off, set repeats.enabled = false)")):
        with pytest.raises(ValueError) as caught:
            configure(PolicyConfig(), {setting: value})
        assert str(caught.value) == f"--param: {message}"


def test_a_sweep_file_a_missing_policy_file_and_booleans_are_told_plainly(
    tmp_path: Path,
) -> None:
    """`report sweep.json` listed twelve missing keys; `--policy missing.toml` (or a
    folder) gave the OS's words alone; sweep's table printed Python's True/False for a
    setting given as true/false."""
    scenario = str(tiny(tmp_path))
    sweep_json = tmp_path / "sweep.json"
    done = raidsim("sweep", scenario, "--param", "repeats.enabled=true,false", "--no-progress",
                   "--json", str(sweep_json))
    assert done.returncode == 0, done.stderr
    rows = [line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()]
    assert rows == ["true", "false"], done.stdout
    report = raidsim("report", str(sweep_json), "-o", str(tmp_path / "out"))
    assert report.returncode == 2
    assert f"{sweep_json} is a `raidsim sweep --json` file, not a results file" in report.stderr
    priced = raidsim("sweep", scenario, "--param", "eur_per_segment=0.16,1", "--no-progress")
    assert priced.returncode == 0
    assert ("note: --param eur_per_segment changes the price of a reply from point to point"
            in priced.stderr)
    for policy in (tmp_path / "missing.toml", tmp_path):
        run = raidsim("simulate", scenario, "--policy", str(policy), "--quiet")
        assert run.returncode == 2
        assert run.stderr.startswith(f"raidsim simulate: error: {policy}: cannot read policy "
                                     "file: ")
        assert run.stderr.endswith("(hint: give the path of a TOML file of policy settings; "
                                   "docs/policy.md lists them)\n")


def test_a_policy_file_that_drops_the_scenarios_budget_cap_is_warned_about(
        tmp_path: Path) -> None:
    """`--policy tune.toml` replaces the scenario's [policy], budget cap included: a file
    written to tune one knob lifted the scenario's hard cap without a word."""
    scenario = tmp_path / "capped.toml"
    scenario.write_text(TINY + '\n[policy.budget]\ntotal_eur = "100"\n', encoding="utf-8")
    tune = tmp_path / "tune.toml"
    tune.write_text("[surge]\nfactor = 5.0\n", encoding="utf-8")
    warning = (f"warning: --policy {tune} replaces the scenario's [policy], and with it its "
               "budget cap (total_eur €100.00); copy its [budget] table into the file to keep "
               "the cap")
    for args in (("simulate", str(scenario), "--policy", str(tune), "--quiet"),
                 ("sweep", str(scenario), "--policy", str(tune), "--param", "surge.factor=5",
                  "--no-progress")):
        done = raidsim(*args)
        assert done.returncode == 0, done.stderr
        assert warning in done.stderr, done.stderr
    kept = tmp_path / "kept.toml"
    kept.write_text('[surge]\nfactor = 5.0\n[budget]\ntotal_eur = "100"\n', encoding="utf-8")
    done = raidsim("simulate", str(scenario), "--policy", str(kept), "--quiet")
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr


def test_segments_reads_a_utf8_argument_under_the_c_locale() -> None:
    """Under LC_ALL=C with neither locale coercion nor UTF-8 mode, Python reads argv as
    ASCII: a valid UTF-8 TEXT was refused as "not UTF-8"."""
    import os

    env = dict(os.environ, LC_ALL="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    done = subprocess.run([sys.executable, "-m", "raidsim", "segments", "😀 ça"],
                          capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"encoding": "UCS-2", "segments": 1, "units": 5}
