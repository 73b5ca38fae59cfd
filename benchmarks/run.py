"""Run every benchmark: ``python benchmarks/run.py [--quick]``.

Each benchmark prints its own figures and ratios against a baseline measured in the
same run (raw SimPy for the simulator, a bare Starlette endpoint for the responder).
Nothing here asserts timing: the figures are for people, not for pass/fail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    quick = ["--quick"] if "--quick" in argv else []
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    failed = 0
    for script in ("bench_sim.py", "bench_responder.py"):
        print(f"== {script} {' '.join(quick)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / script), *quick])
        if code:
            print(f"{script} exited {code}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
