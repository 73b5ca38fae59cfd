"""docs/results.md stays true: every key a results JSON holds is documented there, and the
keys it calls the stable contract are present, for `raidsim simulate` (a tiny trace, run
as the command runs it) and for `raidsim load` (``build_results`` on small fake inputs)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from raidsim.cli import main
from raidsim.commands.load import (
    _bill_delta,
    _metrics_delta,
    _unsettled_check,
    build_results,
    parse_metrics,
)
from reports.results import REQUIRED_KEYS, load
from reports.thresholds import apply, lookup, parse_threshold

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results.md"

# The stable contract, as docs/results.md states it.
REQUIRED = (
    "scenario", "seed", "policy", "messages.total", "messages.legit", "messages.raid",
    "replies.total", "replies.legit", "replies.raid", "replies.segments", "spend_eur",
    "oracle_spend_eur", "naive_spend_eur", "legit_senders", "legit_senders_replied",
    "legit_coverage", "reply_latency_s.p50", "reply_latency_s.p95", "reply_latency_s.p99",
    "budget.cap_eur", "budget.exhausted_at_s", "thresholds", "passed",
)

# Maps whose keys are data (rules, labels, statuses), documented as one key.
FREE_FORM = frozenset({
    "decisions.by_rule", "senders.messages_per_sender", "provider.errors",
    "timeseries.inbound", "timeseries.decisions", "live.http_status",
    "live.responder.decisions", "live.responder.replies", "live.responder.provider_errors",
    "live.admin_budget",
})


def key_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted key path; ``a[].b`` for the key ``b`` of the objects in list ``a``."""
    if isinstance(node, dict) and node and prefix not in FREE_FORM:
        for key, value in node.items():
            yield from key_paths(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        yield prefix
        for item in node:
            yield from key_paths(item, f"{prefix}[]")
    else:
        yield prefix


def _expand(token: str) -> list[str]:
    """``a.{b,c}.d`` -> ``a.b.d``, ``a.c.d`` (any number of brace groups)."""
    match = re.search(r"\{([^{}]*)\}", token)
    if match is None:
        return [token]
    return [path for alternative in match.group(1).split(",")
            for path in _expand(token[:match.start()] + alternative.strip()
                                + token[match.end():])]


def documented() -> set[str]:
    """The key paths docs/results.md names in backticks."""
    text = DOC.read_text(encoding="utf-8")
    paths: set[str] = set()
    for token in re.findall(r"`([^`\n]+)`", text):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\[\]{}, ]*", token):
            paths.update(_expand(token))
    return paths


def undocumented(results: dict[str, Any]) -> list[str]:
    known = documented()
    return sorted({p for p in key_paths(results) if p not in known})


_ABSENT = lookup({}, "absent")  # what lookup returns for a missing path


def missing_required(results: dict[str, Any]) -> list[str]:
    return [key for key in REQUIRED if lookup(results, key) is _ABSENT]


TRACE = [  # t, from, label: two legit senders (one writes twice), raiders, one unlabelled
    (0.0, "+33600000001", "legit"), (30.0, "+33600000002", "legit"),
    (45.0, "+33600000001", "legit"), (60.0, "+33700000001", "raid"),
    (61.0, "+33700000002", "raid"), (62.0, "+33700000003", "raid"),
    (90.0, "+33600000003", None),
]
SCENARIO = """
name = "tiny"
seed = 7
duration = "1h"

[pricing]
eur_per_segment = "0.16"

[policy.budget]
total_eur = "100"

[provider]
segments_per_second = {rate}

[[traffic]]
kind = "organic"
messages = 5

[thresholds]
spend_eur = "<= 100"
"""


def _write_inputs(tmp_path: Path, rate: str = "10.0") -> tuple[Path, Path]:
    trace = tmp_path / "trace.jsonl"
    with trace.open("w", encoding="utf-8") as handle:
        for index, (t, sender, label) in enumerate(TRACE):
            handle.write(json.dumps({"id": f"SM{index:032x}", "t": t, "from": sender,
                                     "to": "+33644649021", "body": f"bonjour {index}",
                                     "label": label}) + "\n")
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(SCENARIO.format(rate=rate), encoding="utf-8")
    return scenario, trace


