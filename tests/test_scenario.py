"""Scenario files: every mistake a user can type is reported as FILE:LINE: problem (hint)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from responder.policy.errors import ConfigError
from responder.sms import segment_info
from sim.scenario import load_scenario
from sim.traffic import KINDS

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

MINIMAL = """\
name = "mini"
seed = 7
duration = "2d"

[pricing]
eur_per_segment = "0.16"

[[traffic]]
kind = "organic"
messages = 100

[[traffic]]
kind = "raid"
start = "1d"
messages = 500
"""


def load_text(tmp_path: Path, text: str) -> ConfigError | object:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_scenario(path)
    except ConfigError as err:
        return err


def error(tmp_path: Path, text: str) -> ConfigError:
    result = load_text(tmp_path, text)
    assert isinstance(result, ConfigError), f"expected an error, loaded {result!r}"
    assert str(result).startswith(str(tmp_path / "scenario.toml") + ":")
    return result


def test_minimal_scenario_loads(tmp_path: Path) -> None:
    """A small file loads with defaults filled in and exact money."""
    path = tmp_path / "scenario.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    scenario = load_scenario(path)
    assert (scenario.name, scenario.seed, scenario.duration_s) == ("mini", 7, 2 * 86400)
    assert scenario.eur_per_segment == scenario.policy.eur_per_segment == Decimal("0.16")
    assert [s.kind for s in scenario.traffic] == ["organic", "raid"]


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    """A TOML syntax error gives tomllib's line."""
    err = error(tmp_path, MINIMAL.replace('duration = "2d"', "duration = 2d"))
    assert err.line == 3 and "not valid TOML" in str(err)


def test_unknown_kind_names_the_line_and_the_known_kinds(tmp_path: Path) -> None:
    """kind = "raide" points at its line and lists the kinds."""
    err = error(tmp_path, MINIMAL.replace('kind = "raid"', 'kind = "raide"'))
    assert err.line == 13
    assert "unknown traffic kind 'raide'" in str(err)
    for kind in KINDS:
        assert kind in str(err)


def test_unknown_traffic_key_names_the_line_and_known_keys(tmp_path: Path) -> None:
    """A typo in a [[traffic]] key points at that key in the right block."""
    err = error(tmp_path, MINIMAL.replace('start = "1d"', 'strat = "1d"'))
    assert err.line == 14
    assert "unknown key 'strat'" in str(err) and "start" in str(err.hint)


def test_unknown_top_level_and_table_keys(tmp_path: Path) -> None:
    """Unknown keys at the top and in [pricing] are errors with the known keys."""
    err = error(tmp_path, MINIMAL.replace('seed = 7', 'sed = 7'))
    assert err.line == 2 and "known keys" in str(err)
    err = error(tmp_path, MINIMAL.replace('eur_per_segment', 'eur_per_sms'))
    assert err.line == 6 and "eur_per_segment" in str(err)


def test_float_money_is_refused_with_the_fix(tmp_path: Path) -> None:
    """eur_per_segment = 0.16 (a float) asks for a string."""
    err = error(tmp_path, MINIMAL.replace('"0.16"', "0.16"))
    assert err.line == 6
    assert 'eur_per_segment = "0.16"' in str(err)


def test_bad_duration_names_the_line(tmp_path: Path) -> None:
    """A duration that cannot be read says which forms work."""
    err = error(tmp_path, MINIMAL.replace('start = "1d"', 'start = "1 day"'))
    assert err.line == 14 and "hint" in str(err)
    err = error(tmp_path, MINIMAL.replace('duration = "2d"', 'duration = "2 jours"'))
    assert err.line == 3


def test_duration_past_the_horizon_names_the_line(tmp_path: Path) -> None:
    """366 days is the longest run: "3000d" took 37 s, 1.9 GB and wrote 260 MB of JSON."""
    loaded = load_text(tmp_path, MINIMAL.replace('duration = "2d"', 'duration = "366d"'))
    assert not isinstance(loaded, ConfigError)
    for too_long in ('"366d1s"', '"3000d"', "1e308"):
        err = error(tmp_path, MINIMAL.replace('duration = "2d"', f"duration = {too_long}"))
        assert err.line == 3
        assert "longer than the 366 days a run can cover" in str(err)
        assert '(hint: write at most duration = "366d"' in str(err)


def test_bad_values_in_traffic(tmp_path: Path) -> None:
    """Wrong types and impossible shares point at their key."""
    err = error(tmp_path, MINIMAL.replace("messages = 500", "messages = 500.5"))
    assert err.line == 15 and "whole number" in str(err)
    err = error(tmp_path, MINIMAL.replace("messages = 500", "messages = 500\nonce = 1.5"))
    assert err.line == 16 and "between 0 and 1" in str(err)
    err = error(tmp_path, MINIMAL.replace("messages = 500", "messages = 500\nmax_per_sender = 0"))
    assert err.line == 16 and "at least 1 message" in str(err)
    err = error(tmp_path, MINIMAL.replace('start = "1d"', 'start = "3d"'))
    assert err.line == 14 and "after the scenario ends" in str(err)
    # every value error says how to write it, a sign or quotes too many included
    err = error(tmp_path, MINIMAL.replace("messages = 500", "messages = -500"))
    assert err.line == 15 and "(hint: write messages = 500, or 0)" in str(err)


