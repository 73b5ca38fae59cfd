"""The progress line: drawn on a terminal, silent elsewhere, erased when done."""

from __future__ import annotations

import io
import sys

import pytest

from raidsim.progress import Progress


def test_silent_when_not_a_terminal() -> None:
    """Pipes and CI logs get no progress output."""
    stream = io.StringIO()
    bar = Progress("simulating x", unit="msg", stream=stream)
    bar.update(5000)
    bar.close()
    assert stream.getvalue() == ""


def test_draws_counts_and_erases_itself() -> None:
    """On a terminal it shows the count and total, then clears the line."""
    stream = io.StringIO()
    bar = Progress("sweeping x", unit="run", total=4, stream=stream, enabled=True)
    bar.update(4)
    bar.close()
    out = stream.getvalue()
    assert "sweeping x [" in out and "4/4 run" in out
    assert out.endswith("\r") and out.rstrip("\r").split("\r")[-1].strip() == ""


def test_slow_units_show_seconds_each_and_time_left() -> None:
    """A sweep's runs take seconds each: the rate read "0 run/s" with no time left."""
    stream = io.StringIO()
    bar = Progress("sweeping x", unit="run", total=4, stream=stream, enabled=True)
    bar.started -= 30.0  # the first run took 30 s
    bar.last_draw = 0.0  # (not redrawn within 0.1 s of the last draw)
    bar.update(1)
    assert "1/4 run 30.0 s/run, about 90 s left" in stream.getvalue()
    bar.close()


class _Tty(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("stdout_tty, stderr_tty, drawn_on", [
    (True, True, "stderr"),   # a terminal: drawn beside the data, never in it
    (True, False, "stdout"),  # stderr sent to a log: the log stays clean
    (False, True, None),      # stdout sent to a file or a pipe: a batch run, no bar
    (False, False, None),
])
def test_shown_only_when_stdout_is_a_terminal(monkeypatch, stdout_tty, stderr_tty, drawn_on):
    streams = {"stdout": _Tty(stdout_tty), "stderr": _Tty(stderr_tty)}
    monkeypatch.setattr(sys, "stdout", streams["stdout"])
    monkeypatch.setattr(sys, "stderr", streams["stderr"])
    bar = Progress("simulating x", unit="msg")
    bar.update(5000)
    bar.close()
    for name, stream in streams.items():
        assert ("simulating x" in stream.getvalue()) == (name == drawn_on), name
