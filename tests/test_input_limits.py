"""Input that is not what it claims to be: too deep, too large, not finite, or the command's
own output path. Each is exit 2 with the file, the line where there is one, and the fix;
none may crash (exit 3), fill memory or destroy a file.

Found by a walkthrough on a clean clone: `raidsim simulate --trace /dev/zero` was stopped by
the kernel's OOM killer after taking 24 GB, nested brackets raised RecursionError (exit 3),
`error_rate = nan` raised decimal.InvalidOperation, `surge.factor = inf` silently turned
surge detection off, and `trace self.toml -o self.toml` overwrote the scenario.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from raidsim.cli import main
from reports import results as results_module
from responder.policy import errors

ROOT = Path(__file__).resolve().parent.parent

SMALL = """\
name = "small"
seed = 1
duration = "1h"

[pricing]
eur_per_segment = "0.16"

[reply]
text = "Bonjour."

[[traffic]]
kind = "organic"
messages = 50
"""

BARE = """\
name = "bare"
seed = 1
duration = "1h"

[[traffic]]
kind = "organic"
messages = 50
"""

LINE = ('{"t": 1, "from": "+33612345678", "to": "+33644649021", "body": "Salut", '
        '"label": "legit"}\n')


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ nesting


def test_a_deeply_nested_trace_line_is_exit_2_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path / "n.jsonl", LINE + "[" * 5000 + "]" * 5000 + "\n")
    code, _, err = run(capsys, "simulate", "--trace", trace)
    assert code == 2, err
    assert f"{trace}:2: " in err and "nested too deeply" in err


def test_a_deeply_nested_scenario_or_policy_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    scenario = write(tmp_path / "d.toml", deep + SMALL)
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}:1: " in err and "nested too deeply" in err
    policy = write(tmp_path / "p.toml", "[budget]\nenabled = true\n" + deep)
    code, _, err = run(capsys, "simulate", write(tmp_path / "s.toml", SMALL), "--policy", policy)
    assert code == 2, err
    assert f"{policy}:3: " in err and "nested too deeply" in err


def test_a_cut_off_scenario_names_its_last_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tomllib says "at end of document" with no line; the error names the last one."""
    for cut in ('[thresholds]\nspend_eur = "<= 1', "[thresholds]\nspend_eur =", "[thresh"):
        scenario = write(tmp_path / "cut.toml", SMALL + cut)
        code, _, err = run(capsys, "simulate", scenario)
        assert code == 2, err
        last = len((SMALL + cut).splitlines())
        assert f"{scenario}:{last}: not valid TOML" in err and "end of document" in err


def test_deeply_nested_results_are_exit_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    deep = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "report", deep)
    assert code == 2, err
    assert "deep.json" in err and "nested too deeply" in err


# ------------------------------------------------------------------ size


def test_a_trace_line_over_the_limit_is_refused_before_it_is_read_whole(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim import trace as trace_module

    body = "x" * trace_module.MAX_LINE_BYTES
    trace = write(tmp_path / "big.jsonl", LINE + json.dumps(
        {"t": 2, "from": "+33612345678", "to": "+33644649021", "body": body}) + "\n")
    code, _, err = run(capsys, "simulate", "--trace", trace)
    assert code == 2, err
    assert f"{trace}:2: line longer than 1 MiB" in err


def test_a_zero_stream_given_as_a_trace_is_refused_at_once(
        capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    code, _, err = run(capsys, "simulate", "--trace", "/dev/zero")
    assert code == 2, err
    assert "/dev/zero:1: line longer than 1 MiB" in err


def test_config_and_results_files_past_their_size_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "MAX_CONFIG_BYTES", 100)
    monkeypatch.setattr(results_module, "MAX_RESULTS_BYTES", 100)
    scenario = write(tmp_path / "s.toml", SMALL)
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}: scenario is larger than" in err
    results = write(tmp_path / "r.json", json.dumps({"pad": "x" * 200}))
    code, _, err = run(capsys, "report", results)
    assert code == 2, err
    assert "r.json: larger than" in err


def test_a_scenario_with_a_runaway_message_count_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path / "big.toml", BARE.replace("messages = 50",
                                                         "messages = 100000000000000000"))
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}:7: the traffic adds up to" in err and "10,000,000" in err


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(("table", "key", "value"), [
    ("provider", "error_rate", "nan"),
    ("provider", "timeout_rate", "nan"),
    ("provider", "segments_per_second", "inf"),
    ("provider", "segments_per_second", "nan"),
    ("policy.surge", "factor", "inf"),
    ("policy.surge", "factor", "nan"),
    ("policy.surge", "factor", "1e400"),
])
def test_numbers_that_are_not_finite_are_exit_2_with_their_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, key: str,
        value: str) -> None:
    scenario = write(tmp_path / "s.toml", f"{SMALL}\n[{table}]\n{key} = {value}\n")
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}:16: " in err and "finite" in err