def _simulate(tmp_path: Path, *extra: str) -> dict[str, Any]:
    scenario, trace = _write_inputs(tmp_path)
    out = tmp_path / "results.json"
    code = main(["simulate", str(scenario), "--trace", str(trace), "--json", str(out),
                 "--quiet", "--no-progress", *extra])
    assert code == 0
    return load(out)


def test_every_simulate_key_is_documented(tmp_path: Path) -> None:
    """A run with replications (and a threshold on one of its dotted keys): each key path
    is in docs/results.md, and the stable contract is all there."""
    gate = "replications.reply_latency_s.p95.high<=100000"
    results = _simulate(tmp_path, "--replications", "2", "--threshold", gate)
    assert "replications" in results and "live" not in results
    assert undocumented(results) == []
    assert missing_required(results) == []
    entry = results["thresholds"][-1]
    assert entry["name"] == gate.split("<")[0] and entry["value"] is not None, entry
    assert results["passed"] is True


def test_a_run_stopped_at_the_horizon_is_documented(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """stopped_at_horizon appears only when a run ran out of time with replies waiting:
    a provider at one segment in 1,000 s, and a horizon brought down to 10 minutes."""
    import sim.model
    from sim.run import job_from_inputs, run_once

    monkeypatch.setattr(sim.model, "MAX_SPAN_S", 600)
    scenario, trace = _write_inputs(tmp_path, rate="0.001")
    job, _ = job_from_inputs(scenario_path=scenario, trace_path=trace, policy_path=None,
                             seed=None)
    results, _ = run_once(job, job.seed)
    apply(results, [])
    assert results["stopped_at_horizon"]["replies_never_sent"] > 0
    assert undocumented(results) == []
    assert missing_required(results) == []


def test_every_load_key_is_documented() -> None:
    """``build_results`` and the ``live`` section of raidsim load, on fake inputs shaped
    as Locust, the fake provider and the responder give them."""
    sent = [
        {"id": "a", "t": 10.0, "from": "+33600000001", "label": "legit", "status": 200,
         "sent_at": 100.0, "latency_s": 0.01, "decision": "reply first_contact"},
        {"id": "b", "t": 11.0, "from": "+33700000001", "label": "raid", "status": 200,
         "sent_at": 101.0, "latency_s": 0.02, "decision": "drop budget_total"},
        {"id": "c", "t": 12.0, "from": "+33600000009", "label": None, "status": 400,
         "sent_at": 102.0, "latency_s": 0.01},
        {"id": "d", "t": 13.0, "from": "+33600000002", "label": "legit", "status": 200,
         "sent_at": 103.0, "latency_s": 0.01, "decision": "defer surge_hold"},
    ]
    billed = [{"to": "+33600000001", "segments": 1, "wall_at": 100.5, "reply_to": "a",
               "price_micros": 160000}]
    now = {"count": 3, "segments": 3, "amount_micros": 480000, "amount_eur": "0.48",
           "eur_per_segment": "0.16",
           "shaping": {"latency_median_s": 0.2, "latency_p95_s": 0.6,
                       "segments_per_second": None, "speed": 60.0}}
    before = {"count": 2, "segments": 2, "amount_micros": 320000}
    bill = _bill_delta(now, before)
    metrics_text = ('raidsim_inbound_messages_total{decision="reply",rule="first_contact"} 3\n'
                    'raidsim_released_messages_total{decision="reply",rule="released"} 1\n'
                    'raidsim_inbound_duplicates_total 1\nraidsim_spend_eur 0.48\n'
                    'raidsim_replies_total{outcome="sent"} 1\n'
                    'raidsim_replies_total{outcome="unknown"} 1\n'
                    'raidsim_provider_errors_total{kind="http_429"} 2\n'
                    'raidsim_held_replies 0\n')
    metrics = _metrics_delta(parse_metrics(metrics_text), {})
    # the live section as raidsim load's _run builds it (its keys are checked below)
    live = {"target": "http://127.0.0.1:8000", "provider": "http://127.0.0.1:8099",
            "speed": 60.0, "users": 2, "ordered": True, "planned": 3, "sent": 3,
            "http_status": {"200": 2, "400": 1},
            "webhook_latency_s": {"p50": 0.01, "p95": 0.02, "p99": 0.02},
            "send_lag_s": {"p50": 0.0, "p95": 0.004, "max": 0.004},
            "bill": bill, "responder": metrics,
            "admin_budget": {"spent_eur": "0.48", "total_eur": "100"}, "aborted": [],
            "unsettled_replies": 2}
    results = build_results(name="x", seed=0, sent=sent, billed=billed, bill=bill,
                            reply_cost_micros=160000, cap_eur=None, extra={"live": live},
                            speed=60.0, responder=metrics, reply_text="Non, c'est non.",
                            eur_per_segment=Decimal("0.16"), raid_periods=[[100.2, None]])
    # what reports.gate does before raidsim load writes the file; with replies still
    # queued after --settle, load adds its implicit check, an entry like any other
    apply(results, [parse_threshold("spend_eur<=1"), _unsettled_check()])
    assert [set(t) for t in results["thresholds"]] == [set(results["thresholds"][0])] * 2
    assert results["thresholds"][1]["name"] == "live.unsettled_replies"
    assert results["thresholds"][1]["value"] == 2 and results["thresholds"][1]["ok"] is False
    assert results["passed"] is False
    assert undocumented(results) == []
    assert missing_required(results) == []
    assert results["budget"]["exhausted_at_s"] == 11.0
    # the keys load writes since it computes them, with data in them
    assert results["decisions"]["by_rule"] == {"budget_total": 1, "first_contact": 1,
                                               "released": 1}
    assert results["senders"]["messages_per_sender"] and results["per_sender_spend_eur"]
    assert set(results["timeseries"]) == {
        "bin_s", "start_s", "inbound", "spend_eur", "naive_spend_eur", "oracle_spend_eur",
        "reply_latency_s", "decisions", "raid_mode"}
    for key in ("replies.unknown_outcome", "replies.rejected", "reply_latency_s.max",
                "reply.text", "reply.segments", "provider.errors",
                "raid_mode.periods", "raid_mode.total_s", "duration_s"):
        assert key in key_paths(results), key
    # ...and none of them is documented as a key only simulate writes
    assert sorted(set(key_paths(results)) & simulate_only()) == []


def simulate_only() -> set[str]:
    """The key paths the section "Keys only `simulate` writes" names in its table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Keys only `simulate` writes", 1)[1].split("\n## ", 1)[0]
    paths: set[str] = set()
    for line in section.splitlines():
        match = re.match(r"\| `([^`]+)`", line)
        if match:
            paths.update(_expand(match.group(1)))
    return paths


def test_the_documented_live_section_is_the_one_load_writes() -> None:
    """The live keys the test above feeds build_results are those raidsim load writes:
    read them from the dict literal in raidsim/commands/load.py."""
    import ast

    source = (ROOT / "raidsim" / "commands" / "load.py").read_text(encoding="utf-8")
    keys: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            names = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if "live" in names:
                live = node.values[names.index("live")]
                assert isinstance(live, ast.Dict)
                keys = {k.value for k in live.keys if isinstance(k, ast.Constant)}
    assert keys == {"target", "provider", "speed", "users", "ordered", "planned", "sent",
                    "http_status", "webhook_latency_s", "send_lag_s", "bill", "responder",
                    "admin_budget", "aborted", "unsettled_replies"}
    known = documented()
    assert sorted(k for k in keys if not any(p.startswith(f"live.{k}") for p in known)) == []


def test_the_documented_contract_is_the_required_one() -> None:
    """The stable contract in the doc names every key REQUIRED lists, and covers the
    top-level keys reports.results checks."""
    text = DOC.read_text(encoding="utf-8")
    contract = text.split("## The stable contract", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for token in re.findall(r"`([^`\n]+)`", contract):
        named.update(_expand(token))
    assert set(REQUIRED) <= named
    assert {key.split(".")[0] for key in REQUIRED} == set(REQUIRED_KEYS)
