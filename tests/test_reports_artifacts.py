"""write_report: every artefact is written, plots hold real drawings, output is
reproducible, results.json keeps money exact, junit.xml and summary.md name failures."""

from __future__ import annotations

import copy
import io
import math
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageStat

from reports import apply, parse_threshold, write_report
from reports import plots as plot_module
from reports.results import ResultsError, dumps, load, loads

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
ARTEFACTS = ["results.json", "inbound.png", "spend.png", "latency.png", "decisions.png",
             "senders.png", "report.html", "summary.md", "junit.xml"]


@pytest.fixture
def results():
    return load(FIXTURES / "results_default.json")


def _pixels(png: bytes) -> tuple[Image.Image, float, float]:
    """(image, share of non-white pixels, share of saturated (coloured) pixels)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    rgb = np.asarray(image, dtype=np.int16)
    inked = float((rgb.min(axis=2) < 235).mean())
    coloured = float((rgb.max(axis=2) - rgb.min(axis=2) > 60).mean())
    return image, inked, coloured


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One report of the default fixture, shared by the read-only plot checks."""
    out = tmp_path_factory.mktemp("rendered")
    write_report(load(FIXTURES / "results_default.json"), out, environ={})
    return out


def test_write_report_writes_every_artefact(tmp_path, results):
    """All nine artefacts exist, in the documented order, and nothing else is written."""
    written = write_report(results, tmp_path / "out", environ={})
    assert [p.name for p in written] == ARTEFACTS
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(ARTEFACTS)
    assert all(p.stat().st_size > 0 for p in written)


@pytest.mark.parametrize("name", [n for n, _c, _r in plot_module.PLOTS])
def test_each_plot_decodes_and_draws_its_data(rendered, name):
    """Each PNG decodes at the documented size; a good share of it is ink, and coloured
    ink (the data series) is present, not just axes on a blank canvas."""
    image, inked, coloured = _pixels((rendered / name).read_bytes())
    assert image.size == (round(plot_module.WIDTH_IN * plot_module.DPI),
                          round(plot_module.HEIGHT_IN * plot_module.DPI))
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 10
    assert inked > 0.03
    assert coloured > 0.005, f"{name} has no coloured data series"


@pytest.mark.parametrize(("name", "caption", "render"), plot_module.PLOTS)
def test_plots_without_their_data_say_so_instead_of_crashing(name, caption, render):
    """With none of the optional keys, every plot still renders: axes, title and a
    'no data' note (ink, but no coloured data series)."""
    minimal = load(FIXTURES / "results_minimal.json")
    _image, inked, coloured = _pixels(render(minimal))
    assert inked > 0.01
    assert coloured < 0.001


def test_plots_survive_malformed_optional_keys():
    """Junk in optional keys (wrong types, nulls, short series) never raises."""
    junk = {
        "timeseries": {"bin_s": 0, "start_s": "1e400",
                       "inbound": {"legit": [1, None, "x"], "raid": "no"},
                       "spend_eur": [None, 1, 2], "naive_spend_eur": {"a": 1},
                       "reply_latency_s": {"p50": [None, None]}, "decisions": {"r": [0, 0]},
                       "raid_mode": [[5, 1], "x", [0, 60]]},
        "senders": {"messages_per_sender": {"raid": {"x": 3, "0": 4, "2": -1, "3": 5}}},
        "budget": {"cap_eur": "600", "exhausted_at_s": 30},
    }
    for _name, _caption, render in plot_module.PLOTS:
        assert render(junk)[:8] == b"\x89PNG\r\n\x1a\n"


def _figures(monkeypatch, render, results):
    """The matplotlib figures a plot function draws, instead of their PNG bytes."""
    drawn = []
    monkeypatch.setattr(plot_module, "_png", lambda fig: drawn.append(fig) or b"")
    render(results)
    return drawn


def test_step_plots_draw_a_single_bin_run_through_the_end_of_the_bin(monkeypatch):
    """A run that fits in one bin still shows its inbound and decision rates: each step
    runs from t = 0 to the end of the bin (it used to be one point, so nothing showed)."""
    one_bin = {"timeseries": {"bin_s": 60, "inbound": {"legit": [2], "raid": [1]},
                              "decisions": {"first_contact": [3]}}}
    (fig,) = _figures(monkeypatch, plot_module.plot_inbound, one_bin)
    lines = {line.get_label().split(" ")[0]: line for line in fig.axes[0].lines}
    assert sorted(lines) == ["legit", "raid"]
    for name, rate in (("legit", 2.0), ("raid", 1.0)):
        assert list(lines[name].get_xdata()) == [0.0, 1.0]  # minutes, start to end
        assert list(lines[name].get_ydata()) == [rate, rate]
    (fig,) = _figures(monkeypatch, plot_module.plot_decisions, one_bin)
    (area,) = fig.axes[0].collections
    extent = area.get_paths()[0].get_extents()
    assert (extent.x0, extent.x1, extent.y0, extent.y1) == (0.0, 1.0, 0.0, 3.0)


