"""The Markdown summary (``summary.md``, GitHub step summary) and the facts it shares
with the HTML report."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from reports.console import describe, threshold_entries
from reports.thresholds import format_eur, to_decimal


def _get(results: Mapping[str, Any], *path: str) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _eur(value: Any) -> str:
    amount = to_decimal(value)
    return format_eur(amount) if amount is not None else "n/a"


def _count(value: Any) -> str:
    amount = to_decimal(value)
    if amount is None:
        return "n/a"
    return f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,}"


def _percent(value: Any, places: int = 2) -> str:
    amount = to_decimal(value)
    if amount is None:
        return "n/a"
    return percent_text(amount, places)


def percent_text(share: Decimal | float, places: int = 2) -> str:
    """A share as a percentage with ``places`` decimals, never rounded up to a round 100 %
    it did not reach (0.99996 is "99.996%", not "100.00%"), nor down to 0 % from above
    (up to 8 decimals)."""
    amount = Decimal(str(share)) * 100
    text = f"{amount:.{places}f}"
    while (0 < amount < 100 and Decimal(text) in (0, 100)) and places < 8:
        places += 1
        text = f"{amount:.{places}f}"
    return text + "%"


def _seconds(value: Any) -> str:
    amount = to_decimal(value)
    if amount is None:
        return "n/a"
    if 0 < abs(amount) < 1:  # a live run's replies leave in milliseconds: not "0.0 s"
        return f"{float(amount):.2g} s"
    return f"{amount:,.1f} s"  # as `simulate` prints it


def title(results: Mapping[str, Any]) -> str:
    scenario = results.get("scenario") or "unnamed scenario"
    details = [f"policy {results['policy']}"] if results.get("policy") else []
    if results.get("seed") is not None:
        details.append(f"seed {results['seed']}")
    return f"{scenario} ({', '.join(details)})" if details else str(scenario)


def verdict(results: Mapping[str, Any]) -> tuple[bool, str]:
    """``(passed, text)``; passed only when every recorded threshold is ok."""
    entries = threshold_entries(results)
    failures = [e for e in entries if e.get("ok") is not True]
    if failures:
        return False, f"{len(failures)} of {len(entries)} thresholds failed"
    if results.get("passed") is False:
        return False, "failed"
    if not entries:
        return True, "no thresholds declared"
    return True, f"all {len(entries)} thresholds passed"


def savings_text(results: Mapping[str, Any]) -> str:
    spend = to_decimal(results.get("spend_eur"))
    naive = to_decimal(results.get("naive_spend_eur"))
    if spend is None or naive is None:
        return ""
    saved = naive - spend
    share = percent_of(saved, naive) if naive > 0 else None
    if share is not None:
        return f"this policy saves {format_eur(saved)} ({share}%)"
    return f"this policy saves {format_eur(saved)}"


def percent_of(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percentage of ``whole``, to one decimal, or to as many more (up to 8)
    as keep it off a round 0 % or ±100 % it did not reach (1 of 29,903 is 0.003 %, a p99
    from 17,011 s to 1 s is -99.994 %); None when ``whole`` is 0 or so near it (a damaged
    file's 1e-300) that the percentage has more digits than a Decimal holds."""
    if whole == 0:
        return None
    try:
        exact = part / whole * 100
        places = 1
        shown = exact.quantize(Decimal("0.1"))
        while places < 8 and exact != shown and abs(shown) in (0, 100):
            places += 1
            shown = exact.quantize(Decimal(1).scaleb(-places))
        return shown
    except InvalidOperation:
        return None


def _by_class(counts: Mapping[str, Any]) -> str:
    """``legit 7,999, raid 21,904``, plus ``unlabelled N`` when a trace had unlabelled
    messages, so the parts add up to the total."""
    shown = [k for k in ("legit", "raid") if k in counts]
    unlabelled = to_decimal(counts.get("unlabelled"))
    if unlabelled:
        shown.append("unlabelled")
    return ", ".join(f"{k} {_count(counts[k])}" for k in shown)


