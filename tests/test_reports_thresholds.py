"""Thresholds: syntax, scenario tables, exact money, fail closed, abort_on_fail."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.thresholds import (
    Threshold,
    ThresholdSyntaxError,
    apply,
    evaluate,
    merge,
    parse_threshold,
    should_abort,
    thresholds_from_results,
    thresholds_from_table,
)


@pytest.mark.parametrize(
    ("expr", "metric", "op", "limit"),
    [
        ("spend_eur<=600", "spend_eur", "<=", Decimal("600")),
        ("reply_latency_s.p95 < 30", "reply_latency_s.p95", "<", Decimal("30")),
        ("  legit_coverage>=0.99 ", "legit_coverage", ">=", Decimal("0.99")),
        ("replies.raid == 0", "replies.raid", "==", Decimal("0")),
        ("budget.cap_eur > -1.5", "budget.cap_eur", ">", Decimal("-1.5")),
        ("spend_eur<=4.8e3", "spend_eur", "<=", Decimal("4800")),
    ],
)
def test_parse_threshold_accepts_the_documented_forms(expr, metric, op, limit):
    """Each documented form parses to its metric, operator and exact Decimal limit."""
    threshold = parse_threshold(expr)
    assert (threshold.metric, threshold.op, threshold.limit) == (metric, op, limit)
    assert isinstance(threshold.limit, Decimal)


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("spend_eur<<5", "'<<' is not an operator"),
        ("spend_eur=<5", "'=<' is not an operator"),
        ("spend_eur 600", "no comparison operator"),
        ("spend_eur <= six hundred", "not a number"),
        ("<= 5", "is not a metric path"),
        ("", "empty"),
        ("0 < spend_eur < 5", "more than one operator"),
    ],
)
def test_parse_threshold_errors_say_what_is_wrong_and_show_the_syntax(expr, why):
    """A bad expression raises a ValueError naming the fault and the expected syntax."""
    with pytest.raises(ThresholdSyntaxError) as caught:
        parse_threshold(expr, source="--threshold")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert why in message
    assert "expected METRIC OP NUMBER" in message
    assert "<=, <, >=, >, ==" in message
    assert message.startswith("--threshold: ")


metric_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}(\.[a-z0-9_]{1,5}){0,2}", fullmatch=True)
limits = st.decimals(allow_nan=False, allow_infinity=False, places=4,
                     min_value=-10**6, max_value=10**6)


@given(metric=metric_names, op=st.sampled_from(["<=", "<", ">=", ">", "=="]), limit=limits)
def test_expression_round_trips(metric, op, limit):
    """parse(t.expression) gives back t, for any metric path, operator and limit."""
    threshold = Threshold(metric, op, limit)
    again = parse_threshold(threshold.expression)
    assert again.key() == threshold.key()


SCENARIO = """\
name = "x"

