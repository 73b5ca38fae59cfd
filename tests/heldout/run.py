"""Print the held-out benchmark as a table: ``python -m tests.heldout.run [--keep DIR]``.

Generates every world, replays it with ``raidsim simulate --trace`` (default policy, and
the capped policy on CAPPED_WORLD) and prints coverage and spend against the
criteria. The pytest module asserts the same numbers; this is for reading them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from .generators import RAID, WORLDS, build
from .test_heldout import CAPPED_POLICY, CAPPED_WORLD, MIN_COVERAGE, eur, simulate

COLUMNS = ("world", "msgs", "raid", "coverage", "spend", "per-sender", "oracle", "naive",
           "raid replies/senders", "p50 s", "verdict")


def verdict(raid_senders: int, results: dict[str, Any]) -> str:
    has_raid = raid_senders > 0
    problems = []
    if eur(results["legit_coverage"]) < MIN_COVERAGE:
        problems.append("coverage")
    spend, per_sender = eur(results["spend_eur"]), eur(results["per_sender_spend_eur"])
    if has_raid and not spend < per_sender:
        problems.append("spend")
    if has_raid and not results["replies"]["raid"] < raid_senders:
        problems.append("raid-saving")
    cap = results["budget"]["cap_eur"]
    if cap is not None and spend > eur(cap):
        problems.append("cap")
    return "ok" if not problems else "FAIL " + ",".join(problems)


def row(name: str, results: dict[str, Any], raid_lines: int, raid_senders: int, *,
        capped: bool = False) -> list[str]:
    money = "{:.2f}".format
    return [
        name + (" (capped)" if capped else ""),
        str(results["messages"]["total"]),
        str(raid_lines),
        f"{eur(results['legit_coverage']) * 100:.2f}%",
        money(eur(results["spend_eur"])),
        money(eur(results["per_sender_spend_eur"])),
        money(eur(results["oracle_spend_eur"])),
        money(eur(results["naive_spend_eur"])),
        f"{results['replies']['raid']}/{raid_senders}",
        f"{eur(results['reply_latency_s']['p50']):.0f}",
        verdict(raid_senders, results) if not capped else
        f"cap {results['budget']['cap_eur']}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.heldout.run", description=__doc__)
    parser.add_argument("--keep", type=Path, help="keep traces and results in this directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for name in WORLDS:
            world = build(name)
            trace = world.write(directory / f"{name}.jsonl")
            results = simulate(trace, directory / f"{name}.results.json")
            raid_lines = sum(line.label == RAID for line in world.lines)
            raid_senders = len(world.senders(RAID))
            rows.append(row(name, results, raid_lines, raid_senders))
            if name == CAPPED_WORLD:
                capped = simulate(trace, directory / f"{name}.capped.json",
                                  "--policy", str(CAPPED_POLICY))
                rows.append(row(name, capped, raid_lines, raid_senders, capped=True))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    failed = sum(r[-1].startswith("FAIL") for r in rows)
    print(f"\n{failed} of {len(WORLDS)} worlds fail the criteria (coverage >= {MIN_COVERAGE}, "
          "spend < per-sender under raid, raid replies < raid senders, spend <= cap)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