def fact_rows(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Headline facts as (label, value) rows, in reading order."""
    rows = [("Spend", _eur(results.get("spend_eur")))]
    naive = _eur(results.get("naive_spend_eur"))
    saved = savings_text(results)
    rows.append(("Naive spend (one reply per message)", f"{naive}; {saved}" if saved else naive))
    oracle = _eur(results.get("oracle_spend_eur"))
    rows.append(("Oracle spend (one reply per legit sender)", oracle))
    cap = _get(results, "budget", "cap_eur")
    exhausted = to_decimal(_get(results, "budget", "exhausted_at_s"))
    if cap is None:
        rows.append(("Budget cap", "none"))
    else:
        state = (f"exhausted at t = {exhausted:,f} s" if exhausted is not None
                 else "not exhausted")
        rows.append(("Budget cap", f"{_eur(cap)} ({state})"))
    coverage = _percent(results.get("legit_coverage"))
    replied, senders = results.get("legit_senders_replied"), results.get("legit_senders")
    if replied is not None and senders is not None:
        coverage += f" ({_count(replied)} of {_count(senders)} legit senders got a reply)"
    rows.append(("Legit coverage", coverage))
    messages = results.get("messages")
    if isinstance(messages, Mapping):
        parts = _by_class(messages)
        rows.append(("Inbound messages",
                     f"{_count(messages.get('total'))}" + (f" ({parts})" if parts else "")))
    replies = results.get("replies")
    if isinstance(replies, Mapping):
        parts = _by_class(replies)
        text = f"{_count(replies.get('total'))}" + (f" ({parts})" if parts else "")
        if "segments" in replies:
            text += f", {_count(replies['segments'])} segments"
        rows.append(("Replies sent", text))
    latency = results.get("reply_latency_s")
    if isinstance(latency, Mapping):
        rows.append(("Reply latency p50 / p95 / p99",
                     " / ".join(_seconds(latency.get(p)) for p in ("p50", "p95", "p99"))))
    rows += _replication_rows(results.get("replications"), results.get("seed"))
    return rows


def _replication_rows(reps: Any, seed: Any) -> list[tuple[str, str]]:
    """``simulate --replications N``: the figures above are the first seed's; these are
    the means and 95 % intervals over all N."""
    if not isinstance(reps, Mapping) or not reps.get("n"):
        return []
    seeds = reps.get("seeds")
    if not isinstance(seeds, list):  # a damaged file: a number here crashed the report
        seeds = []
    first = f"the figures above are seed {seed}'s" if seed is not None else "the first run's"
    rows = [(f"Replications ({reps['n']} seeds)",
             f"{first}; below, the mean [95 % interval] over "
             + (f"seeds {seeds[0]}-{seeds[-1]}" if seeds else "every run"))]
    def cents(value: Any) -> str:
        amount = to_decimal(value)
        return "n/a" if amount is None else _eur(amount.quantize(Decimal("0.01")))

    def tenths(unit: str) -> Any:
        def show(value: Any) -> str:
            amount = to_decimal(value)
            return "n/a" if amount is None else f"{amount:,.1f}{unit}"
        return show

    shown = (("spend_eur", "spend", cents), ("legit_coverage", "legit coverage", _percent),
             ("reply_latency_s.p95", "reply latency p95", tenths(" s")),
             ("messages.raid", "raid messages", tenths("")))
    for key, label, show in shown:
        ci = reps.get(key)
        if isinstance(ci, Mapping) and ci.get("mean") is not None:
            interval = f"[{show(ci.get('low'))}, {show(ci.get('high'))}]"
            rows.append((f"Replications: {label}", f"{show(ci['mean'])} {interval}"))
    return rows


def decision_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(rule, count, share) sorted by count, largest first."""
    by_rule = _get(results, "decisions", "by_rule")
    if not isinstance(by_rule, Mapping):
        return []
    counts = {str(rule): to_decimal(n) for rule, n in by_rule.items()}
    valid = {rule: n for rule, n in counts.items() if n is not None}
    total = sum(valid.values(), Decimal(0))
    rows = []
    for rule in sorted(valid, key=lambda r: (-valid[r], r)):
        percent = percent_of(valid[rule], total) if total else None
        share = "n/a" if percent is None else f"{percent}%"
        rows.append((rule, _count(valid[rule]), share))
    return rows


def threshold_rows(results: Mapping[str, Any]) -> list[tuple[bool, str, str]]:
    """(ok, expression, outcome) with failures first, then in declaration order."""
    rows = []
    for entry in threshold_entries(results):
        ok = entry.get("ok") is True
        text = describe(entry)
        expression, _, outcome = text.partition(": ")
        rows.append((ok, expression, outcome))
    return sorted(rows, key=lambda row: row[0])


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def md_text(text: str, *, keep_code: bool = False) -> str:
    """``text`` (a scenario name, a file name: anything a user wrote) as Markdown prose or
    a table cell: on one line, ``|`` and backticks escaped, ``&`` as ``&amp;`` (else
    "R&amp;D" would show as "R&D"), and no ``<`` that could open an HTML tag (GitHub
    sanitises a step summary; other renderers may not). ``<=`` stays as it is. With
    ``keep_code``, backticks stay: raidsim's own notes quote commands in them."""
    text = text.replace("&", "&amp;")
    if not keep_code:
        text = text.replace("`", "\\`")
    return _TAG_START.sub("&lt;", text.replace("|", "\\|").replace("\n", " "))


def markdown(results: Mapping[str, Any]) -> str:
    """The whole summary as GitHub-flavoured Markdown, ending with a newline."""
    passed, verdict_text = verdict(results)
    icon = "✅" if passed else "❌"
    lines = [f"## {icon} raidsim: {md_text(title(results))}: {verdict_text}", ""]
    failures = [row for row in threshold_rows(results) if not row[0]]
    if failures:
        lines.append("**Failed thresholds:**")
        lines.append("")
        lines.extend(f"- ❌ `{expr}`: {md_text(outcome)}" for _, expr, outcome in failures)
        lines.append("")
    lines += ["| | |", "|---|---|"]
    lines.extend(f"| {md_text(label)} | {md_text(value)} |" for label, value in fact_rows(results))
    lines.append("")
    thresholds = threshold_rows(results)
    if thresholds:
        lines += ["### Thresholds", "", "| | threshold | outcome |", "|---|---|---|"]
        lines.extend(f"| {'✅' if ok else '❌'} | `{expr}` | {md_text(outcome)} |"
                     for ok, expr, outcome in thresholds)
        lines.append("")
    decisions = decision_rows(results)
    if decisions:
        lines += ["### Decisions by rule", "", "| rule | decisions | share |", "|---|---:|---:|"]
        lines.extend(f"| `{md_text(rule)}` | {count} | {share} |"
                     for rule, count, share in decisions)
        lines.append("")
    return "\n".join(lines)