[thresholds]
spend_eur = { op = "<=", limit = "600", abort_on_fail = true }
legit_coverage = ">= 0.99"
reply_latency_s.p95 = "< 30"
"replies.raid" = ["<= 100", { op = ">=", limit = 0 }]
naive_spend_eur = { op = "<", limit = 4800.5 }
"""


def test_thresholds_from_table_reads_strings_inline_tables_dotted_keys_and_lists():
    """Every form a scenario's [thresholds] table allows becomes the right Threshold."""
    table = tomllib.loads(SCENARIO)["thresholds"]
    got = thresholds_from_table(table, path="s.toml", text=SCENARIO)
    assert [(t.metric, t.op, t.limit, t.abort_on_fail) for t in got] == [
        ("spend_eur", "<=", Decimal("600"), True),
        ("legit_coverage", ">=", Decimal("0.99"), False),
        ("reply_latency_s.p95", "<", Decimal("30"), False),
        ("replies.raid", "<=", Decimal("100"), False),
        ("replies.raid", ">=", Decimal("0"), False),
        ("naive_spend_eur", "<", Decimal("4800.5"), False),
    ]
    assert all(t.source == "s.toml" for t in got)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('spend_eur = "<< 600"', "'<<' is not an operator"),
        ('spend_eur = { op = "<<", limit = "600" }', "op must be one of"),
        ('spend_eur = { op = "<=" }', "limit is required"),
        ('spend_eur = { op = "<=", limit = "lots" }', "is not a number"),
        ('spend_eur = { op = "<=", limit = 1, abort = true }', "unknown key(s) abort"),
        ('legit_coverage = { op = ">=", limit = 1, abort_on_fail = true }',
         "would stop a run that could still pass"),
        ("spend_eur = 600", "expected a string or an inline table"),
        # misspelt op and limit: not read as a metric 'spend_eur.opp' with no line
        ('spend_eur = { opp = "<=", lmt = 5 }', "unknown key(s) lmt, opp"),
        ('spend_eur = { limt = "5", abort_on_fail = true }', "unknown key(s) limt"),
    ],
)
def test_thresholds_from_table_errors_name_file_line_and_syntax(line, needle):
    """A bad [thresholds] entry raises with FILE:LINE, the fault and the table syntax."""
    text = f'name = "x"\n\n[thresholds]\n{line}\n'
    table = tomllib.loads(text)["thresholds"]
    with pytest.raises(ThresholdSyntaxError) as caught:
        thresholds_from_table(table, path="scenario.toml", text=text)
    message = str(caught.value)
    assert message.startswith("scenario.toml:4: ")
    assert needle in message


RESULTS = {
    "spend_eur": Decimal("4800.00"),
    "naive_spend_eur": 4800.1,
    "legit_coverage": Decimal("0.99"),
    "reply_latency_s": {"p50": 1.5, "p95": None, "p99": 12.0},
    "replies": {"raid": 0, "total": 12},
    "decisions": {"by_rule": {}},
    "notes": "",
    "flag": True,
}


def _one(expr: str):
    (result,) = evaluate(RESULTS, [parse_threshold(expr)])
    return result


def test_money_is_compared_exactly():
    """4800.00 <= 4800 holds and 4800.00 < 4800 does not; floats compare by their
    shortest decimal form, so 4800.1 == 4800.1 holds (no binary rounding)."""
    assert _one("spend_eur <= 4800").ok
    assert not _one("spend_eur < 4800").ok
    assert _one("spend_eur == 4800").ok
    assert _one("naive_spend_eur == 4800.1").ok
    assert not _one("naive_spend_eur <= 4800.09").ok
    assert _one("legit_coverage >= 0.99").ok


def test_failure_message_names_value_limit_and_gap():
    """A failed money threshold shows value, limit and by how much, in euros."""
    result = _one("spend_eur <= 600")
    assert not result.ok
    assert result.value == Decimal("4800.00")
    assert result.message == ("spend_eur <= 600: FAILED, value €4,800.00, "
                              "limit <= €600.00 (over by €4,200.00)")


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ("no_such_metric < 5", "metric 'no_such_metric' is missing from the results"),
        ("reply_latency_s.p95 < 30", "missing (null in the results)"),
        ("reply_latency_s.p90 < 30", "missing from the results"),
        ("decisions.by_rule < 1", "missing (empty object in the results)"),
        ("notes < 1", "missing (empty in the results)"),
        ("flag == 1", "is not a finite number"),
        ("reply_latency_s < 30", "use one of reply_latency_s.p50, reply_latency_s.p95"),
    ],
)
def test_missing_null_empty_or_non_numeric_metrics_fail_closed(expr, needle):
    """A threshold whose metric is not a number FAILS, whatever the operator."""
    result = _one(expr)
    assert result.ok is False
    assert result.value is None
    assert needle in result.message


def test_apply_records_every_threshold_and_the_verdict():
    """apply fills results['thresholds'] in the contract's shape and results['passed']."""
    results = dict(RESULTS)
    passed = apply(results, [parse_threshold("replies.total >= 10"),
                             parse_threshold("spend_eur <= 1", abort_on_fail=True)])
    assert passed is False
    assert results["passed"] is False
    first, second = results["thresholds"]
    assert first == {"name": "replies.total", "op": ">=", "limit": Decimal("10"),
                     "value": Decimal("12"), "ok": True, "abort_on_fail": False,
                     "message": "replies.total >= 10: ok, value 12"}
    assert second["ok"] is False and second["abort_on_fail"] is True
    assert apply(results, []) is True and results["thresholds"] == []