def test_step_plots_show_the_last_bin_at_its_true_rate(monkeypatch):
    """401 one-minute bins of one message each are re-binned by 2: the last chunk holds
    one bin, so its rate is 1/min, not 0.5/min, and the line reaches the end of the run."""
    flat = {"timeseries": {"bin_s": 60, "inbound": {"legit": [1] * 401},
                           "decisions": {"first_contact": [1] * 401}}}
    (fig,) = _figures(monkeypatch, plot_module.plot_inbound, flat)
    (line,) = fig.axes[0].lines
    assert set(line.get_ydata()) == {1.0}
    assert line.get_xdata()[-1] == pytest.approx(401 / 60)  # hours
    assert fig.axes[0].get_ylabel() == "messages per minute (mean over 2-min bins)"
    (fig,) = _figures(monkeypatch, plot_module.plot_decisions, flat)
    extent = fig.axes[0].collections[0].get_paths()[0].get_extents()
    assert (extent.y0, extent.y1) == (0.0, 1.0)
    assert extent.x1 == pytest.approx(401 / 60)


def test_latency_plot_of_a_run_without_replies_says_no_replies(monkeypatch):
    """Latency series with every bin empty (nobody got a reply) are not 'missing'."""
    silent = {"timeseries": {"bin_s": 60, "reply_latency_s": {
        "p50": [None, None], "p95": [None, None], "p99": [None, None]}}}
    (fig,) = _figures(monkeypatch, plot_module.plot_latency, silent)
    (note,) = fig.axes[0].texts
    assert note.get_text() == "no replies\n(results have no reply to a legit sender)"
    (fig,) = _figures(monkeypatch, plot_module.plot_latency, {"timeseries": {}})
    assert "results have no timeseries.reply_latency_s" in fig.axes[0].texts[0].get_text()


def test_latency_plot_draws_replies_that_left_at_once(monkeypatch):
    """On the log scale, bins whose replies left at once (0 s: most bins of the 2017 run)
    were dropped, so the plot looked like a few scattered replies: they are drawn at a
    floor the axis label names."""
    mixed = {"timeseries": {"bin_s": 60, "reply_latency_s": {
        "p50": [0.0, 0.0, 1200.0, None], "p95": [0.0, 5.0, 3600.0, None]}}}
    (fig,) = _figures(monkeypatch, plot_module.plot_latency, mixed)
    p50 = next(line for line in fig.axes[0].lines if line.get_label().startswith("p50"))
    ys = list(p50.get_ydata())
    assert ys[:3] == [0.001, 0.001, 1200.0] and math.isnan(ys[3])
    assert fig.axes[0].get_yscale() == "log"
    assert "0 s drawn at 0.001 s" in fig.axes[0].get_ylabel()


def test_report_output_is_byte_for_byte_reproducible(tmp_path, results):
    """Two reports of the same results are identical, file by file (no timestamps)."""
    first = write_report(copy.deepcopy(results), tmp_path / "a", environ={})
    second = write_report(copy.deepcopy(results), tmp_path / "b", environ={})
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_results_json_keeps_money_exact(tmp_path, results):
    """Money written as 86.40 stays 86.40 (a Decimal), through load, report and reload."""
    write_report(results, tmp_path, environ={})
    text = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert '"oracle_spend_eur": 86.40' in text
    again = loads(text)
    assert again["oracle_spend_eur"] == Decimal("86.40")
    assert again == results
    assert dumps(again) == text


def test_html_is_self_contained(tmp_path, results):
    """report.html embeds every plot as a data URI and references no external asset."""
    write_report(results, tmp_path, environ={})
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 5
    for marker in ("http://", "https://", "<script", "src=\"/", "url("):
        assert marker not in page


