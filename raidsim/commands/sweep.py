"""``raidsim sweep``: explore policy settings and report the cost/coverage Pareto front."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from raidsim.cli import (
    EXIT_OK,
    EXIT_USAGE,
    MAX_SEED,
    check_output_file,
    job_count,
    seed_value,
    write_output,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sweep",
        help="explore policy settings over a scenario; print the cost/coverage Pareto front",
        description=(
            "Run a scenario (or a trace) once per combination of the given policy settings "
            "and print spend and legit coverage for each, marking the Pareto front: the "
            "settings that no other setting beats on both cost and coverage."
        ),
        epilog=(
            "example:\n"
            "  raidsim sweep scenarios/anti-relous-2017.toml \\\n"
            "      --param templates.hot_senders=4,6,10 --param surge.factor=3,4,6 "
            "--jobs 0 --json sweep.json\n\n"
            "Keys are the policy file's, dotted (see docs/policy.md); values are comma "
            "separated.\nexit codes: 0 done, 2 usage or input error, 3 internal error (a bug; "
            "its traceback is printed)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", nargs="?", type=Path, metavar="SCENARIO.toml",
                        help="scenario file (traffic, policy, provider, faults); "
                        "its [policy] is the starting point of every setting")
    parser.add_argument("--trace", type=Path, metavar="FILE.jsonl",
                        help="replay this trace instead of the scenario's traffic")
    parser.add_argument("--policy", type=Path, metavar="FILE.toml",
                        help="start from this policy file instead of the scenario's")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2",
                        help="a setting and the values to try (required; repeatable: the "
                        "grid is their product); a value with a comma goes in double "
                        "quotes: --param 'reply_text=\"Non, merci\",\"Non.\"'")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="seeds per point; spend and coverage are averaged (default 1)")
    parser.add_argument("--seed", type=seed_value, metavar="N",
                        help="first seed, 0 or more (default: the scenario's)")
    parser.add_argument("--jobs", "-j", type=job_count, default=1, metavar="N",
                        help="run the simulations in N processes (0: one per CPU); the "
                        "results are the same as with one (default 1)")
    parser.add_argument("--no-progress", action="store_true",
                        help="never show the progress bar (it shows only on a terminal)")
    parser.add_argument("--max-runs", type=int, default=200, metavar="N",
                        help="refuse grids needing more simulations than this (default 200)")
    parser.add_argument("--json", type=Path, dest="json_out", metavar="OUT",
                        help="write every point as JSON ('-' for stdout; the table then "
                        "goes to stderr)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from responder.policy.errors import ConfigError
    from sim.run import Inputs, dropped_caps_warning, eur_text, job_from_inputs
    from sim.sweep import parse_axis, sweep

    def usage(message: str) -> int:
        print(f"raidsim sweep: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    if args.scenario is None and args.trace is None:
        return usage("give a SCENARIO.toml, --trace FILE.jsonl, or both")
    if not args.param:
        return usage("give at least one --param KEY=V1,V2 (e.g. surge.factor=3,4,6)")
    if args.seeds < 1:
        return usage("--seeds must be at least 1")
    try:
        axes = [parse_axis(text) for text in args.param]
    except ValueError as exc:
        return usage(str(exc))
    seen: set[str] = set()
    for axis in axes:
        if axis.key in seen:
            return usage(f"--param {axis.key} is given twice; list all its values in one "
                         f"--param (e.g. {axis.key}=3,4,6)")
        seen.add(axis.key)
    check_output_file(args.json_out, "--json", example="sweep.json",
                      inputs=(args.scenario, args.trace, args.policy))
    for axis in axes:
        if axis.key in ("eur_per_segment", "reply_text") and len(set(axis.values)) > 1:
            # allowed (what would the raid cost at another price?), but then a point
            # spends less because it is cheaper per reply, not because it defends better
            print(f"raidsim sweep: note: --param {axis.key} changes the price of a reply "
                  "from point to point; spend and the Pareto front compare those prices, "
                  "not only the defences", file=sys.stderr)
    runs = math.prod(len(axis.values) for axis in axes) * args.seeds
    if args.max_runs < 1:
        return usage(f"--max-runs must be at least 1, got {args.max_runs}")
    if runs > args.max_runs:
        return usage(f"the grid needs {runs} simulations, more than --max-runs "
                     f"{args.max_runs}; narrow it or raise --max-runs")
    bar: Any = None
    progress = None
    try:
        if args.policy is not None:  # report a policy file that is not UTF-8 as bad input
            from responder.policy import PolicyConfig

            PolicyConfig.load(args.policy)
        inputs = Inputs(args.scenario, args.trace, args.policy, args.seed)
        job, scenario = job_from_inputs(scenario_path=args.scenario, trace_path=args.trace,
                                        policy_path=args.policy, seed=args.seed)
        warning = dropped_caps_warning(scenario, job.policy, args.policy)
        if warning:
            print(f"raidsim sweep: warning: {warning}", file=sys.stderr)
        if job.seed + args.seeds - 1 > MAX_SEED:  # point seeds are seed, seed + 1, ...
            return usage(f"{args.seeds} seeds from seed {job.seed} go above {MAX_SEED} "
                         "(hint: give a smaller --seed)")
        if args.trace is not None:
            from sim.trace import key_warnings

            for warning in key_warnings(args.trace):
                print(f"raidsim sweep: warning: {warning}", file=sys.stderr)
        if not args.no_progress:
            from raidsim.progress import Progress

            bar = Progress(f"sweeping {job.name}", unit="run", total=runs)
            progress = bar.update

        points = sweep(job, axes, seeds=args.seeds, progress=progress, jobs=args.jobs,
                       inputs=inputs)
    except (ConfigError, ValueError) as exc:
        return usage(str(exc))
    finally:
        if bar is not None:
            bar.close()

    to_stdout = args.json_out is not None and str(args.json_out) == "-"
    table = sys.stderr if to_stdout else sys.stdout
    keys = [axis.key for axis in axes]
    widths = [max(len(k), 8) for k in keys]
    header = "  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))
    print(f"{header}  {'spend':>12}  {'x oracle':>8}  {'coverage':>8}  {'p95 wait':>10}  "
          "pareto", file=table)
    for p in points:
        cells = "  ".join(_cell(p.settings[k]).ljust(w) for k, w in zip(keys, widths, strict=True))
        ratio = f"{p.spend_eur / p.oracle_spend_eur:.2f}" if p.oracle_spend_eur else "-"
        print(f"{cells}  {eur_text(p.spend_eur):>12}  {ratio:>8}  "
              f"{_coverage(p.legit_coverage):>8}  {_wait(p.reply_latency_p95_s):>10}  "
              f"{'*' if p.pareto else ''}", file=table)
    if args.json_out is not None:
        payload = {
            "scenario": job.name,
            "seeds": [job.seed + i for i in range(args.seeds)],
            # keys are written sorted, as in every results file: ``axes`` keeps the
            # order of the --param flags, which is the grid's (the last varies fastest)
            "axes": [axis.key for axis in axes],
            "params": {axis.key: list(axis.values) for axis in axes},
            "points": [
                {"settings": p.settings, "spend_eur": p.spend_eur,
                 "oracle_spend_eur": p.oracle_spend_eur,
                 "legit_coverage": p.legit_coverage, "pareto": p.pareto,
                 "reply_latency_p95_s": p.reply_latency_p95_s}
                for p in points
            ],
        }
        from reports.results import dumps

        text = dumps(payload)  # money as exact decimals, keys sorted, as results files
        if to_stdout:
            sys.stdout.write(text)
        else:
            write_output(args.json_out, text, "the sweep JSON")
    return EXIT_OK


def _cell(value: object) -> str:
    """A setting as it is given (``--param templates.enabled=false``): true/false, not
    Python's True/False."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _wait(seconds: float | None) -> str:
    return f"{seconds:,.0f} s" if seconds is not None else "n/a"


def _coverage(share: float | None) -> str:
    from reports.summary import percent_text

    return percent_text(share) if share is not None else "n/a"
