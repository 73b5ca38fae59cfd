"""Parameter sweeps: run a grid of policy settings and find the cost/coverage Pareto front."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from responder.policy import PolicyConfig
from responder.policy.errors import ConfigError
from sim.run import Job, job_from_inputs, run_once


@dataclass(frozen=True)
class Axis:
    """One swept setting: a dotted policy key (``templates.hot_senders``) and its values."""

    key: str
    values: tuple[Any, ...]


def parse_axis(text: str) -> Axis:
    """``templates.hot_senders=4,6,8`` -> Axis; values are read as TOML scalars would be."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise ValueError(f"bad --param {text!r}: expected KEY=V1,V2,... "
                         "(e.g. templates.hot_senders=4,6,8 or surge.observe=10m,20m)")
    values = tuple(_scalar(v.strip()) for v in raw.split(",") if v.strip())
    return Axis(key, values)


def _scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def configure(base: PolicyConfig, settings: Mapping[str, Any]) -> PolicyConfig:
    """Apply dotted settings to a policy through the same checks as a policy file."""
    table: dict[str, Any] = {}
    for dotted, value in settings.items():
        section, _, key = dotted.partition(".")
        if not key:
            table[section] = value
        else:
            table.setdefault(section, {})[key] = value
    try:
        return PolicyConfig.from_mapping(table, base=base, prefix="policy")
    except ConfigError as exc:
        raise ValueError(f"--param: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
                         ) from exc


@dataclass(frozen=True)
class Point:
    settings: dict[str, Any]
    spend_eur: Decimal
    legit_coverage: float
    oracle_spend_eur: Decimal
    pareto: bool = False


@dataclass(frozen=True)
class Inputs:
    """What a job is built from (``job_from_inputs``): a worker process rebuilds it."""

    scenario_path: Path | None = None
    trace_path: Path | None = None
    policy_path: Path | None = None
    seed: int | None = None

    def job(self) -> Job:
        return job_from_inputs(scenario_path=self.scenario_path, trace_path=self.trace_path,
                               policy_path=self.policy_path, seed=self.seed)[0]


# One run's figures: spend, oracle spend (exact, as text) and legit coverage.
_Figures = tuple[str, str, float]


def _figures(job: Job, policy: PolicyConfig, seed: int) -> _Figures:
    results, _ = run_once(replace(job, policy=policy), seed)
    return str(results["spend_eur"]), str(results["oracle_spend_eur"]), results["legit_coverage"]


_worker_job: Job | None = None


def _start_worker(inputs: Inputs) -> None:
    global _worker_job
    _worker_job = inputs.job()


def _worker_figures(policy: PolicyConfig, seed: int) -> _Figures:
    assert _worker_job is not None
    return _figures(_worker_job, policy, seed)


def sweep(job: Job, axes: Sequence[Axis], *, seeds: int = 1,
          progress: Callable[[int], None] | None = None, jobs: int = 1,
          inputs: Inputs | None = None) -> list[Point]:
    """Every combination of the axes, each over ``seeds`` seeds (means reported).

    With ``jobs`` > 1 the runs are shared among that many worker processes, each of
    which rebuilds the job from ``inputs``; every run is deterministic and the figures
    are combined in grid order, so the points are the same as with one process.
    """
    grid = []
    for combo in itertools.product(*(axis.values for axis in axes)):
        settings = {axis.key: value for axis, value in zip(axes, combo, strict=True)}
        grid.append((settings, configure(job.policy, settings)))  # bad values fail here
    tasks = [(policy, job.seed + i) for _, policy in grid for i in range(seeds)]
    figures = list(_run_all(job, tasks, progress, jobs, inputs))
    points: list[Point] = []
    for n, (settings, _) in enumerate(grid):
        spend, coverage, oracle = Decimal(0), 0.0, Decimal(0)
        for run_spend, run_oracle, run_coverage in figures[n * seeds:(n + 1) * seeds]:
            spend += Decimal(run_spend)
            oracle += Decimal(run_oracle)
            coverage += float(run_coverage)
        points.append(Point(settings, (spend / seeds).quantize(Decimal("0.01")),
                            round(coverage / seeds, 6), (oracle / seeds).quantize(Decimal("0.01"))))
    return pareto(points)


def _run_all(job: Job, tasks: Sequence[tuple[PolicyConfig, int]],
             progress: Callable[[int], None] | None, jobs: int,
             inputs: Inputs | None) -> Iterator[_Figures]:
    """Each task's figures, in task order."""
    if jobs <= 1 or len(tasks) <= 1:
        for done, (policy, seed) in enumerate(tasks, 1):
            yield _figures(job, policy, seed)
            if progress is not None:
                progress(done)
        return
    if inputs is None:
        raise ValueError("running a sweep in several processes needs the job's inputs")
    # spawn: a fresh interpreter per worker, the same on every platform
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)),
                             mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(inputs,)) as pool:
        futures = [pool.submit(_worker_figures, policy, seed) for policy, seed in tasks]
        for done, future in enumerate(futures, 1):
            yield future.result()
            if progress is not None:
                progress(done)


def pareto(points: Sequence[Point]) -> list[Point]:
    """Mark the points no other point beats on both spend (lower) and coverage (higher)."""
    marked = []
    for p in points:
        dominated = any(
            q.spend_eur <= p.spend_eur and q.legit_coverage >= p.legit_coverage
            and (q.spend_eur < p.spend_eur or q.legit_coverage > p.legit_coverage)
            for q in points
        )
        marked.append(replace(p, pareto=not dominated))
    return marked