def test_traffic_that_sends_nothing_or_waves_after_the_end_are_refused(tmp_path: Path
                                                                      ) -> None:
    """Traffic adding up to 0 messages scored EUR 0 and passed every spend gate (an empty
    trace is refused for that reason); a raid wave after its window ended had its
    messages silently spread over the background."""
    empty = MINIMAL.replace("messages = 100", "messages = 0").replace("messages = 500",
                                                                      "messages = 0")
    err = error(tmp_path, empty)
    assert err.line == 10 and "adds up to 0 messages" in str(err)
    err = error(tmp_path, MINIMAL.replace("messages = 500", 'messages = 500\nwaves = ["30h"]'))
    assert err.line == 16 and "after the source's window ends" in str(err)
    loaded = load_text(tmp_path, MINIMAL.replace("messages = 500",
                                                 'messages = 500\nwaves = ["20h"]'))
    assert not isinstance(loaded, ConfigError)
    # a flood without messages sends as many as its rate fills its window with: it counts
    flood = 'name = "f"\nduration = "1d"\n\n[[traffic]]\nkind = "flood"\n'
    assert not isinstance(load_text(tmp_path, flood), ConfigError)
    err = error(tmp_path, flood + "rate = 1000.0\n")
    assert "86,400,000 messages, more than the 10,000,000" in str(err)
    # a rate whose window count overflows a float is refused too, not an OverflowError
    err = error(tmp_path, flood + "rate = 1e308\n")
    assert "more than the 10,000,000" in str(err)
    assert not isinstance(load_text(tmp_path, flood + "rate = 1e308\nmessages = 5\n"),
                          ConfigError)


@pytest.mark.parametrize(("extra", "kind", "key", "problem"), [
    ('wave_rise = "0s"', "raid", "wave_rise", "wave_rise must be more than 0"),
    ("wave_sizes = [0.0]", "raid", "wave_sizes", "the raid sends nothing"),
    ("wave_sizes = [1e308, 1e308]", "raid", "wave_sizes", "the raid would send nothing"),
    ("scripts = 0", "flood", "scripts", "at least one script"),
    ('rise = "0s"', "press", "rise", "rise must be more than 0"),
])
def test_a_bad_shape_value_names_its_own_key(tmp_path: Path, extra: str, kind: str,
                                             key: str, problem: str) -> None:
    """wave_rise = 0 was reported under wave_decay, scripts = 0 under rate (with a rate
    hint), a press rise with a decay hint; all-zero wave sizes sent nothing, silently."""
    waves = '["1h", "2h"]' if "," in extra else '["1h"]'  # one wave per size
    text = (f'name = "k"\nduration = "2d"\n\n[[traffic]]\nkind = "{kind}"\nmessages = 10\n'
            + (f"{extra}\n" if kind != "raid" else f"waves = {waves}\n{extra}\n"))
    err = error(tmp_path, text)
    assert problem in str(err)
    assert err.line == text.splitlines().index(extra) + 1
    assert key in (err.hint or "")


@pytest.mark.parametrize("kind", ['["raid"]', '{ name = "raid" }', "1", "true"])
def test_a_kind_that_is_no_string_names_its_line(tmp_path: Path, kind: str) -> None:
    """kind = ["raid"] (a list or a table: unhashable) is exit 2 with its line, not a crash."""
    err = error(tmp_path, MINIMAL.replace('kind = "raid"', f"kind = {kind}"))
    assert err.line == 13 and "unknown traffic kind" in str(err)
    assert 'kind = "raid"' in str(err)


def test_missing_kind_points_at_the_table(tmp_path: Path) -> None:
    """A [[traffic]] without kind names its header line."""
    err = error(tmp_path, MINIMAL.replace('kind = "raid"\n', ""))
    assert err.line == 12 and "has no kind" in str(err)


def test_policy_table_errors_name_the_line(tmp_path: Path) -> None:
    """Errors inside [policy] come from PolicyConfig with the scenario's file and line."""
    err = error(tmp_path, MINIMAL + '\n[policy.budget]\ntotal_euros = "10"\n')
    assert err.line == 18 and "total_euros" in str(err)


