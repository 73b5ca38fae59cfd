"""Numbers past what a float holds, durations past any sense, allocations a file asks for:
each is a clear exit 2 naming the file and the line, never a traceback, a hang or a disk
filled (found by fuzzing every file input of the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raidsim.cli import main

HUGE = "9" * 400  # a TOML integer no float holds

TRAFFIC = '[[traffic]]\nkind = "organic"\nmessages = 50\n'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("body", "line", "says"), [
    (f'name = "t"\nduration = "1h"\n[[traffic]]\nkind = "organic"\nmessages = {HUGE}\n', 5,
     "about 9.9e+399 messages"),
    (f'name = "t"\nduration = "1h"\n[[traffic]]\nkind = "organic"\nmessages = 50\n'
     f"gap = {HUGE}\n", 6, "gap: a duration must be at most 100 years"),
    (f'name = "t"\nduration = "1h"\n[[traffic]]\nkind = "organic"\nmessages = 50\n'
     f"weekend = {HUGE}\n", 6, "weekend must be a finite number, got 999999999999... "
     "(400 digits)"),
    (f'name = "t"\nduration = {HUGE}\n{TRAFFIC}', 2,
     "duration is more than 36,500 days, longer than the 366 days a run can cover"),
    (f'name = "t"\nduration = "1h"\n[provider]\nsegments_per_second = {HUGE}\n{TRAFFIC}', 4,
     "provider.segments_per_second must be a finite number of at least 0, got "
     "999999999999... (400 digits)"),
    (f'name = "t"\nduration = "1h"\n[provider]\nretry_after = {HUGE}\n{TRAFFIC}', 4,
     "provider.retry_after: a duration must be at most 100 years"),
    (f'name = "t"\nduration = "1h"\n[[faults]]\nkind = "outage"\nstart = {HUGE}\n'
     f'duration = "1m"\n{TRAFFIC}', 5, "faults.start: a duration must be at most 100 years"),
])
def test_a_number_no_float_holds_is_named_in_a_scenario(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int,
        says: str) -> None:
    """Each was an OverflowError ("int too large to convert to float"): exit 3."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(body, encoding="utf-8")
    code, err = run(capsys, "simulate", str(scenario), "--quiet")
    assert code == 2, err
    assert f"{scenario}:{line}: " in err and says in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(("policy", "says"), [
    (f"[surge]\nwindow = {HUGE}\n", "surge.window: a duration must be at most 100 years"),
    (f"[surge]\nfactor = {HUGE}\n", "surge.factor must be a finite number, got "
     "999999999999... (400 digits)"),
    (f'[surge]\nwindow = "{HUGE}s"\n', "surge.window: a duration must be at most 100 years"),
    (f'[surge]\nobserve = "{HUGE}s"\n', "surge.observe: a duration must be at most 100 years"),
    ('[surge]\nwindow = 1e300\n', "surge.window: a duration must be at most 100 years"),
])
def test_a_policy_duration_past_a_century_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, says: str) -> None:
    """A window written as 400 nines read as infinity: the policy's time grid became NaN
    and a run whose surge fired never ended; observe = that was an OverflowError."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\n{TRAFFIC}', encoding="utf-8")
    file = tmp_path / "p.toml"
    file.write_text(policy, encoding="utf-8")
    code, err = run(capsys, "simulate", str(scenario), "--policy", str(file), "--quiet")
    assert code == 2 and f"{file}:2: " in err and says in err, err
    code, err = run(capsys, "sweep", str(scenario), "--param", f"surge.factor={HUGE}")
    assert code == 2 and "a whole number of 400 digits" in err, err


@pytest.mark.parametrize("limit", ["0E-99999999", "0E-999999999", "0.00000000000000"])
def test_a_zero_limit_with_a_huge_exponent_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str) -> None:
    """Zero skipped the decimal-places check: its 100 million zeros were written into a
    200 MB results.json (or a MemoryError, exit 3, at one more digit of exponent)."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\n{TRAFFIC}', encoding="utf-8")
    out = tmp_path / "r.json"
    code, err = run(capsys, "simulate", str(scenario), "--quiet", "--json", str(out),
                    "--threshold", f"spend_eur<={limit}")
    assert code == 2 and "has more than 12 decimal places" in err, err
    assert not out.exists()
    scenario.write_text(f'name = "t"\nduration = "1h"\n{TRAFFIC}[thresholds]\n'
                        f'spend_eur = "<= {limit}"\n', encoding="utf-8")
    code, err = run(capsys, "simulate", str(scenario), "--quiet")
    assert code == 2 and f"{scenario}:7: " in err and "decimal places" in err, err


