"""Compare two results (BASE, NEW) for a pull-request review.

``compare(base, new)`` returns a :class:`Comparison`: exact spend delta ("this change
costs +€37.12 on anti-relous-2017 (+8.1%)"), coverage in percentage points, latency
percentiles, replies and decisions by rule. Thresholds recorded in either file are
re-evaluated on both, so a NEW run written without thresholds is still gated by BASE's;
a threshold BASE met and NEW breaks is a *regression*, and ``raidsim report compare``
exits 1 on any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from reports.summary import _get, md_text, percent_of, percent_text
from reports.thresholds import (
    Threshold,
    ThresholdResult,
    evaluate,
    format_decimal,
    format_eur,
    format_value,
    merge,
    thresholds_from_results,
    to_decimal,
)


@dataclass(frozen=True)
class Delta:
    """One metric in both runs. ``kind`` is ``eur``, ``share``, ``seconds`` or ``count``."""

    label: str
    key: str
    kind: str
    base: Decimal | None
    new: Decimal | None

    @property
    def delta(self) -> Decimal | None:
        if self.base is None or self.new is None:
            return None
        return self.new - self.base

    @property
    def percent(self) -> Decimal | None:
        """Relative change in %, to one decimal; None when BASE is zero or missing."""
        delta = self.delta
        if delta is None or self.base is None:
            return None
        return percent_of(delta, abs(self.base))

    def show(self, value: Decimal | None) -> str:
        if value is None:
            return "n/a"
        if self.kind == "eur":
            return format_eur(value)
        if self.kind == "share":
            return percent_text(value)
        if self.kind == "seconds":
            return f"{value.normalize():,f} s"
        return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,}"

    def show_delta(self) -> str:
        delta = self.delta
        if delta is None:
            return "n/a"
        if delta == 0:
            return "no change"
        if self.kind == "eur":
            text = format_eur(delta, signed=True)
        elif self.kind == "share":
            text = f"{delta * 100:+.2f} pp"
            if text in ("+0.00 pp", "-0.00 pp"):  # a real change smaller than 0.005 pp
                text = f"{(delta * 100).normalize():+f} pp"
        elif self.kind == "seconds":
            text = f"{'+' if delta > 0 else ''}{delta.normalize():,f} s"
        else:
            text = f"{delta:+,.0f}" if delta == delta.to_integral_value() else f"{delta:+,}"
        percent = self.percent
        if percent is not None and self.kind != "share":
            text += f" ({percent:+}%)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "key": self.key, "kind": self.kind, "base": self.base,
                "new": self.new, "delta": self.delta, "percent": self.percent}


@dataclass(frozen=True)
class ThresholdChange:
    threshold: Threshold
    base: ThresholdResult
    new: ThresholdResult

    @property
    def regression(self) -> bool:
        return self.base.ok and not self.new.ok

    @property
    def fixed(self) -> bool:
        return not self.base.ok and self.new.ok


@dataclass(frozen=True)
class Comparison:
    base_name: str
    new_name: str
    scenario: str
    same_run_setup: bool
    notes: tuple[str, ...]
    metrics: tuple[Delta, ...]
    decisions: tuple[Delta, ...]
    thresholds: tuple[ThresholdChange, ...]

    @property
    def spend(self) -> Delta:
        return next(d for d in self.metrics if d.key == "spend_eur")

    @property
    def regressions(self) -> list[ThresholdChange]:
        return [change for change in self.thresholds if change.regression]

    def headline(self) -> str:
        """One sentence for a PR: 'this change costs +€37.12 on anti-relous-2017 (+8.1%)'."""
        spend = self.spend
        delta = spend.delta
        if delta is None:
            return f"spend is missing from {'BASE' if spend.base is None else 'NEW'}; " \
                   "cannot price this change"
        percent = spend.percent
        share = f" ({percent:+}%)" if percent is not None else ""
        if delta > 0:
            verb = f"costs {format_eur(delta, signed=True)}"
        elif delta < 0:
            verb = f"saves {format_eur(-delta)}"
        else:
            verb = "does not change spend"
        return (f"this change {verb} on {self.scenario}{share}: "
                f"{spend.show(spend.base)} → {spend.show(spend.new)}")

    def markdown(self) -> str:
        headline = md_text(self.headline())
        lines = [f"## raidsim compare: {md_text(self.base_name)} → {md_text(self.new_name)}",
                 "", f"**{headline[0].upper()}{headline[1:]}.**", ""]
        for note in self.notes:  # one quote each: adjacent '>' lines join into one line
            lines += [f"> ⚠️ {md_text(note, keep_code=True)}", ""]
        regressions = self.regressions
        if regressions:
            lines += ["**❌ NEW breaks thresholds that BASE met:**", ""]
            lines.extend(f"- `{c.threshold.expression}`: {c.new.message.split(': ', 1)[-1]}"
                         for c in regressions)
            lines.append("")
        lines += ["| metric | base | new | change |", "|---|---:|---:|---:|"]
        lines.extend(f"| {d.label} | {d.show(d.base)} | {d.show(d.new)} | {d.show_delta()} |"
                     for d in self.metrics)
        lines.append("")
        if self.decisions:
            lines += ["### Decisions by rule", "", "| rule | base | new | change |",
                      "|---|---:|---:|---:|"]
            lines.extend(f"| `{d.label}` | {d.show(d.base)} | {d.show(d.new)} | "
                         f"{d.show_delta()} |" for d in self.decisions)
            lines.append("")
        if self.thresholds:
            lines += ["### Thresholds", "", "| threshold | base | new | |", "|---|---|---|---|"]
            for change in self.thresholds:
                status = ("❌ regression" if change.regression else
                          "✅ fixed" if change.fixed else "")
                lines.append(f"| `{change.threshold.expression}` | {_outcome(change.base)} | "
                             f"{_outcome(change.new)} | {status} |")
            lines.append("")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_name,
            "new": self.new_name,
            "scenario": self.scenario,
            "headline": self.headline(),
            "notes": list(self.notes),
            "metrics": [d.to_json() for d in self.metrics],
            "decisions_by_rule": [d.to_json() for d in self.decisions],
            "thresholds": [
                {"threshold": c.threshold.expression, "name": c.threshold.metric,
                 "op": c.threshold.op, "limit": c.threshold.limit,
                 "base": c.base.to_json(), "new": c.new.to_json(),
                 "regression": c.regression, "fixed": c.fixed}
                for c in self.thresholds
            ],
            "regressions": [c.threshold.expression for c in self.regressions],
            "passed": not self.regressions,
        }


def _outcome(result: ThresholdResult) -> str:
    if result.value is None:  # missing, null, or there but not a number ("1068.80")
        return "❌ missing" if "is missing" in result.message else "❌ not a number"
    return f"{'✅' if result.ok else '❌'} {format_value(result.threshold.metric, result.value)}"


def _number(results: Mapping[str, Any], dotted: str) -> Decimal | None:
    node: Any = results
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return to_decimal(node)


METRICS: tuple[tuple[str, str, str], ...] = (
    ("spend", "spend_eur", "eur"),
    ("naive spend (one reply per message)", "naive_spend_eur", "eur"),
    ("oracle spend (one reply per legit sender)", "oracle_spend_eur", "eur"),
    ("legit coverage", "legit_coverage", "share"),
    ("legit senders replied", "legit_senders_replied", "count"),
    ("replies", "replies.total", "count"),
    ("replies to raid", "replies.raid", "count"),
    ("segments", "replies.segments", "count"),
    ("reply latency p50", "reply_latency_s.p50", "seconds"),
    ("reply latency p95", "reply_latency_s.p95", "seconds"),
    ("reply latency p99", "reply_latency_s.p99", "seconds"),
)


def _run_name(results: Mapping[str, Any], fallback: str) -> str:
    policy = results.get("policy")
    return f"policy {policy}" if policy else fallback


def _same_amount(a: Any, b: Any) -> bool:
    """Whether two caps (None: no cap) are the same amount; unreadable ones are not told
    apart (the thresholds report them)."""
    if a is None or b is None:
        return a is None and b is None
    first, second = _amount(a), _amount(b)
    return first is None or second is None or first == second


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, str):  # raidsim load writes the responder's caps as strings
        try:
            amount = Decimal(value)
        except InvalidOperation:
            return None
        return amount if amount.is_finite() else None
    return to_decimal(value)


def _cap(value: Any) -> str:
    amount = _amount(value)
    return "no cap" if value is None else f"€{amount:,.2f}" if amount is not None else "?"


def compare(
    base: Mapping[str, Any], new: Mapping[str, Any], *,
    extra_thresholds: Iterable[Threshold] = (),
    base_name: str | None = None, new_name: str | None = None,
) -> Comparison:
    """Deltas NEW − BASE, and thresholds (from both files plus ``extra_thresholds``)."""
    notes = []
    for key in ("scenario", "seed"):
        if base.get(key) != new.get(key):
            notes.append(f"BASE and NEW differ in {key} ({base.get(key)!r} vs "
                         f"{new.get(key)!r}): the deltas mix a policy change with a "
                         "traffic change")
    if not notes:
        # Same name and seed is not the same traffic: an edited scenario, another trace
        # with the same stem, or a live replay of a window of it.
        for key in ("messages.total", "legit_senders"):
            b, n = _number(base, key), _number(new, key)
            if b is not None and n is not None and b != n:
                notes.append(f"BASE and NEW saw different traffic ({key} {b:,} vs {n:,}) "
                             "under the same scenario name and seed: the deltas mix a "
                             "policy change with a traffic change")
                break
    caps = [_get(r, "budget", "cap_eur") for r in (base, new)]
    if not _same_amount(caps[0], caps[1]):
        notes.append(f"BASE and NEW ran under different budget caps ({_cap(caps[0])} vs "
                     f"{_cap(caps[1])}): `simulate --policy FILE` replaces the scenario's "
                     "[policy] table, its cap included")
    if ("live" in base) != ("live" in new):
        notes.append("one run is a live replay (raidsim load): its latencies are wall "
                     "seconds, the other's simulated seconds")
    metrics = tuple(Delta(label, key, kind, _number(base, key), _number(new, key))
                    for label, key, kind in METRICS)
    rules_base = _by_rule(base)
    rules_new = _by_rule(new)
    rules = sorted(set(rules_base) | set(rules_new),
                   key=lambda r: (-max(rules_base.get(r, 0), rules_new.get(r, 0)), r))
    decisions = tuple(Delta(rule, f"decisions.by_rule.{rule}", "count",
                            rules_base.get(rule, Decimal(0)), rules_new.get(rule, Decimal(0)))
                      for rule in rules)
    # A limit NEW's file sets differently from BASE's (a pull request that moves
    # spend_eur <= 1100 to <= 1200 on purpose) is NEW's to set: BASE's old limit is not
    # held against it, and the change is named, for the reviewer to see.
    base_gates, new_gates = thresholds_from_results(base), thresholds_from_results(new)
    moved = _moved_limits(base_gates, new_gates)
    for (metric, op), (before, after) in moved.items():
        notes.append(f"NEW changes the limit of {metric} {op} from {before} to {after}: "
                     "NEW's is the one checked")
    thresholds = merge([t for t in base_gates if (t.metric, t.op) not in moved], new_gates,
                       extra_thresholds)
    changes = tuple(ThresholdChange(t, b, n) for t, b, n in
                    zip(thresholds, evaluate(base, thresholds), evaluate(new, thresholds),
                        strict=True))
    scenario = str(new.get("scenario") or base.get("scenario") or "this scenario")
    return Comparison(
        base_name=base_name or _run_name(base, "BASE"),
        new_name=new_name or _run_name(new, "NEW"),
        scenario=scenario,
        same_run_setup=not notes,
        notes=tuple(notes),
        metrics=metrics,
        decisions=decisions,
        thresholds=changes,
    )


def _moved_limits(base: Iterable[Threshold], new: Iterable[Threshold]
                  ) -> dict[tuple[str, str], tuple[str, str]]:
    """(metric, op) whose limits differ between two files that both gate it: the limits
    before and after, as text."""
    def limits(gates: Iterable[Threshold]) -> dict[tuple[str, str], set[Decimal]]:
        out: dict[tuple[str, str], set[Decimal]] = {}
        for gate in gates:
            out.setdefault((gate.metric, str(gate.op)), set()).add(gate.limit)
        return out

    def text(values: set[Decimal]) -> str:
        return " and ".join(format_decimal(v) for v in sorted(values))

    before, after = limits(base), limits(new)
    return {key: (text(before[key]), text(after[key])) for key in before
            if key in after and before[key] != after[key]}


def _by_rule(results: Mapping[str, Any]) -> dict[str, Decimal]:
    decisions = results.get("decisions")
    by_rule = decisions.get("by_rule") if isinstance(decisions, Mapping) else None
    if not isinstance(by_rule, Mapping):
        return {}
    out = {}
    for rule, count in by_rule.items():
        value = to_decimal(count)
        if value is not None:
            out[str(rule)] = value
    return out
