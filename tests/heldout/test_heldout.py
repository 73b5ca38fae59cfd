"""The default defences, judged on held-out worlds through the real CLI.

Each world is generated into a temporary directory and replayed with
``python -m raidsim simulate --trace FILE --json OUT``, exactly as a user would.
The criteria are the issue's "Done means" for traces from other generators:

- ``legit_coverage >= 0.97``;
- when the trace holds raid lines, ``spend_eur`` is strictly below the
  "one reply per sender" spend, which this module recomputes from the trace
  (distinct senders x the reply's exact price) and cross-checks against the
  results' ``per_sender_spend_eur``;
- ``spend_eur <= budget.cap_eur`` whenever a cap is set, and, with
  ``capped_policy.toml``, no hour ever spends more than its per-hour cap.

Money is compared exactly: the results JSON is parsed with ``parse_float=Decimal``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from responder.policy.config import PolicyConfig
from responder.policy.money import MICROS_PER_UNIT

from .generators import LEGIT, RAID, RAID_FREE_WORLDS, WORLDS, World, build

pytestmark = pytest.mark.heldout

HERE = Path(__file__).parent
CAPPED_POLICY = HERE / "capped_policy.toml"
CAPPED_WORLD = "fr_forum_unique"
MIN_COVERAGE = Decimal("0.97")
SIMULATE_TIMEOUT_S = 180


def _simulate_registered() -> bool:
    probe = subprocess.run(
        [sys.executable, "-m", "raidsim", "simulate", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if probe.returncode == 0:
        return True
    if "invalid choice" in probe.stderr:
        return False
    raise AssertionError(f"`raidsim simulate --help` failed:\n{probe.stderr}")


@pytest.fixture(scope="session")
def simulate_cli() -> None:
    """Skip (only) while the `simulate` verb is not registered yet."""
    if not _simulate_registered():
        pytest.skip("TODO: `raidsim simulate` is not registered yet; held-out worlds not run")


def simulate(trace: Path, out: Path, *extra: str) -> dict[str, Any]:
    """Run the real CLI on a trace and return its results JSON, money as Decimal."""
    proc = subprocess.run(
        [sys.executable, "-m", "raidsim", "simulate", "--trace", str(trace), "--json", str(out),
         "--quiet", "--no-progress", *extra],
        capture_output=True, text=True, timeout=SIMULATE_TIMEOUT_S, check=False,
    )
    # 0 pass, 1 a threshold of the simulator's own failed; both still produce results.
    assert proc.returncode in (0, 1), (
        f"raidsim simulate exited {proc.returncode} on {trace.name}:\n{proc.stderr}"
    )
    with out.open(encoding="utf-8") as handle:
        results: dict[str, Any] = json.load(handle, parse_float=Decimal)
    return results


def eur(value: Any) -> Decimal:
    """A results money value as an exact Decimal (int, Decimal or string in the JSON)."""
    assert not isinstance(value, float), "results JSON must be parsed with parse_float=Decimal"
    return Decimal(str(value))


def reply_price(config: PolicyConfig) -> Decimal:
    return Decimal(config.reply_cost_micros) / MICROS_PER_UNIT


def summary(world: World, results: dict[str, Any]) -> str:
    return (
        f"[{world.name}] coverage={results['legit_coverage']} "
        f"({results['legit_senders_replied']}/{results['legit_senders']}), "
        f"spend={results['spend_eur']}, per_sender={results.get('per_sender_spend_eur')}, "
        f"oracle={results['oracle_spend_eur']}, naive={results['naive_spend_eur']}, "
        f"cap={results['budget']['cap_eur']}, decisions={results.get('decisions', {})}"
    )


Run = tuple[World, dict[str, Any]]


@pytest.fixture(scope="module")
def run_world(tmp_path_factory: pytest.TempPathFactory,
              simulate_cli: None) -> Callable[[str], Run]:
    """Replays a world with the default policy, once per module, shared by the checks below."""
    runs: dict[str, Run] = {}

    def run(name: str) -> Run:
        if name not in runs:
            world = build(name)
            directory = tmp_path_factory.mktemp(name)
            trace = world.write(directory / f"{name}.jsonl")
            runs[name] = (world, simulate(trace, directory / "results.json"))
        return runs[name]

    return run


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_results_account_for_every_line_of_the_trace(
    name: str, run_world: Callable[[str], Run]) -> None:
    """messages.total (and the per-label counts) equal the trace's lines."""
    world, results = run_world(name)
    labels = [line.label for line in world.lines]
    assert results["messages"]["total"] == len(world.lines), summary(world, results)
    assert results["messages"]["legit"] == labels.count(LEGIT)
    assert results["messages"]["raid"] == labels.count(RAID)
    assert results["legit_senders"] == len(world.senders(LEGIT))


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_default_policy_answers_genuine_senders(
    name: str, run_world: Callable[[str], Run]) -> None:
    """At least 97% of distinct legit senders get a reply."""
    world, results = run_world(name)
    assert eur(results["legit_coverage"]) >= MIN_COVERAGE, summary(world, results)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_default_policy_beats_one_reply_per_sender_under_raid(
    name: str, run_world: Callable[[str], Run]) -> None:
    """With raid lines in the trace, spend is strictly below one reply per distinct sender."""
    world, results = run_world(name)
    price = reply_price(PolicyConfig())
    assert eur(results["reply_cost_eur"]) == price
    # Every sender in these worlds is a repliable mobile whose first text is no opt-out
    # (test_generators checks it), so "one reply per sender" is simply this:
    per_sender = len(world.senders()) * price
    assert eur(results["per_sender_spend_eur"]) == per_sender, summary(world, results)
    assert eur(results["oracle_spend_eur"]) == len(world.senders(LEGIT)) * price
    assert eur(results["naive_spend_eur"]) == len(world.lines) * price
    if world.has_raid:
        assert eur(results["spend_eur"]) < per_sender, summary(world, results)
    else:
        assert eur(results["spend_eur"]) <= per_sender, summary(world, results)