def test_should_abort_only_on_broken_upper_bounds_marked_abort_on_fail():
    """should_abort returns broken abort_on_fail upper bounds and ignores the rest,
    including metrics not reported yet and '==' limits still ahead."""
    spend_cap = parse_threshold("spend_eur <= 600", abort_on_fail=True)
    soft_cap = parse_threshold("spend_eur <= 100")
    exact = parse_threshold("replies.total == 20", abort_on_fail=True)
    later = parse_threshold("segments_total <= 1", abort_on_fail=True)
    gate = [spend_cap, soft_cap, exact, later]
    assert should_abort({"spend_eur": Decimal("599.99"), "replies": {"total": 3}}, gate) == []
    broken = should_abort({"spend_eur": Decimal("600.01"), "replies": {"total": 21}}, gate)
    assert [r.threshold for r in broken] == [spend_cap, exact]
    assert "over by €0.01" in broken[0].message


def test_abort_on_fail_is_refused_on_lower_bounds():
    """abort_on_fail on '>=' would stop runs that could still pass, so it is an error."""
    with pytest.raises(ThresholdSyntaxError, match="upper bounds"):
        parse_threshold("legit_coverage >= 0.99", abort_on_fail=True)


def test_thresholds_recorded_in_results_can_be_re_evaluated_and_merged():
    """Recorded thresholds come back as Threshold objects; merge drops duplicates."""
    results = dict(RESULTS)
    apply(results, [parse_threshold("spend_eur <= 600", abort_on_fail=True),
                    parse_threshold("legit_coverage >= 0.95")])
    recorded = thresholds_from_results(results)
    assert [t.expression for t in recorded] == ["spend_eur <= 600", "legit_coverage >= 0.95"]
    assert recorded[0].abort_on_fail is True
    merged = merge(recorded, [parse_threshold("spend_eur<=600"), parse_threshold("spend_eur<1")])
    assert [t.expression for t in merged] == ["spend_eur <= 600", "legit_coverage >= 0.95",
                                              "spend_eur < 1"]


def test_replication_intervals_with_dotted_keys_can_be_gated():
    """`simulate --replications N` writes replications["reply_latency_s.p95"] and
    replications["messages.raid"]: a dotted threshold path must reach them, and an
    interval of money reads as euros."""
    results = {"replications": {
        "spend_eur": {"mean": 44.192, "low": 38.340877, "high": 50.043123},
        "reply_latency_s.p95": {"mean": 295.3, "low": 0.0, "high": 1115.06},
        "messages.raid": {"mean": 557.8, "low": 497.3, "high": 618.3},
    }}
    outcome = evaluate(results, [parse_threshold("replications.messages.raid.mean<=600"),
                                 parse_threshold("replications.reply_latency_s.p95.high<1000"),
                                 parse_threshold("replications.spend_eur.high<=50")])
    assert [r.ok for r in outcome] == [True, False, False]
    assert not any(r.missing for r in outcome)
    assert "€50.043123" in outcome[2].message
    missing = evaluate(results, [parse_threshold("replications.messages.legit.mean<=1")])[0]
    assert missing.missing


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[thresholds.reply_latency_s]\np95 = 5\n',
         "scenario.toml:2: [thresholds] reply_latency_s.p95: expected a string or an "
         "inline table, not int"),
        ('[thresholds.replies]\nlegit = ">= 5"\nraid = 3\n',
         "scenario.toml:3: [thresholds] replies.raid: expected a string"),
    ],
)
def test_a_bare_number_under_a_table_of_metrics_names_that_metric(text, needle):
    """A table of metrics (not a threshold's own table) with a number in it: the error
    names the metric, not 'unknown key(s) p95' of the table above it."""
    with pytest.raises(ThresholdSyntaxError) as caught:
        thresholds_from_table(tomllib.loads(text)["thresholds"], path="scenario.toml",
                              text=text)
    assert needle in str(caught.value)
    assert "unknown key" not in str(caught.value)