def test_junit_has_one_testcase_per_threshold_and_failures_carry_value_and_limit(
    tmp_path, results
):
    """junit.xml lists each threshold; the failing one names its value and limit."""
    apply(results, [parse_threshold("spend_eur<=1"), parse_threshold("legit_coverage>=0.99"),
                    parse_threshold("no_such_metric<5")])
    write_report(results, tmp_path, environ={})
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["spend_eur <= €1.00", "legit_coverage >= 0.99", "no_such_metric < 5"]
    failure = cases["spend_eur <= €1.00"].find("failure")
    assert failure is not None
    assert "value €85.92" in failure.get("message", "")
    assert "limit <= €1.00" in failure.get("message", "")
    assert cases["legit_coverage >= 0.99"].find("failure") is None
    missing = cases["no_such_metric < 5"].find("failure")
    assert missing is not None and "missing" in missing.get("message", "")


def test_summary_names_failures_and_is_appended_to_the_github_step_summary(tmp_path, results):
    """summary.md leads with each failed threshold (value and limit); with
    GITHUB_STEP_SUMMARY set it is appended there, after what was already in it."""
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("earlier step\n", encoding="utf-8")
    apply(results, [parse_threshold("spend_eur<=1")])
    write_report(results, tmp_path / "out", environ={"GITHUB_STEP_SUMMARY": str(step_summary)})
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## ❌ raidsim: anti-relous-2017-window")
    assert "- ❌ `spend_eur <= €1.00`: value €85.92" in summary
    assert "| Spend | €85.92 |" in summary
    assert "| `raid_template` | 3,751 | 61.2% |" in summary
    assert step_summary.read_text(encoding="utf-8") == "earlier step\n" + summary + "\n"


def test_summary_counts_add_up_for_a_trace_with_unlabelled_messages():
    """A recorded trace without labels: the summary shows the unlabelled messages and
    replies, so '3 (legit 0, raid 0)' cannot read as a contradiction; a labelled run,
    with zero unlabelled, is shown as before."""
    from reports.summary import fact_rows

    unlabelled = {"messages": {"total": 5, "legit": 1, "raid": 0, "unlabelled": 4},
                  "replies": {"total": 3, "legit": 1, "raid": 0, "unlabelled": 2,
                              "segments": 3}}
    rows = dict(fact_rows(unlabelled))
    assert rows["Inbound messages"] == "5 (legit 1, raid 0, unlabelled 4)"
    assert rows["Replies sent"] == "3 (legit 1, raid 0, unlabelled 2), 3 segments"
    labelled = {"messages": {"total": 5, "legit": 1, "raid": 4, "unlabelled": 0}}
    assert dict(fact_rows(labelled))["Inbound messages"] == "5 (legit 1, raid 4)"



def test_summary_shows_a_live_runs_millisecond_latencies():
    """A live replay's replies leave in milliseconds: the summary read 0.0 s / 0.0 s."""
    from reports.summary import fact_rows

    live = {"reply_latency_s": {"p50": 0.0065, "p95": 0.039, "p99": 1234.56}}
    assert dict(fact_rows(live))["Reply latency p50 / p95 / p99"] == (
        "0.0065 s / 0.039 s / 1,234.6 s")
    still = {"reply_latency_s": {"p50": 0.0, "p95": None, "p99": 3.0}}
    assert dict(fact_rows(still))["Reply latency p50 / p95 / p99"] == "0.0 s / n/a / 3.0 s"


@pytest.mark.parametrize("series, text", [
    ([0, 3, 12], "[0, 3, 12]"),
    ([0.0, 1.5, None, 2e-07], "[0.0, 1.5, null, 2e-07]"),
    ([True, 1, None, 2.5, Decimal("0.16")], "[true, 1, null, 2.5, 0.16]"),
    ([Decimal("4800.00"), Decimal("-0")], "[4800.00, 0]"),
])
def test_number_arrays_are_written_on_one_line_whatever_their_types(series, text):
    assert dumps({"s": series}) == '{\n  "s": ' + text + "\n}\n"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_number_in_a_series_is_refused_not_written(bad):
    with pytest.raises(ValueError, match="JSON"):
        dumps({"s": [1.0, None, bad]})
    with pytest.raises(ValueError, match="JSON"):
        dumps({"s": [1, Decimal("2"), bad]})


def test_a_results_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b'{\n  "scenario": "caf\xe9",\n  "seed": 1\n}\n')
    with pytest.raises(ResultsError, match=r"r\.json:2:19: not UTF-8 text \(byte 0xe9"):
        load(path)