@pytest.mark.parametrize("name", sorted(set(WORLDS) - RAID_FREE_WORLDS))
def test_default_policy_saves_on_the_raid_not_on_genuine_senders(
    name: str, run_world: Callable[[str], Run]) -> None:
    """The saving below "one reply per sender" comes from raid senders left unanswered.

    The spend criterion alone can be met by a policy that answers every raider once and
    misses a few genuine senders instead; this check closes that loophole: fewer raid
    replies than distinct raid senders.
    """
    world, results = run_world(name)
    raid_senders = len(world.senders(RAID))
    assert results["replies"]["raid"] < raid_senders, (
        f"{summary(world, results)}; raid replies {results['replies']['raid']} "
        f"for {raid_senders} raid senders"
    )


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_default_policy_stays_within_any_budget_cap(
    name: str, run_world: Callable[[str], Run]) -> None:
    """spend_eur never exceeds budget.cap_eur when the default policy sets one."""
    world, results = run_world(name)
    cap = results["budget"]["cap_eur"]
    if cap is not None:
        assert eur(results["spend_eur"]) <= eur(cap), summary(world, results)


@pytest.fixture(scope="module")
def capped_run(tmp_path_factory: pytest.TempPathFactory,
               simulate_cli: None) -> Run:
    """The forum raid world (oracle ~€115), replayed with a small total and per-hour budget."""
    world = build(CAPPED_WORLD)
    directory = tmp_path_factory.mktemp("capped")
    trace = world.write(directory / f"{world.name}.jsonl")
    return world, simulate(trace, directory / "results.json", "--policy", str(CAPPED_POLICY))


def _capped_config() -> PolicyConfig:
    config = PolicyConfig.load(CAPPED_POLICY)
    assert config.budget.total_micros is not None
    assert config.budget.per_hour_micros is not None
    return config


def _cumulative_spend(results: dict[str, Any]) -> tuple[int, list[Decimal]]:
    series = results["timeseries"]
    return int(series["bin_s"]), [Decimal(0), *(eur(v) for v in series["spend_eur"])]


def test_capped_policy_never_spends_over_its_total_cap(
    capped_run: Run,
) -> None:
    """With [budget] total_eur = "50", the whole run spends at most €50, exactly."""
    world, results = capped_run
    config = _capped_config()
    total_cap = Decimal(config.budget.total_micros or 0) / MICROS_PER_UNIT
    assert eur(results["budget"]["cap_eur"]) == total_cap
    assert eur(results["spend_eur"]) <= total_cap, summary(world, results)
    # The world needs far more than the cap: the budget must actually bind and say when.
    assert eur(results["oracle_spend_eur"]) > total_cap
    assert results["budget"]["exhausted_at_s"] is not None, summary(world, results)
    _, cumulative = _cumulative_spend(results)
    assert max(cumulative) <= total_cap


def test_capped_policy_never_spends_over_its_per_hour_cap_in_clock_hours(
    capped_run: Run,
) -> None:
    """With per_hour_eur = "10", each hour counted from the trace start spends at most €10."""
    world, results = capped_run
    config = _capped_config()
    per_hour = Decimal(config.budget.per_hour_micros or 0) / MICROS_PER_UNIT
    bin_s, cumulative = _cumulative_spend(results)
    assert 3600 % bin_s == 0, f"time series bins of {bin_s} s do not tile an hour"
    step = 3600 // bin_s
    worst = max(
        cumulative[min(i + step, len(cumulative) - 1)] - cumulative[i]
        for i in range(0, len(cumulative), step)
    )
    assert worst <= per_hour, f"{summary(world, results)}; worst clock hour spent {worst}"


def test_capped_policy_never_spends_over_its_per_hour_cap_in_any_sixty_minutes(
    capped_run: Run,
) -> None:
    """A hard per-hour cap holds over every 60-minute window, not only over clock hours.

    A policy that resets its hourly allowance on the hour can spend twice the cap in
    the sixty minutes around the reset; a spending limit that an operator sets to
    bound the damage of a raid should not allow that.
    """
    world, results = capped_run
    config = _capped_config()
    per_hour = Decimal(config.budget.per_hour_micros or 0) / MICROS_PER_UNIT
    bin_s, cumulative = _cumulative_spend(results)
    step = 3600 // bin_s
    worst = max(
        cumulative[min(i + step, len(cumulative) - 1)] - cumulative[i]
        for i in range(len(cumulative))
    )
    assert worst <= per_hour, f"{summary(world, results)}; worst 60 minutes spent {worst}"