def test_a_rule_or_provider_error_that_never_occurred_reads_zero_a_typo_stays_missing():
    """The count maps list only what occurred, so `provider.errors.server_error<=0` failed
    as missing on a clean run, and `decisions.by_rule.budget_total<=0` on a run that never
    met the cap: the natural "no errors" and "never hit the cap" gates failed when they
    held. A known name reads 0; a typo, or a map the run did not write, still fails."""
    results = {"decisions": {"by_rule": {"first_contact": 12}}, "provider": {"errors": {}}}
    checks = [parse_threshold(e) for e in (
        "provider.errors.server_error<=0", "decisions.by_rule.budget_total<=0",
        "decisions.by_rule.first_contact>=12", "provider.errors.timeout>=1",
        "provider.errors.server_eror<=0", "decisions.by_rule.budget<=0")]
    got = evaluate(results, checks)
    assert [r.ok for r in got] == [True, True, True, False, False, False]
    assert got[0].value == 0 and got[3].value == 0 and not got[3].missing
    assert "'provider.errors' counts only auth, connect_error, " in got[4].message
    assert got[5].missing and "budget_total" in got[5].message
    # a live run without the responder's counters has no provider.errors at all: missing
    bare = evaluate({"decisions": {"by_rule": {}}}, [parse_threshold("provider.errors.timeout<=0")])
    assert bare[0].missing and not bare[0].ok


def test_every_provider_error_kind_either_command_writes_is_a_known_one():
    """The names a zero can stand for: the simulator's outcomes and the responder's kinds
    as raidsim load renames them."""
    import inspect

    from raidsim.commands.load import provider_error_kind
    from reports.thresholds import PROVIDER_ERROR_KINDS
    from sim import model

    source = inspect.getsource(model.RaidModel._worker)
    sim_kinds = {"connect_error", "timeout", "rate_limited", "server_error", "rejected"}
    assert all(f'"{kind}"' in source for kind in sim_kinds)
    live = ("connect", "timeout", "transport", "http_429", "http_503", "auth", "http_5xx",
            "http_400", "http_404", "error")
    assert sim_kinds | {provider_error_kind(k) for k in live} == PROVIDER_ERROR_KINDS


def test_a_coverage_limit_written_as_a_percentage_is_refused_with_the_share() -> None:
    """`legit_coverage>=99` failed every run with "value 1.0 (limit >= 99)", beside
    reports that show the coverage as 100.00 %: it is a share from 0 to 1."""
    from reports.thresholds import ThresholdSyntaxError, parse_threshold, thresholds_from_table

    for expr, fix in (("legit_coverage>=99", "legit_coverage >= 0.99 for 99 %"),
                      ("replications.legit_coverage.low>=95",
                       "replications.legit_coverage.low >= 0.95 for 95 %")):
        with pytest.raises(ThresholdSyntaxError) as caught:
            parse_threshold(expr)
        assert "legit_coverage is a share from 0 to 1, not a percentage" in str(caught.value)
        assert f"(hint: write {fix})" in str(caught.value)
    with pytest.raises(ThresholdSyntaxError, match="is a share from 0 to 1"):
        thresholds_from_table({"legit_coverage": ">= 99.5"})
    with pytest.raises(ThresholdSyntaxError, match="is a share from 0 to 1"):
        thresholds_from_table({"legit_coverage": {"op": ">=", "limit": 98}})
    assert parse_threshold("legit_coverage>=1").limit == 1  # full coverage: a share
    assert parse_threshold("spend_eur<=99").limit == 99


def test_a_failed_threshold_is_named_on_stderr_whatever_stdout_shows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`raidsim report r.json --threshold 'spend_eur<1' 2>/dev/null` exited 1 with the
    failure on stdout only; a CI log of stderr said nothing of why."""
    from raidsim.cli import main

    fixture = Path(__file__).parent / "fixtures" / "reports" / "results_default.json"
    assert main(["report", str(fixture), "--threshold", "spend_eur<1"]) == 1
    err = capsys.readouterr().err
    assert err == ("raidsim report: threshold failed: spend_eur < €1.00: value €85.92 "
                   "(limit < €1.00)\n")
