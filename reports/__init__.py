"""Reports and the CI gate on a raidsim results JSON (see docs/ci.md).

The API that ``raidsim simulate``, ``raidsim report`` and the live replay use:

Thresholds (``reports.thresholds``, light: no matplotlib)
    ``parse_threshold(expr, *, source=None, abort_on_fail=False) -> Threshold``
        ``"spend_eur<=600"``, ``"reply_latency_s.p95 < 30"``; raises
        ``ThresholdSyntaxError`` (a ``ValueError``) whose message shows the syntax.
    ``thresholds_from_table(table, *, path=None, text=None) -> list[Threshold]``
        a scenario's ``[thresholds]`` table: ``spend_eur = "<= 600"`` or
        ``spend_eur = { op = "<=", limit = "600", abort_on_fail = true }``.
    ``thresholds_from_results(results) -> list[Threshold]``  re-check recorded ones.
    ``merge(*lists) -> list[Threshold]``  concatenate, dropping duplicates.
    ``evaluate(results, thresholds) -> list[ThresholdResult]``  missing metric fails.
    ``apply(results: dict, thresholds) -> bool``  fills ``results["thresholds"]``
        (``{name, op, limit, value, ok, abort_on_fail, message}``) and ``results["passed"]``.
    ``should_abort(results_so_far, thresholds) -> list[ThresholdResult]``  the
        ``abort_on_fail`` upper bounds already broken (for monotone metrics).

Artefacts
    ``write_report(results, out_dir, *, environ=None) -> list[Path]``  results.json,
        inbound/spend/latency/decisions/senders.png, report.html, summary.md, junit.xml;
        appends summary.md to ``$GITHUB_STEP_SUMMARY`` when set.
    ``gate(results, thresholds, *, report_dir=None, stream=None, environ=None) -> int``
        apply + write_report + console lines; returns the exit code (0 pass, 1 fail).
    ``reports.console.format_summary_failures(results) -> list[str]``  one line per
        failed threshold with its value and limit; ``format_gate(results)`` all lines.
    ``reports.results.load(path)`` / ``dumps(results)``  exact (Decimal) JSON I/O;
        ``load`` raises ``ResultsError`` naming the file and line.

Comparison (``reports.compare``)
    ``compare(base, new) -> Comparison``; ``Comparison.markdown()``,
    ``Comparison.to_json()``, ``Comparison.regressions`` (thresholds BASE met, NEW breaks).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from reports.thresholds import (
    Threshold,
    ThresholdResult,
    ThresholdSyntaxError,
    apply,
    evaluate,
    merge,
    parse_threshold,
    should_abort,
    thresholds_from_results,
    thresholds_from_table,
)

__all__ = [
    "Threshold",
    "ThresholdResult",
    "ThresholdSyntaxError",
    "apply",
    "evaluate",
    "gate",
    "merge",
    "parse_threshold",
    "should_abort",
    "thresholds_from_results",
    "thresholds_from_table",
    "write_report",
]


def write_report(
    results: Mapping[str, Any], out_dir: str | Path, *,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write every artefact into ``out_dir``; see :mod:`reports.writer`."""
    from reports.writer import write_report as _write  # matplotlib only when needed

    return _write(results, out_dir, environ=environ)


def gate(
    results: dict[str, Any], thresholds: Iterable[Threshold], *,
    report_dir: str | Path | None = None, stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None, prog: str = "raidsim",
) -> int:
    """Apply thresholds, write the report if asked, print the verdict; return the exit code.
    A failed threshold is also named on stderr (``prog: threshold failed: ...``) when the
    verdict went elsewhere: a CI log that keeps stderr, or a stdout sent to a file, still
    says why the exit code is 1."""
    from reports.console import format_gate, format_summary_failures, print_lines

    passed = apply(results, thresholds)
    if report_dir is not None:
        write_report(results, report_dir, environ=environ)
    out = stream if stream is not None else sys.stdout
    print_lines(format_gate(results), out)
    if not passed and out is not sys.stderr:
        print_lines([f"{prog}: {line}" for line in format_summary_failures(results)],
                    sys.stderr)
    return 0 if passed else 1
