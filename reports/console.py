"""Console lines for a gate: each failed threshold named with its value and limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.thresholds import format_value, to_decimal


def threshold_entries(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``thresholds`` list of a results object, ignoring malformed entries."""
    entries = results.get("thresholds")
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, Mapping) and isinstance(e.get("name"), str)]


def describe(entry: Mapping[str, Any]) -> str:
    """``spend_eur <= €1.00: value €85.92`` or ``... : missing``; from a results entry."""
    name = str(entry.get("name"))
    limit = to_decimal(entry.get("limit"))
    value = to_decimal(entry.get("value"))
    shown_limit = format_value(name, limit) if limit is not None else repr(entry.get("limit"))
    head = f"{name} {entry.get('op')} {shown_limit}"
    if value is None:
        message = str(entry.get("message") or "")
        reason = "metric is missing from the results"
        if "missing" in message or "not a" in message or "object" in message:
            reason = message.split("FAILED, ", 1)[-1]
        return f"{head}: {reason}"
    return f"{head}: value {format_value(name, value)}"


def format_summary_failures(results: Mapping[str, Any]) -> list[str]:
    """One line per failed threshold, e.g.
    ``threshold failed: spend_eur <= €1.00: value €85.92 (limit €1.00)``."""
    lines = []
    for entry in threshold_entries(results):
        if entry.get("ok") is True:
            continue
        limit = to_decimal(entry.get("limit"))
        line = f"threshold failed: {describe(entry)}"
        if limit is not None and to_decimal(entry.get("value")) is not None:
            line += f" (limit {entry.get('op')} {format_value(str(entry['name']), limit)})"
        lines.append(line)
    return lines


def verdict_line(entry: Mapping[str, Any]) -> str:
    """``PASS  spend_eur <= €1,180.00: value €1,072.96`` (or FAIL): one threshold, as every
    command prints it."""
    return f"{'PASS' if entry.get('ok') is True else 'FAIL'}  {describe(entry)}"


def format_gate(results: Mapping[str, Any]) -> list[str]:
    """Every threshold with PASS/FAIL, then a verdict line; what ``raidsim report`` prints."""
    entries = threshold_entries(results)
    lines = [f"  {verdict_line(e)}" for e in entries]
    failures = [e for e in entries if e.get("ok") is not True]
    if not entries:
        lines.append("thresholds: none declared (nothing gated)")
    elif failures:
        lines.append(f"thresholds: {len(failures)} of {len(entries)} FAILED")
        lines.extend(format_summary_failures(results))
    else:
        lines.append(f"thresholds: all {len(entries)} passed")
    return lines


def print_lines(lines: Sequence[str], stream: Any) -> None:
    for line in lines:
        print(line, file=stream)
