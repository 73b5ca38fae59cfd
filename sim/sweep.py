"""Parameter sweeps: run a grid of policy settings and find the cost/coverage Pareto front."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from responder.policy import PolicyConfig
from responder.policy.errors import ConfigError
from sim.run import Inputs, Job, run_many


@dataclass(frozen=True)
class Axis:
    """One swept setting: a dotted policy key (``templates.hot_senders``) and its values."""

    key: str
    values: tuple[Any, ...]


def parse_axis(text: str) -> Axis:
    """``templates.hot_senders=4,6,8`` -> Axis; values are read as TOML scalars would be,
    except amounts (keys ending in ``_eur``), which stay strings as a policy file writes them.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise ValueError(f"bad --param {text!r}: expected KEY=V1,V2,... "
                         "(e.g. templates.hot_senders=4,6,8 or surge.observe=10m,20m)")
    values = _split(raw, text)
    texts = [v for v, _quoted in values]
    if not all(texts):  # "3,,4" or "3,4,": a value lost to a typo would go unswept
        raise ValueError(f"bad --param {text!r}: an empty value between commas "
                         "(write KEY=V1,V2,... with a value between each pair of commas)")
    if key.endswith("_eur") or key == "eur_per_segment":  # money stays exact: the
        # policy reads amounts from strings (a float here was refused with a hint to
        # quote it, which a --param value cannot do)
        return Axis(key, tuple(texts))
    try:
        return Axis(key, tuple(v if quoted else _scalar(v) for v, quoted in values))
    except ValueError as exc:
        raise ValueError(f"bad --param {key}: {exc}") from exc


def _split(raw: str, text: str) -> list[tuple[str, bool]]:
    """The comma-separated values of ``raw``, each with whether it was double-quoted. A
    quoted value keeps its commas and spaces and stays a string ("Bonjour, merci" was
    swept as two texts); ``""`` inside one is a quote."""
    values: list[tuple[str, bool]] = []
    i, n = 0, len(raw)
    while True:
        while i < n and raw[i] == " ":
            i += 1
        if i < n and raw[i] == '"':
            i += 1
            chunk = []
            while True:
                end = raw.find('"', i)
                if end < 0:
                    raise ValueError(f"bad --param {text!r}: a quoted value has no closing "
                                     'quote (write KEY="V1, with a comma","V2")')
                chunk.append(raw[i:end])
                if raw.startswith('""', end):
                    chunk.append('"')
                    i = end + 2
                    continue
                i = end + 1
                break
            values.append(("".join(chunk), True))
            while i < n and raw[i] == " ":
                i += 1
            if i < n and raw[i] != ",":
                raise ValueError(f"bad --param {text!r}: text after a quoted value (put a "
                                 "comma between values)")
        else:
            end = raw.find(",", i)
            end = n if end < 0 else end
            values.append((raw[i:end].strip(), False))
            i = end
        if i >= n:
            return values
        i += 1  # the comma


def _scalar(text: str) -> Any:
    if len(text) > 100 and text.lstrip("+-").isdigit():  # int() refuses, float() says inf
        raise ValueError(f"a whole number of {len(text):,} digits is too large for any "
                         "setting")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if not text.isascii():
        return text  # int() and float() also read other scripts' digits: not a number here
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
        return PolicyConfig.from_mapping(table, base=base, prefix="")
    except ConfigError as exc:
        hint = exc.hint  # a policy file's advice, unless the value has an example to show
        if exc.example is not None:  # on the command line: KEY=VALUE, no quotes
            hint = "e.g. --param {}={}".format(*exc.example)
        raise ValueError(f"--param: {exc.message}" + (f" ({hint})" if hint else "")) from exc


@dataclass(frozen=True)
class Point:
    settings: dict[str, Any]
    spend_eur: Decimal
    legit_coverage: float | None  # None when the traffic has no legit sender
    oracle_spend_eur: Decimal
    pareto: bool = False
    # mean legit reply latency p95 over the seeds that had one: knobs such as
    # surge.observe change waiting, not spend or coverage
    reply_latency_p95_s: float | None = None


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
    runs = [(policy, job.seed + i) for _, policy in grid for i in range(seeds)]
    figures = [
        (Decimal(str(run["spend_eur"])), Decimal(str(run["oracle_spend_eur"])),
         run["legit_coverage"], (run.get("reply_latency_s") or {}).get("p95"))
        for run in run_many(job, runs, jobs=jobs, inputs=inputs, progress=progress)
    ]
    points: list[Point] = []
    for n, (settings, _) in enumerate(grid):
        spend, oracle = Decimal(0), Decimal(0)
        covered: list[float] = []
        waits: list[float] = []
        for run_spend, run_oracle, run_coverage, run_p95 in figures[n * seeds:(n + 1) * seeds]:
            if run_p95 is not None:
                waits.append(float(run_p95))
            spend += run_spend
            oracle += run_oracle
            if run_coverage is not None:
                covered.append(float(run_coverage))
        coverage = round(sum(covered) / len(covered), 6) if covered else None
        points.append(Point(settings, (spend / seeds).quantize(Decimal("0.01")), coverage,
                            (oracle / seeds).quantize(Decimal("0.01")),
                            reply_latency_p95_s=round(sum(waits) / len(waits), 3)
                            if waits else None))
    return pareto(points)


def pareto(points: Sequence[Point]) -> list[Point]:
    """Mark the points no other point beats on both spend (lower) and coverage (higher).
    Without legit senders (coverage None) only spend counts."""
    def cover(point: Point) -> float:
        return point.legit_coverage if point.legit_coverage is not None else 0.0

    marked = []
    for p in points:
        dominated = any(
            q.spend_eur <= p.spend_eur and cover(q) >= cover(p)
            and (q.spend_eur < p.spend_eur or cover(q) > cover(p))
            for q in points
        )
        marked.append(replace(p, pareto=not dominated))
    return marked