def test_unreadable_and_not_utf8(tmp_path: Path) -> None:
    """A missing file and a non-UTF-8 file are reported, not raised as tracebacks."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "x"\ndescription = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert caught.value.line == 2


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_load_with_a_one_segment_gsm7_reply(path: Path) -> None:
    """Every shipped scenario loads, and its reply costs exactly one GSM-7 segment."""
    scenario = load_scenario(path)
    info = segment_info(scenario.reply_text)
    assert (info.encoding, info.segments) == ("GSM-7", 1)
    assert scenario.policy.reply_text == scenario.reply_text
    assert scenario.duration_s < 7 * 86400 or scenario.name != "anti-relous-2017"


@pytest.mark.parametrize("fault, line, key", [
    ('kind = "errors"\nstart = "1 day"\nduration = "1h"\n', 19, "faults.start"),
    ('kind = "errors"\nstart = "1d"\nduration = "1 hour"\n', 20, "faults.duration"),
    ('kind = "errors"\nduration = "soon"\n', 19, "faults.duration"),  # no start line at all
])
def test_bad_fault_times_name_their_own_line(tmp_path: Path, fault: str, line: int,
                                             key: str) -> None:
    from sim.run import job_from_inputs

    path = tmp_path / "scenario.toml"
    path.write_text(MINIMAL + "\n[[faults]]\n" + fault, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        job_from_inputs(scenario_path=path, trace_path=None, policy_path=None, seed=None)
    err = caught.value
    assert (err.line, err.message.split(":")[0]) == (line, key)
    assert str(err).startswith(f"{path}:{line}: ") and "hint" in str(err)


@pytest.mark.parametrize("start", ['"100d"', '"2d"', "172800", '"3d12h"'])
def test_a_fault_starting_at_or_after_the_end_is_refused_as_traffic_is(
        tmp_path: Path, start: str) -> None:
    """An outage at 100 days in a 2-day scenario was accepted and never fired, while a
    [[traffic]] table starting after the end is an error."""
    err = error(tmp_path, MINIMAL + f'\n[[faults]]\nkind = "outage"\nstart = {start}\n')
    assert err.line == 19, str(err)
    assert "[[faults]] outage starts at" in err.message and "after the scenario ends" in str(err)
    assert "start it earlier or make the scenario's duration longer" in str(err)


def test_a_fault_inside_the_scenario_or_running_past_its_end_loads(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, MINIMAL + '\n[[faults]]\nkind = "outage"\nstart = "47h"\n'
                       'duration = "5d"\n')
    assert not isinstance(loaded, ConfigError), loaded


def test_a_fault_after_the_end_is_exit_2_for_simulate_and_fake_provider(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from raidsim.cli import UsageError, build_parser, main
    from raidsim.commands.fake_provider import config_from_args

    path = tmp_path / "scenario.toml"
    path.write_text(MINIMAL + '\n[[faults]]\nkind = "outage"\nstart = "100d"\n',
                    encoding="utf-8")
    assert main(["simulate", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:19: [[faults]] outage starts at 100d" in err, err
    # the fake's config, resolved without serving (a run that is not refused never ends)
    args = build_parser().parse_args(["fake-provider", str(path)])
    with pytest.raises(UsageError) as caught:
        config_from_args(args, environ={})
    assert f"{path}:19: [[faults]] outage starts at 100d" in str(caught.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_duration_must_be_finite(tmp_path: Path, value: str) -> None:
    err = error(tmp_path, MINIMAL.replace('duration = "2d"', f"duration = {value}"))
    assert err.line == 3 and "must be finite" in str(err)


def test_a_bare_number_is_seconds(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, MINIMAL.replace('duration = "2d"', "duration = 172800"))
    assert getattr(loaded, "duration_s", None) == 172800.0


def test_a_quoted_table_header_names_its_line(tmp_path: Path) -> None:
    """An empty quoted header (['']) was reported as an unknown key with no line: a quoted
    part of a header names the same table as a bare one."""
    err = error(tmp_path, MINIMAL + "\n['']\nx = 1\n")
    assert err.line == MINIMAL.count("\n") + 2
    assert "unknown scenario key ''" in str(err)


def test_start_at_keeps_the_clock_time_as_written(tmp_path: Path) -> None:
    """An offset on ``start_at`` names a zone; the clock time as written is the number's
    local time at t = 0, which sets the day/night cycle (docs/scenarios.md). A time alone
    is refused in TOML's words, not Python's (``datetime.time(10, 0)``)."""
    def scenario(start_at: str) -> Path:
        path = tmp_path / "s.toml"
        path.write_text(f'name = "s"\nstart_at = {start_at}\nduration = "1d"\n'
                        '[[traffic]]\nkind = "organic"\nmessages = 10\n', encoding="utf-8")
        return path

    plain = load_scenario(scenario("2017-01-01T10:00:00")).start_at
    for offset in ("Z", "+12:00", "-03:30"):
        assert load_scenario(scenario(f"2017-01-01T10:00:00{offset}")).start_at == plain
    with pytest.raises(ConfigError) as caught:
        load_scenario(scenario("10:00:00"))
    assert "start_at must be a TOML date-time, got 10:00:00 (hint:" in str(caught.value)
