"""The one entry point, ``raidsim``. Each verb lives in ``raidsim/commands/<verb>.py``.

A command module exposes ``register(subparsers)`` and sets ``func`` on its parser;
``func(args) -> int`` returns the exit code. Heavy imports (simpy, matplotlib,
uvicorn) happen inside ``func``, so ``raidsim --help`` stays fast and the lean
responder install can run ``serve`` without the simulator's extras.

Exit codes: 0 pass, 1 threshold breach (or a check that failed), 2 usage or input error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from raidsim import __version__

# Order is the order shown in --help.
COMMANDS = (
    "simulate",
    "trace",
    "sweep",
    "segments",
    "report",
    "serve",
    "db",
    "fake_provider",
    "load",
)

# Optional dependencies and the extra that brings each one.
_EXTRAS = {
    "simpy": "sim", "faker": "sim", "matplotlib": "sim",
    "locust": "load", "psycopg": "postgres",
}

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2


def job_count(text: str) -> int:
    """The ``--jobs`` value: a number of worker processes, ``0`` meaning one per CPU."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError("must be 0 (one per CPU) or more")
    return count or os.cpu_count() or 1


class UsageError(Exception):
    """Bad input from the user: printed as ``raidsim: error: ...`` and exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raidsim",
        description=(
            "Rehearse an SMS raid against your auto-responder before launch, and survive it "
            "after: simulate scenarios, replay traces, gate CI on cost, run the responder."
        ),
        epilog="Exit codes: 0 pass, 1 threshold breach, 2 usage or input error.",
    )
    parser.add_argument("--version", action="version", version=f"raidsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"raidsim.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("raidsim.commands"):
                continue  # verb not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code = int(args.func(args))
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"raidsim {args.command}: error: this command needs {exc.name}, which the lean "
            f"responder install leaves out; install it with: pip install 'raidsim[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except UsageError as exc:
        print(f"raidsim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("raidsim: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