@pytest.mark.parametrize("number", ["0E-99999999", "1E-9999999"])
def test_a_results_number_with_a_huge_exponent_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], number: str) -> None:
    """`report` took it and wrote it out in full: a 200 MB results.json, a 200 MB
    compare.md, or a MemoryError (exit 3)."""
    import re

    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\n{TRAFFIC}', encoding="utf-8")
    good = tmp_path / "good.json"
    assert run(capsys, "simulate", str(scenario), "--quiet", "--json", str(good))[0] == 0
    text = good.read_text(encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(re.sub(r'"spend_eur": [0-9.]+', f'"spend_eur": {number}', text, count=1),
                   encoding="utf-8")
    line = next(i for i, row in enumerate(bad.read_text().splitlines(), 1) if number in row)
    for args in (["report", str(bad), "-o", str(tmp_path / "out")],
                 ["report", "compare", str(good), str(bad), "-o", str(tmp_path / "cmp")]):
        code, err = run(capsys, *args)
        assert code == 2, err
        assert f"{bad}:{line}:" in err and "has more than 20 decimal places" in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("kind", "key"), [("flood", "scripts"), ("flood", "blocks"),
                                           ("raid", "blocks")])
def test_a_billion_scripts_or_blocks_is_refused_before_any_allocation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, key: str) -> None:
    """One share per script and one prefix per block are built up front: a billion of
    either was a MemoryError (exit 3), or the OOM killer without a memory limit."""
    extra = "rate = 1\n" if kind == "flood" else "rotating = 0.5\n"
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\n[[traffic]]\nkind = "{kind}"\n'
                        f"messages = 1000\n{extra}{key} = 1000000000\n", encoding="utf-8")
    code, err = run(capsys, "trace", str(scenario), "-o", str(tmp_path / "t.jsonl"))
    assert code == 2, err
    assert f"{scenario}:7: [[traffic]] {kind}: {key} is at most 10,000, got 1,000,000,000" \
        in err


@pytest.mark.parametrize("traffic", [
    '[[traffic]]\nkind = "flood"\nrate = 1e-300\n',
    '[[traffic]]\nkind = "organic"\nmessages = 5\nstart = "5h59m59.999s"\n'
    'duration = "1ms"\n',
])
def test_a_scenario_whose_traffic_sends_nothing_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], traffic: str) -> None:
    """It passed `spend_eur <= 0` with "messages 0" (exit 0): scored, a run of no message
    passes every cost gate, which is why an empty trace is refused."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "6h"\n{traffic}[thresholds]\n'
                        'spend_eur = "<= 0"\n', encoding="utf-8")
    for args in (["simulate", str(scenario)],
                 ["simulate", str(scenario), "--replications", "2"],
                 ["sweep", str(scenario), "--param", "surge.factor=3,4"]):
        code, err = run(capsys, *args)
        assert code == 2, (args, err)
        assert f"{scenario}:3: the scenario's traffic sent no message" in err, err


def test_a_file_name_too_long_is_named_not_a_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Path.exists() raises on a name longer than the file system takes (ENAMETOOLONG):
    simulate, trace and fake-provider on such a scenario, or a scenario naming such a
    policy, ended in a traceback (exit 3)."""
    long_name = tmp_path / ("a" * 300 + ".toml")
    for args in (["simulate", str(long_name)], ["trace", str(long_name), "-o",
                                                 str(tmp_path / "t.jsonl")]):
        code, err = run(capsys, *args)
        assert code == 2 and "File name too long" in err, err
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\npolicy = "{"b" * 5000}.toml"\n'
                        f"{TRAFFIC}", encoding="utf-8")
    code, err = run(capsys, "simulate", str(scenario))
    assert code == 2 and f"{scenario}:3: policy file not found: " in err, err
    assert " characters) (hint: the path is relative" in err and len(err) < 700


