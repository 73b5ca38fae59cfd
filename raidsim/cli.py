"""The one entry point, ``raidsim``. Each verb lives in ``raidsim/commands/<verb>.py``.

A command module exposes ``register(subparsers)`` and sets ``func`` on its parser;
``func(args) -> int`` returns the exit code. Heavy imports (simpy, matplotlib,
uvicorn) happen inside ``func``, so ``raidsim --help`` stays fast and the lean
responder install can run ``serve`` without the simulator's extras.

Exit codes: 0 pass, 1 threshold breach (or a check that failed), 2 usage or input error,
3 an internal error (a bug: the traceback is printed; never 1, which a CI gate reads as a
threshold breach).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
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
EXIT_INTERNAL = 3  # as pytest: a crash is not a verdict
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what the shell reports for a tool killed by it


def _whole_number(text: str, *, negative: str) -> int:
    """An argparse value that must be a whole number of at least 0."""
    try:
        if not text.strip().isascii():
            raise ValueError(text)  # int() also reads other scripts' digits
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{negative}, got {number}")
    return number


def job_count(text: str) -> int:
    """The ``--jobs`` value: a number of worker processes, ``0`` meaning one per CPU."""
    return _whole_number(text, negative="must be 0 (one per CPU) or more") or os.cpu_count() or 1


MAX_SEED = 2**63 - 1  # a TOML integer's range, which a scenario's seed has


def seed_value(text: str) -> int:
    """A ``--seed`` value: a whole number from 0 to 2**63 - 1, as a scenario's ``seed``."""
    seed = _whole_number(text, negative="must be 0 or more")
    if seed > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED}, got {text}")
    return seed


class UsageError(Exception):
    """Bad input from the user: printed as ``raidsim: error: ...`` and exit code 2."""


def duration_flag(flag: str, text: str, *, above_zero: str | None = None) -> float:
    """Seconds in a duration flag's value, read as a scenario file reads a duration: with
    units (``"90s"``, ``"1h30m"``) or a bare number of seconds (``90``). A ``UsageError``
    names the flag and its value; ``above_zero``, when given, is why 0 will not do."""
    from responder.policy.units import parse_duration_text

    try:
        value = parse_duration_text(text)
    except ValueError as exc:
        raise UsageError(f"{flag} {text!r}: {exc}") from exc
    if above_zero is not None and value <= 0:
        raise UsageError(f"{flag} must be above 0, got {text!r} (hint: {above_zero})")
    return value


def write_output(path: str | os.PathLike[str], text: str, what: str) -> None:
    """Write an output file (creating its folder); an OS error becomes a ``UsageError``."""
    from pathlib import Path

    from reports.files import replaced_whole

    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with replaced_whole(file) as handle:  # Ctrl-C leaves the previous file, not a cut one
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"{file}: cannot write {what}: {exc.strerror or exc} (hint: give "
                         "a file path in a folder you can write to)") from exc


def utf8_stdout() -> None:
    """Make standard output UTF-8 with ``\\n`` line ends, whatever the locale or
    ``PYTHONIOENCODING``: traces and results JSON are UTF-8 by contract (docs/scenarios.md,
    docs/results.md)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        sys.stdout.flush()
        reconfigure(encoding="utf-8", newline="\n")


def check_output_file(path: str | os.PathLike[str] | None, flag: str, *,
                      inputs: Sequence[str | os.PathLike[str] | None] = (),
                      example: str = "results.json") -> None:
    """Refuse, before any work, an output file path that names a directory or one of the
    command's ``inputs`` (writing the results over the trace would destroy it)."""
    if path is None or str(path) == "-":
        return
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path}: is a directory (hint: give a file path, e.g. "
                         f"{os.path.join(path, example)})")
    for source in inputs:
        if source is not None and str(source) != "-" and _same_file(path, source):
            raise UsageError(f"{flag} {path}: is the input file {source}; writing there "
                             "would destroy it (hint: give another output path)")
    if os.path.exists(path) and not os.path.isfile(path):
        return  # /dev/null, /dev/stdout, a pipe: written directly, as it is
    _check_parents(path, flag)


def _check_parents(path: str | os.PathLike[str], flag: str,
                   shown: str | os.PathLike[str] | None = None) -> None:
    """Refuse a path under an existing file (``scenario.toml/out.json``): the folders an
    output goes in are created as needed, but never in place of a file. Then check that a
    file can be created in the folder that will hold it (or, when that folder does not
    exist yet, in the folder it will be created in): an output is written beside its
    target, then renamed over it, and a run of minutes must not end in "Permission
    denied" with its results lost."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            return
        parent = up
    if not os.path.isdir(parent):
        raise UsageError(f"{flag} {path}: {parent} is a file, not a folder (hint: give a "
                         "path in a folder)")
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {shown or path}: cannot write in {parent}: "
                         f"{exc.strerror or exc} (hint: give a path in a folder you can "
                         "write to)") from exc


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_dir(path: str | os.PathLike[str] | None, flag: str) -> None:
    """Refuse, before any work, an output folder path that names an existing file."""
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path}: exists and is not a directory (hint: give a "
                         "folder for the report)")
    if path is not None:
        # the report's own files go in the folder: probe it when it exists
        _check_parents(os.path.join(path, "report.html") if os.path.isdir(path) else path,
                       flag, shown=path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raidsim",
        description=(
            "Rehearse an SMS raid against your auto-responder before launch, and survive it "
            "after: simulate scenarios, replay traces, gate CI on cost, run the responder."
        ),
        epilog="Exit codes: 0 pass, 1 threshold breach, 2 usage or input error, "
        "3 internal error (a bug in raidsim; please report it with its traceback).",
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
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # an unknown option or one argument too many: the command's usage, not ours
        commands = next(a for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction))
        command = commands.choices.get(args.command) if args.command else None
        (command or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    utf8_stdout()
    try:
        code = int(args.func(args))
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            return _internal_error(args.command)
        if args.command == "load":
            extra = "load"  # the live replay's extra brings the simulator's too
        print(
            f"raidsim {args.command}: error: this command needs {exc.name}, which the lean "
            f"responder install leaves out; install it from the raidsim checkout with: "
            f"pip install '.[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except UsageError as exc:
        print(f"raidsim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("raidsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our standard output went away (`raidsim trace -o - | head`): stop
        # quietly, as a tool killed by SIGPIPE would, and keep Python from complaining
        # again when it flushes stdout at exit.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception:  # a bug, not a verdict: never the exit code of a failed threshold
        return _internal_error(args.command)
    return code


def _internal_error(command: str) -> int:
    traceback.print_exc()
    print(f"raidsim {command}: internal error (exit {EXIT_INTERNAL}): this is a bug in "
          "raidsim, not a failed threshold; please report it with the traceback above",
          file=sys.stderr)
    return EXIT_INTERNAL


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor: nothing to do
        pass


if __name__ == "__main__":
    sys.exit(main())
