"""``raidsim trace SCENARIO -o FILE.jsonl``: write a scenario's synthetic traffic as a trace."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from raidsim.cli import seed_value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "trace",
        help="write a scenario's synthetic traffic as a JSONL trace",
        description=(
            "Generate the inbound SMS of a scenario file and write them as a JSONL trace "
            "(one message per line, sorted by t, with its legit/raid label). The same "
            "scenario and seed always give the same bytes. Use '-o -' for standard output."
        ),
        epilog="exit codes: 0 written, 2 usage or input error (names the file, the line and "
        "the fix), 3 internal error (a bug; its traceback is printed), 141 when the reader "
        "of '-o -' stops early (| head)",
    )
    parser.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file")
    parser.add_argument("-o", "--output", metavar="FILE.jsonl", required=True,
                        help="where to write the trace ('-' for standard output)")
    parser.add_argument("--seed", type=seed_value, default=None, metavar="N",
                        help="override the scenario's seed (0 or more)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raidsim.cli import UsageError, check_output_file
    from responder.policy.errors import ConfigError
    from sim.scenario import load_scenario
    from sim.trace import write_lines, write_trace
    from sim.traffic import iter_generate

    check_output_file(args.output, "-o", inputs=(args.scenario,), example="trace.jsonl")
    try:
        scenario = load_scenario(args.scenario)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    records = iter_generate(scenario, args.seed)
    if args.output == "-":
        count = write_lines(records, sys.stdout)
    else:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # as --json does
            count = write_trace(records, args.output)
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write the trace: {exc.strerror or exc} "
                             "(hint: give a file path in a folder you can write to)") from exc
        seed = scenario.seed if args.seed is None else args.seed
        print(f"wrote {count} messages to {args.output} ({scenario.name}, seed {seed})",
              file=sys.stderr)
    return 0
