"""The Prometheus alerting rules shipped in docs/prometheus-alerts.yml.

No Prometheus here to load them, so the checks are what a typo or a rename would break:
the file is valid YAML in Prometheus's rule-group shape, every expression parses as PromQL
(``promql-parser``, the Rust parser's Python binding), every metric it reads is one the
responder exports (under the name a scrape shows: counters with ``_total``, histograms with
``_bucket``), every label value it matches is one the responder sets, and docs/responder.md
says what to do about each alert.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from responder.metrics import Metrics
from responder.provider import Outcome
from responder.store import FAILED, PENDING, SENDING, SENT, UNKNOWN

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "prometheus-alerts.yml"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def exported() -> set[str]:
    """The sample names a scrape of the responder can show (a labelled metric shows none
    until a label value is set: its family's name and type say which it will show)."""
    names = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def label_values() -> dict[str, set[str]]:
    """The values the responder gives the labels the rules match on."""
    app = (ROOT / "responder" / "app.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r'HTTPError\(\d+, "([^"{]+)"', app))
    reasons |= set(re.findall(r'rejected\.labels\("([^"]+)"\)', app))
    outbox = (ROOT / "responder" / "outbox.py").read_text(encoding="utf-8")
    outcomes = {str(outcome) for outcome in Outcome}
    outcomes |= set(re.findall(r'replies\.labels\("([^"]+)"\)', outbox))  # "cancelled"
    return {"status": {PENDING, SENDING, SENT, FAILED, UNKNOWN}, "reason": reasons,
            "outcome": outcomes}


def test_the_rules_have_prometheus_rule_shape() -> None:
    found = rules()
    assert len(found) >= 8
    names = [rule["alert"] for rule in found]
    assert len(set(names)) == len(names)
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"Raidsim[A-Z][A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_every_expression_parses_as_promql() -> None:
    import promql_parser

    for rule in rules():
        promql_parser.parse(rule["expr"])  # raises on a syntax error, naming it
    # the parser is a real one: a broken expression is refused
    with pytest.raises(Exception, match="parenthesis"):
        promql_parser.parse("sum(increase(raidsim_replies_total[15m])")


def test_every_metric_and_label_value_the_rules_use_exists() -> None:
    names, values = exported(), label_values()
    assert "raidsim_raid_mode" in names and "raidsim_webhook_rejected_total" in names
    assert "bad signature" in values["reason"] and "unavailable" in values["reason"]
    for rule in rules():
        used = re.findall(r"\braidsim_[a-z_]+", rule["expr"])
        assert used, rule["alert"]
        for name in used:
            assert name in names, f"{rule['alert']}: no metric {name}"
        for label, value in re.findall(r'(\w+)="([^"]*)"', rule["expr"]):
            assert value in values[label], f"{rule['alert']}: {label}={value!r} never set"


def test_the_operator_docs_say_what_to_do_for_every_alert() -> None:
    docs = (ROOT / "docs" / "responder.md").read_text(encoding="utf-8")
    section = docs.split("## Alerts and what to do", 1)[1].split("\n## ", 1)[0]
    for rule in rules():
        assert f"`{rule['alert']}`" in section, rule["alert"]