def test_a_sweep_value_that_is_not_finite_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sweep", write(tmp_path / "s.toml", SMALL),
                       "--param", "surge.factor=nan")
    assert code == 2, err
    assert "surge.factor must be a finite number" in err


# ------------------------------------------------------------------ TOML mistakes


@pytest.mark.parametrize(("text", "line", "hint"), [
    (SMALL.replace('seed = 1\n', 'seed = 1\nseed = 2\n'), 3, "a key is set twice"),
    (SMALL + '\n[pricing]\neur_per_segment = "0.2"\n', 15, "may appear only once"),
    (LINE, 1, "looks like a JSON trace"),
])
def test_toml_mistakes_get_a_hint_that_names_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int,
        hint: str) -> None:
    scenario = write(tmp_path / "s.toml", text)
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}:{line}: not valid TOML" in err and hint in err


def test_a_scenario_saved_with_a_byte_order_mark_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "bom.toml"
    scenario.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    code, out, err = run(capsys, "simulate", scenario)
    assert code == 0, err
    assert "messages" in out


@pytest.mark.parametrize(("value", "message"), [
    ('""', "policy is an empty path"),
    ('"/"', "policy names a directory"),
])
def test_a_policy_path_that_is_no_file_names_the_scenario_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str) -> None:
    scenario = write(tmp_path / "s.toml", SMALL.replace('duration = "1h"\n',
                                                        f'duration = "1h"\npolicy = {value}\n'))
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}:4: {message}" in err


# ------------------------------------------------------------------ --policy and the price


def test_a_policy_file_sets_the_price_a_scenario_leaves_to_its_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path / "p.toml", 'eur_per_segment = "0.50"\n')
    code, out, err = run(capsys, "simulate", write(tmp_path / "bare.toml", BARE),
                         "--policy", policy)
    assert code == 0, err
    assert "€0.50 each" in out


def test_a_policy_file_and_a_scenario_that_disagree_on_the_price_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path / "p.toml", 'name = "p"\neur_per_segment = "0.50"\n')
    scenario = write(tmp_path / "s.toml", SMALL)
    code, _, err = run(capsys, "simulate", scenario, "--policy", policy)
    assert code == 2, err
    assert f"{policy}:2: eur_per_segment is set here" in err and "[pricing]" in err
    same = write(tmp_path / "same.toml", 'eur_per_segment = "0.16"\n')
    code, out, err = run(capsys, "simulate", scenario, "--policy", same)
    assert code == 0, err
    assert "€0.16 each" in out


# ------------------------------------------------------------------ outputs


def test_an_output_path_that_is_an_input_is_refused_and_the_input_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path / "self.toml", SMALL)
    code, _, err = run(capsys, "trace", scenario, "-o", scenario)
    assert code == 2, err
    assert "is the input file" in err
    assert scenario.read_text(encoding="utf-8") == SMALL
    trace = write(tmp_path / "t.jsonl", LINE)
    code, _, err = run(capsys, "simulate", "--trace", trace, "--json",
                       tmp_path / "x" / ".." / "t.jsonl")
    assert code == 2, err
    assert "is the input file" in err
    assert trace.read_text(encoding="utf-8") == LINE


def test_trace_creates_the_output_folder_as_json_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "dir" / "t.jsonl"
    code, _, err = run(capsys, "trace", write(tmp_path / "s.toml", SMALL), "-o", out)
    assert code == 0, err
    assert out.read_text(encoding="utf-8").startswith('{"t":')


# ------------------------------------------------------------------ the rest


