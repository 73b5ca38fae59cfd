"""Run every benchmark: ``python benchmarks/run.py [--quick] [--ports FIRST]``.

``--ports FIRST`` goes to ``bench_responder.py`` (its four ports from FIRST).

Each benchmark prints its own figures and ratios against a baseline measured in the
same run (raw SimPy for the simulator, a bare Starlette endpoint for the responder).
Nothing here asserts timing: the figures are for people, not for pass/fail.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the short form CI runs")
    parser.add_argument("--ports", metavar="FIRST",
                        help="bench_responder.py's ports: FIRST to FIRST+3 (default: free ones)")
    args = parser.parse_args(argv)  # a typo such as --quik exits 2, not a full run
    quick = ["--quick"] if args.quick else []
    failed = 0
    for script in ("bench_sim.py", "bench_responder.py"):
        extra = ["--ports", args.ports] if args.ports and script == "bench_responder.py" else []
        print(f"== {script} {' '.join(quick)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / script), *quick, *extra])
        if code:
            print(f"{script} exited {code}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
