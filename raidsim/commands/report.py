"""``raidsim report``: artefacts and the CI gate from saved results; ``report compare``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

USAGE = (
    "raidsim report RESULTS.json [-o DIR] [--threshold EXPR]...\n"
    "       raidsim report compare BASE.json NEW.json [-o DIR] [--threshold EXPR]..."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report",
        help="write plots, HTML, JUnit and the CI gate from a results JSON; compare two runs",
        usage=USAGE,
        description=(
            "From a results JSON (raidsim simulate --json, or the live replay), re-check its "
            "thresholds plus any --threshold, print the verdict, and with -o write "
            "results.json, PNG plots, a self-contained report.html, summary.md (also appended "
            "to $GITHUB_STEP_SUMMARY) and junit.xml. 'report compare BASE NEW' prints the "
            "deltas (spend to the cent, coverage, latency, decisions by rule) and, with -o, "
            "writes compare.md and compare.json."
        ),
        epilog=(
            "Thresholds: METRIC OP NUMBER, e.g. 'spend_eur<=600', 'reply_latency_s.p95<30', "
            "'legit_coverage>=0.99'; OP is <=, <, >=, > or ==. A missing metric fails. "
            "Exit codes: 0 all pass, 1 a threshold fails (compare: NEW breaks a threshold "
            "BASE met), 2 usage or input error, 3 internal error (a bug; its traceback is "
            "printed)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="RESULTS.json",
                        help="a results file, or: compare BASE.json NEW.json")
    parser.add_argument("-o", "--out", metavar="DIR", type=Path,
                        help="write the report (or compare.md/compare.json) into DIR")
    parser.add_argument("--threshold", metavar="EXPR", action="append", default=[],
                        help="an extra threshold, e.g. 'spend_eur<=600' (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raidsim.cli import UsageError, check_output_dir
    from reports.thresholds import ThresholdSyntaxError, parse_threshold

    check_output_dir(args.out, "-o")  # a folder: an existing file there is refused at once

    try:
        extra = [parse_threshold(expr, source="--threshold") for expr in args.threshold]
    except ThresholdSyntaxError as exc:
        raise UsageError(str(exc)) from exc
    inputs: list[str] = args.inputs
    if inputs[0] == "compare":
        if len(inputs) != 3:
            raise UsageError(f"compare takes BASE.json and NEW.json\nusage: {USAGE}")
        return _compare(_load(inputs[1]), _load(inputs[2]), extra, args.out)
    if len(inputs) != 1:
        raise UsageError(f"expected one results file, got {len(inputs)}\nusage: {USAGE}")
    return _report(_load(inputs[0]), inputs[0], extra, args.out)


def _load(path: str) -> dict[str, Any]:
    from raidsim.cli import UsageError
    from reports.results import ResultsError, load, missing_required
    from reports.thresholds import ThresholdSyntaxError, thresholds_from_results

    try:
        results = load(path)
    except ResultsError as exc:
        raise UsageError(str(exc)) from exc
    try:  # the recorded thresholds are re-checked: a damaged one must not vanish
        thresholds_from_results(results)
    except ThresholdSyntaxError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    # A file without the contract's keys (docs/results.md) is not results: gating it would pass
    # on nothing. The gate itself adds the thresholds and the verdict.
    absent = [k for k in missing_required(results) if k not in ("thresholds", "passed")]
    if absent and {"axes", "params", "points"} & set(results):
        raise UsageError(f"{path} is a `raidsim sweep --json` file, not a results file "
                         "(hint: sweep's table is its report; for one point's full report, "
                         "run `raidsim simulate ... --policy FILE --json FILE` with that "
                         "point's settings and report that)")
    if absent:
        raise UsageError(f"{path} is not a raidsim results file: it lacks {', '.join(absent)} "
                         "(hint: write one with `raidsim simulate ... --json FILE` or "
                         "`raidsim load ... --json FILE`)")
    return results


def _report(results: dict[str, Any], path: str, extra: list[Any], out: Path | None) -> int:
    from reports import gate
    from reports.thresholds import merge, thresholds_from_results

    thresholds = merge(thresholds_from_results(results), extra)
    try:
        code = gate(results, thresholds, report_dir=out, prog="raidsim report")
    except OSError as exc:
        from raidsim.cli import UsageError

        raise UsageError(f"cannot write the report to {out}: {exc.strerror or exc} (hint: "
                         "give -o a folder you can write to)") from exc
    if out is not None:
        print(f"report: {out / 'report.html'}")
    return code


def _compare(base: dict[str, Any], new: dict[str, Any], extra: list[Any],
             out: Path | None) -> int:
    from reports.compare import compare
    from reports.results import dumps

    if base.get("scenario") != new.get("scenario"):
        # another scenario's thresholds applied to this one's results, a "this change
        # costs" that is no change's: the gate would mean nothing either way
        from raidsim.cli import UsageError

        raise UsageError(f"BASE ran scenario {base.get('scenario')!r} and NEW "
                         f"{new.get('scenario')!r}: their difference is not a change's "
                         "(hint: compare two runs of one scenario, or trace, with its name "
                         "unchanged)")
    comparison = compare(base, new, extra_thresholds=extra)
    text = comparison.markdown()
    # the files first: a reader that closes the pipe early (| head) must not cost them
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "compare.md").write_text(text, encoding="utf-8")
            (out / "compare.json").write_text(dumps(comparison.to_json()), encoding="utf-8")
        except OSError as exc:
            from raidsim.cli import UsageError

            raise UsageError(f"cannot write the comparison to {out}: {exc.strerror or exc} "
                             "(hint: give -o a folder you can write to)") from exc
    print(text)
    for change in comparison.regressions:
        print(f"threshold regression: {change.threshold.expression}: BASE "
              f"{change.base.message.split(': ', 1)[-1]}; NEW "
              f"{change.new.message.split(': ', 1)[-1]}", file=sys.stderr)
    return 1 if comparison.regressions else 0
