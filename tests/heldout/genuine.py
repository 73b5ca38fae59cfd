"""What the red-team tests share: replay every world once through the CLI, and check the
results (genuine-only worlds: ``test_redteam5.py``, ``test_redteam6.py``) and traces
(those and ``test_redteam4.py``, ``test_redteam7.py``, ``test_redteam8.py``) against the
worlds. A world here is any object with ``lines`` (``(t, number, body, label)`` tuples),
``senders(label=None)``, ``has_raid`` and ``write(path) -> Path``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from responder.policy.config import PolicyConfig

from .test_heldout import eur, reply_price, simulate

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
Run = tuple[Any, dict[str, Any]]


def replay_all(worlds: Mapping[str, Callable[[], Any]], root: Path) -> dict[str, Run]:
    """Every world generated and replayed once, two simulations at a time."""

    def run(name: str) -> Run:
        world = worlds[name]()
        trace = world.write(root / f"{name}.jsonl")
        return world, simulate(trace, root / f"{name}.results.json")

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(worlds, pool.map(run, worlds), strict=True))


def coverage(world: Any, results: dict[str, Any], legit: str) -> Decimal:
    """The results' legit coverage, checked against the senders the results say replied."""
    value = eur(results["legit_coverage"])
    replied = results["legit_senders_replied"]
    assert abs(value - Decimal(replied) / len(world.senders(legit))) < Decimal("0.0001")
    return value


def check_accounts(world: Any, results: dict[str, Any], legit: str) -> None:
    """Message and sender counts, oracle and naive spends match the trace (all genuine)."""
    price = reply_price(PolicyConfig())
    assert results["messages"]["total"] == len(world.lines)
    assert results["messages"]["legit"] == len(world.lines)
    assert results["messages"]["raid"] == 0
    assert results["legit_senders"] == len(world.senders(legit))
    assert eur(results["oracle_spend_eur"]) == len(world.senders(legit)) * price
    assert eur(results["naive_spend_eur"]) == len(world.lines) * price
    assert eur(results["spend_eur"]) <= len(world.senders()) * price


def check_deterministic(worlds: Mapping[str, Callable[..., Any]], names: list[str],
                        tmp_path: Path) -> None:
    """A world is a pure function of its seed: written twice, the same bytes; another seed,
    other lines."""
    for name in names:
        first = worlds[name]().write(tmp_path / f"{name}.a.jsonl")
        second = worlds[name]().write(tmp_path / f"{name}.b.jsonl")
        assert first.read_bytes() == second.read_bytes(), name
        assert worlds[name](seed=2).lines != worlds[name]().lines, name


def check_well_formed(world: Any, legit: str, opt_out: Any, *, raid: str | None = None,
                      has_raid: bool = False, max_lines: int | None = None) -> None:
    """Sorted times, E.164 numbers, one label per number (``legit``, or ``raid`` in a world
    ``has_raid``), no opt-out as a first text, fewer than ``max_lines`` lines."""
    assert world.lines
    assert max_lines is None or len(world.lines) < max_lines
    assert world.has_raid == has_raid
    times = [t for t, *_ in world.lines]
    assert times == sorted(times) and times[0] >= 0
    labels: dict[str, str] = {}
    firsts: dict[str, str] = {}
    for _, number, body, label in world.lines:
        assert E164.match(number), number
        assert label == legit or (raid is not None and label == raid), label
        assert labels.setdefault(number, label) == label, number
        firsts.setdefault(number, body)
    assert not [b for b in firsts.values() if b.strip().lower() in opt_out]