def test_a_price_past_any_carrier_is_refused_before_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """eur_per_segment = "9000000000000" ran, wrote a results file that `report` refuses
    (spend past 1e15), then failed in the money arithmetic (exit 3)."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\n[pricing]\neur_per_segment = '
                        f'"9000000000000"\n{TRAFFIC}', encoding="utf-8")
    out = tmp_path / "r.json"
    code, err = run(capsys, "simulate", str(scenario), "--json", str(out))
    assert code == 2 and f"{scenario}:4: pricing.eur_per_segment is at most €1,000" in err
    assert not out.exists()
    scenario.write_text(f'name = "t"\nduration = "1h"\n{TRAFFIC}', encoding="utf-8")
    code, err = run(capsys, "sweep", str(scenario), "--param", "eur_per_segment=9e12")
    assert code == 2, err
    code, err = run(capsys, "fake-provider", "--eur-per-segment", "5000", "--port", "1")
    assert code == 2 and "more than €1,000 a segment" in err, err


def test_a_policy_name_with_a_control_character_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The scenario's name refused them; the policy's name went to the terminal (an escape
    sequence ran there) and into summary.md."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\n{TRAFFIC}', encoding="utf-8")
    policy = tmp_path / "p.toml"
    policy.write_text('[policy]\nname = "a\\u0000b\\u001b[31m"\n', encoding="utf-8")
    code, err = run(capsys, "simulate", str(scenario), "--policy", str(policy), "--quiet")
    assert code == 2 and f"{policy}:2: policy.name holds a control character" in err, err


def test_segments_reads_at_most_64_kib_of_standard_input() -> None:
    """`raidsim segments - < /dev/zero` counted for minutes: no SMS is that long."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "raidsim", "segments", "-"],
                          input=b"\x00" * (5 * 1024 * 1024), capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"standard input is more than 64 KiB: not an SMS" in done.stderr
    ok = subprocess.run([sys.executable, "-m", "raidsim", "segments", "-"],
                        input="é".encode() * 2000, capture_output=True, timeout=60)
    assert ok.returncode == 0 and b'"segments": 14' in ok.stdout, ok.stdout


def test_sweep_param_values_in_double_quotes_keep_their_commas(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """reply_text="Bonjour, merci" was swept as two points, "Bonjour" and "merci"."""
    from sim.sweep import parse_axis

    axis = parse_axis('reply_text="Non, merci", "Il a dit ""non""",Non.')
    assert axis.values == ("Non, merci", 'Il a dit "non"', "Non.")
    assert parse_axis('reply_text="3",4').values == ("3", 4)  # quoted: a string
    for bad, says in (('reply_text="Non', "no closing quote"),
                      ('reply_text="Non"x', "text after a quoted value")):
        with pytest.raises(ValueError, match=says):
            parse_axis(bad)
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "t"\nduration = "1h"\n{TRAFFIC}', encoding="utf-8")
    code, err = run(capsys, "sweep", str(scenario), "--param",
                    f"templates.hot_senders={'9' * 5000}")
    assert code == 2
    assert "bad --param templates.hot_senders: a whole number of 5,000 digits" in err, err


@pytest.mark.parametrize(("body", "line", "says"), [
    ('name = "t"\nduration = "1h"\n'
     'traffic = [{kind = "organic", messages = 50, duration = "5x"}]\n', 3,
     "duration: cannot read duration '5x'"),
    ('name = "t"\nduration = "1h"\nfaults = [{kind = "outage", rate = 2}]\n\n[[traffic]]\n'
     'kind = "flood"\nrate = 1.5\n', 3, "faults.rate must be between 0 and 1"),
    ('name = "t"\nduration = "1h"\ntraffic = [{messages = 50}]\n', 3,
     "[[traffic]] number 1 has no kind"),
])
def test_an_inline_table_error_names_its_own_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int,
        says: str) -> None:
    """Tables written inline (traffic = [{...}]) had their errors put on another table's
    key of the same name (the scenario's own duration, a flood's rate), or on no line."""
    scenario = tmp_path / "s.toml"
    scenario.write_text(body, encoding="utf-8")
    code, err = run(capsys, "simulate", str(scenario), "--quiet")
    assert code == 2 and f"{scenario}:{line}: " in err and says in err, err
