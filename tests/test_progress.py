"""The progress line: drawn on a terminal, silent elsewhere, erased when done."""

from __future__ import annotations

import io

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