def test_load_without_locust_says_which_extra_to_install(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "locust" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    code, _, err = run(capsys, "load", write(tmp_path / "s.toml", SMALL),
                       "--auth-token", "x")
    assert code == 2, err
    assert "from the raidsim checkout with: pip install '.[load]'" in err


def test_messages_at_the_end_of_the_span_get_a_hint_about_the_span(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path / "late.jsonl", LINE.replace('"t": 1', '"t": 31622400'))
    code, _, err = run(capsys, "simulate", "--trace", trace)
    assert code == 0, err
    assert "1 replies were never sent" in err
    assert "within a day of the end of the 366 days" in err


@pytest.mark.parametrize(("kind", "key", "line"), [
    ("organic", "messages_per_sender", "[1, 1000000000]"),
    ("press", "messages_per_sender", "[1, 10000001]"),
    ("raid", "script_messages", "[100, 100000000000]"),
    ("raid", "rotating_messages", "[5, 20000000]"),
    ("raid", "per_number", "[1, 1000000000000]"),
    ("flood", "per_number", "[1, 99999999999]"),
])
def test_a_runaway_range_is_refused_at_load_with_its_line_and_the_bound(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, key: str,
        line: str) -> None:
    """`messages_per_sender = [1, 1000000000]` took 22 GB in 40 s (a list per option); the
    high end of an integer range is a message count, bounded like the run's messages."""
    scenario = write(tmp_path / "range.toml", BARE.replace(
        'kind = "organic"\nmessages = 50', f'kind = "{kind}"\nmessages = 50\n{key} = {line}'))
    for command in ("simulate", "trace"):
        args = [command, scenario] + (["-o", str(tmp_path / "t.jsonl")]
                                      if command == "trace" else [])
        code, _, err = run(capsys, *args)
        assert code == 2, err
        assert f"{scenario}:8: [[traffic]] {kind}: {key}: high " in err, err
        assert "more than the 10,000,000 messages a run takes" in err, err
        assert "Traceback" not in err


def test_a_range_at_the_bound_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path / "range.toml", BARE.replace(
        "messages = 50", "messages = 50\nmessages_per_sender = [1, 10000000]"))
    code, _, err = run(capsys, "simulate", scenario, "--quiet")
    assert code == 0, err


@pytest.mark.parametrize(("text", "message"), [
    ("x" * 5000, "reply.text is 5,000 characters long; the provider refuses a body over 1,600 "
                 "(Twilio error 21617)"),
    ("Bonjour\\u0000", "reply.text holds the control character U+0000 at character 8"),
    ("Bonjour\\t!", "reply.text holds the control character U+0009 at character 8"),
])
def test_a_reply_text_the_provider_would_refuse_is_exit_2_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    """A 5,000-character reply ran with only a cost warning (Twilio refuses it: 21617), and
    a NUL in it exited 0 while `name` refuses control characters."""
    scenario = write(tmp_path / "s.toml", SMALL.replace('"Bonjour."', f'"{text}"'))
    code, _, err = run(capsys, "simulate", scenario)
    assert code == 2, err
    assert f"{scenario}:9: {message}" in err, err
    policy = write(tmp_path / "p.toml", f'reply_text = "{text}"\n')
    code, _, err = run(capsys, "simulate", write(tmp_path / "b.toml", BARE), "--policy", policy)
    assert code == 2, err
    assert f"{policy}:1: {message.replace('reply.text', 'reply_text')}" in err, err


def test_a_reply_text_with_line_breaks_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path / "s.toml", SMALL.replace('"Bonjour."', '"Bonjour.\\r\\nMerci."'))
    code, _, err = run(capsys, "simulate", scenario, "--quiet")
    assert code == 0, err


def test_errors_a_user_can_act_on(tmp_path: Path) -> None:
    """Messages that were exit 2 but hard to act on: a flood's rate of 1e300 printed a
    300-digit count and named its [[traffic]] header, a 5,000-digit number in a trace told
    the user to call sys.set_int_max_str_digits(), a gzip trace was only "not UTF-8",
    and a fault after the end said "(1 days)"."""
    import gzip

    from sim.scenario import load_scenario
    from sim.trace import read_trace

    def refused(name: str, content: str | bytes, read: Any) -> str:
        path = tmp_path / name
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(data)
        with pytest.raises(errors.ConfigError) as caught:
            read(path)
        return str(caught.value).removeprefix(f"{path}:")

    traffic = 'name = "f"\nduration = "1d"\n[[traffic]]\nkind = '
    assert refused("flood.toml", traffic + '"flood"\nrate = 1e300\n', load_scenario).startswith(
        "5: the traffic adds up to about 8.6e+304 messages, more than the 10,000,000 a run "
        "takes")
    late = (traffic + '"organic"\nmessages = 20\n[[faults]]\nkind = "outage"\n'
            'start = "1d2h"\nduration = "1h"\n')
    assert refused("late.toml", late, load_scenario).startswith(
        "8: [[faults]] outage starts at 1d2h, at or after the scenario ends (1d): it would "
        "never fire")
    line = '{"t": %s, "from": "+33612345678", "to": "+33644649021", "body": "x"}\n'
    big = refused("big.jsonl", line % ("1" * 5000), lambda p: list(read_trace(p)))
    assert big.startswith("1: not a JSON object: a number of more than 4,300 digits")
    assert "sys.set_int_max_str_digits" not in big
    packed = refused("t.jsonl.gz", gzip.compress((line % "0").encode()),
                     lambda p: list(read_trace(p)))
    assert packed == ("1: not UTF-8: byte 0x8b at column 2 (hint: the file is "
                      "gzip-compressed: decompress it first (gunzip FILE))")