@pytest.mark.parametrize("share, text", [
    (0.999661, "99.97%"), (0.99996, "99.996%"), (1.0, "100.00%"), (0.0, "0.00%"),
    (0.00001, "0.001%"), (Decimal("0.5"), "50.00%"),
])
def test_a_share_is_never_shown_as_a_round_100_or_0_it_did_not_reach(share, text):
    from reports.summary import percent_text

    assert percent_text(share) == text


def test_replications_are_reported_with_their_intervals(results):
    """`simulate --replications N`: the report says the headline is one seed's and shows
    the means and 95 % intervals over all N."""
    from reports.summary import fact_rows

    reps = dict(results, seed=99, replications={
        "n": 3, "seeds": [99, 100, 101],
        "spend_eur": {"mean": 1344.0, "low": 1338.925135, "high": 1349.074865},
        "legit_coverage": {"mean": 0.99996, "low": 0.9999, "high": 1.0},
        "reply_latency_s.p95": {"mean": None, "low": None, "high": None},
        "messages.raid": {"mean": 5000.0, "low": 4990.5, "high": 5009.5},
    })
    rows = dict(fact_rows(reps))
    assert rows["Replications (3 seeds)"].startswith("the figures above are seed 99's")
    assert rows["Replications: spend"] == "€1,344.00 [€1,338.93, €1,349.07]"
    assert rows["Replications: legit coverage"] == "99.996% [99.99%, 100.00%]"
    assert rows["Replications: raid messages"] == "5,000.0 [4,990.5, 5,009.5]"
    assert "Replications: reply latency p95" not in rows  # no run replied to anyone
    assert not any(k.startswith("Replications") for k, _ in fact_rows(results))


def test_percentages_never_round_to_a_round_0_or_100_they_did_not_reach() -> None:
    """compare showed a p99 from 17,011 s to 1 s as "(-100.0%)" and a €0.16 rise on
    €1,072.96 as "(+0.0%)"; summary.md gave a rule with 1 decision of 29,903 "0.0%"."""
    from decimal import Decimal

    from reports.summary import decision_rows, percent_of

    assert percent_of(Decimal("-17010.199"), Decimal("17011.248")) == Decimal("-99.99")
    assert percent_of(Decimal("0.16"), Decimal("1072.96")) == Decimal("0.01")
    assert percent_of(Decimal(1), Decimal(29903)) == Decimal("0.003")
    assert percent_of(Decimal(3), Decimal(3)) == Decimal("100.0")  # reached: as it is
    assert percent_of(Decimal(0), Decimal(3)) == Decimal("0.0")
    assert percent_of(Decimal(1), Decimal(4)) == Decimal("25.0")
    rows = decision_rows({"decisions": {"by_rule": {"flagged_sender": 29902,
                                                    "budget_total": 1}}})
    assert rows == [("flagged_sender", "29,902", "99.997%"), ("budget_total", "1", "0.003%")]


def test_summary_markdown_escapes_what_a_user_wrote() -> None:
    """A scenario named ``R&amp;D `tick` | x <b>`` showed as "R&D", a code span, a
    broken table and a tag: what a user wrote is shown as written."""
    from reports.summary import md_text

    assert md_text("R&amp;D `tick` | x <b>") == "R&amp;amp;D \\`tick\\` \\| x &lt;b>"
    assert md_text("spend_eur <= €1,180.00") == "spend_eur <= €1,180.00"
    # raidsim's own notes quote commands in backticks: those stay code
    assert md_text("`simulate --policy FILE` & more", keep_code=True) == (
        "`simulate --policy FILE` &amp; more")


def test_plots_ignore_a_matplotlibrc_in_the_working_directory(tmp_path, rendered):
    """matplotlib reads ./matplotlibrc (and $MATPLOTLIBRC, the user's config) at import:
    a report made from a folder holding one drew thicker lines in larger type, so the
    same results gave other bytes depending on where the command ran."""
    import os
    import subprocess
    import sys

    (tmp_path / "matplotlibrc").write_text("font.size: 14\nlines.linewidth: 3\n"
                                           "axes.facecolor: black\n", encoding="utf-8")
    out = tmp_path / "out"
    code = ("import sys; from reports import write_report; from reports.results import load; "
            "write_report(load(sys.argv[1]), sys.argv[2], environ={})")
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code, str(FIXTURES / "results_default.json"),
                    str(out)], cwd=tmp_path, check=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(root)})
    for name in ["inbound.png", "spend.png", "latency.png", "decisions.png", "senders.png",
                 "report.html"]:
        assert (out / name).read_bytes() == (rendered / name).read_bytes(), name
