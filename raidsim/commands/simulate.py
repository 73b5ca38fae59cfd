"""``raidsim simulate``: run a raid scenario or a trace through the defence policy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from raidsim.cli import (
    EXIT_OK,
    EXIT_THRESHOLD,
    EXIT_USAGE,
    MAX_SEED,
    UsageError,
    check_output_dir,
    check_output_file,
    job_count,
    seed_value,
    write_output,
)

MAX_REPLICATIONS = 10_000  # each one a full run; a typo of 1000000 should not start


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate",
        help="simulate a raid scenario or score a trace against the defences",
        description=(
            "Run a scenario's synthetic traffic (or a recorded trace) through the same defence "
            "policy the responder runs, under a simulated clock, and print what it would cost: "
            "naive spend, one-reply-per-sender spend, defended spend, oracle spend, legit "
            "coverage and reply latency. With --trace alone, the trace is scored with the "
            "default policy and provider model."
        ),
        epilog=(
            "examples:\n"
            "  raidsim simulate scenarios/anti-relous-2017.toml --json results.json\n"
            "  raidsim simulate --trace capture.jsonl --threshold 'spend_eur<=600'\n"
            "  raidsim simulate scenarios/anti-relous-2017.toml --replications 10\n\n"
            "exit codes: 0 pass, 1 a threshold failed, 2 usage or input error, 3 internal "
            "error (a bug; its traceback is printed)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", nargs="?", type=Path, metavar="SCENARIO.toml",
                        help="scenario file (traffic, policy, provider, faults, thresholds)")
    parser.add_argument("--trace", type=Path, metavar="FILE.jsonl",
                        help="replay this JSONL trace instead of the scenario's traffic")
    parser.add_argument("--policy", type=Path, metavar="FILE.toml",
                        help="policy file replacing the scenario's [policy] table (the scenario's "
                        "reply text and price stay; the file's apply where it sets none)")
    parser.add_argument("--seed", type=seed_value, metavar="N",
                        help="random seed, 0 or more (default: the scenario's seed)")
    parser.add_argument("--json", type=Path, metavar="OUT", dest="json_out",
                        help="write the results JSON here ('-' for stdout)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write results.json, report.html, plots, summary.md, junit.xml")
    parser.add_argument("--threshold", action="append", default=[], metavar="EXPR",
                        help="pass/fail rule on a results key, e.g. 'spend_eur<=600' "
                        "(repeatable; adds to the scenario's [thresholds])")
    parser.add_argument("--replications", type=int, default=1, metavar="N",
                        help="run N seeds (seed, seed+1, ...) and report 95%% confidence "
                        "intervals under 'replications'; the other figures and plain "
                        "thresholds are the first seed's, and a threshold can gate an "
                        "interval: 'replications.spend_eur.high<=1180' (1 to 10,000; "
                        "default 1)")
    parser.add_argument("--jobs", "-j", type=job_count, default=1, metavar="N",
                        help="run the replications in N processes (0: one per CPU); the "
                        "results are the same as with one (default 1)")
    parser.add_argument("--quiet", action="store_true",
                        help="print no summary (failed thresholds are still named on stderr)")
    parser.add_argument("--no-progress", action="store_true",
                        help="never show the progress bar (it shows only on a terminal)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from responder.policy.errors import ConfigError
    from sim.run import (
        Inputs,
        dropped_caps_warning,
        horizon_warning,
        job_from_inputs,
        replicate,
        reply_warning,
        summary_lines,
    )

    if args.scenario is None and args.trace is None:
        print("raidsim simulate: error: give a SCENARIO.toml, --trace FILE.jsonl, or both "
              "(try: raidsim simulate scenarios/anti-relous-2017.toml)", file=sys.stderr)
        return EXIT_USAGE
    if not 1 <= args.replications <= MAX_REPLICATIONS:
        print(f"raidsim simulate: error: --replications must be from 1 to "
              f"{MAX_REPLICATIONS:,}, got {args.replications}", file=sys.stderr)
        return EXIT_USAGE
    jobs = min(args.jobs, args.replications)
    check_output_file(args.json_out, "--json",
                      inputs=(args.scenario, args.trace, args.policy))
    check_output_dir(args.report, "--report")
    try:
        from reports.thresholds import (
            ThresholdSyntaxError,
            apply,
            merge,
            parse_threshold,
            thresholds_from_table,
        )
    except ImportError:  # pragma: no cover - reports ships in the same distribution
        print("raidsim simulate: error: the reports package is missing; reinstall raidsim",
              file=sys.stderr)
        return EXIT_USAGE

    try:
        thresholds = [parse_threshold(expr, source="--threshold") for expr in args.threshold]
    except ThresholdSyntaxError as exc:
        print(f"raidsim simulate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    progress = None
    bar: Any = None
    try:
        if args.policy is not None:  # report a policy file that is not UTF-8 as bad input
            from responder.policy import PolicyConfig

            PolicyConfig.load(args.policy)
        inputs = Inputs(args.scenario, args.trace, args.policy, args.seed)
        job, scenario = job_from_inputs(scenario_path=args.scenario, trace_path=args.trace,
                                        policy_path=args.policy, seed=args.seed)
        if scenario is not None and scenario.thresholds:
            thresholds = merge(thresholds_from_table(  # a repeated one is checked once
                scenario.thresholds, path=scenario.path, text=scenario.text), thresholds)
        last_seed = job.seed + args.replications - 1
        if last_seed > MAX_SEED:  # replication i runs seed + i, each one replayable
            print(f"raidsim simulate: error: {args.replications} replications from seed "
                  f"{job.seed} reach seed {last_seed}, above {MAX_SEED} (hint: give a "
                  "smaller --seed)", file=sys.stderr)
            return EXIT_USAGE
        for warning in (reply_warning(job.policy),
                        dropped_caps_warning(scenario, job.policy, args.policy)):
            if warning:
                print(f"raidsim simulate: warning: {warning}", file=sys.stderr)
        if args.trace is not None:
            from sim.trace import key_warnings

            for warning in key_warnings(args.trace):
                print(f"raidsim simulate: warning: {warning}", file=sys.stderr)
        if not args.no_progress and not args.quiet:
            from raidsim.progress import Progress

            if jobs > 1:  # runs finish in other processes: count runs
                bar = Progress(f"simulating {job.name}", unit="run", total=args.replications)
            else:
                bar = Progress(f"simulating {job.name}", unit="msg")
            if not bar.enabled:
                bar = None
            elif jobs > 1:
                progress = bar.update
            else:
                offset = [0, 0]  # messages of finished replications, last count seen

                def progress(count: int) -> None:
                    if count < offset[1]:  # a new replication started
                        offset[0] += offset[1]
                    offset[1] = count
                    bar.update(offset[0] + count)

        results = replicate(job, args.replications, progress=progress, jobs=jobs,
                            inputs=inputs)
    except ConfigError as exc:
        print(f"raidsim simulate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if bar is not None:
            bar.close()

    stopped = horizon_warning(results)
    if stopped:
        print(f"raidsim simulate: warning: {stopped}", file=sys.stderr)
    passed = apply(results, thresholds)
    from reports.results import dumps

    text = dumps(results)
    if args.json_out is not None:
        if str(args.json_out) == "-":
            sys.stdout.write(text)
        else:
            write_output(args.json_out, text, "the results JSON")
    if args.report is not None:
        from reports import write_report

        try:
            write_report(results, args.report)
        except OSError as exc:
            raise UsageError(f"{args.report}: cannot write the report: "
                             f"{exc.strerror or exc}") from exc
    from reports.console import format_summary_failures, threshold_entries, verdict_line

    if not args.quiet and str(args.json_out) != "-":
        for line in summary_lines(results):
            print(line)
        for item in threshold_entries(results):
            print(f"  threshold {verdict_line(item)}")
        if args.json_out is not None:
            print(f"  results           {args.json_out}")
        if args.report is not None:
            print(f"  report            {args.report / 'report.html'}")
    # the summary's FAIL lines went to stdout (or nowhere: --quiet, the JSON on stdout):
    # stderr says why the exit code is 1 either way, as CI logs keep it
    for line in format_summary_failures(results):
        print(f"raidsim simulate: {line}", file=sys.stderr)
    return EXIT_OK if passed else EXIT_THRESHOLD
