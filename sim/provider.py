"""The SMS provider as the simulator sees it: throughput, latency, errors and faults.

``[provider]`` in a scenario file::

    [provider]
    segments_per_second = 10     # accepted throughput (long code ~1, short code ~100)
    latency_median = "250ms"     # API response time, lognormal
    latency_p95 = "900ms"
    error_rate = 0.002           # 5xx before the request reached the provider: safe to retry
    rate_limit_rate = 0.01       # 429 / 20429: safe to retry after Retry-After
    timeout_rate = 0.0005        # read timeout: maybe billed, never resent ("unknown")
    reject_rate = 0.0            # 4xx such as 21610 (opted out): not billed, not retried
    retry_after = "1s"
    max_attempts = 8
    workers = 4                  # concurrent sender workers

``[[faults]]``::

    [[faults]]
    kind = "outage"          # every request fails to connect
    start = "5d21h"
    duration = "20m"
    [[faults]]
    kind = "rate_limit"      # or "errors", "timeouts": raise that rate for a while
    start = "5d22h"
    duration = "1h"
    rate = 0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from responder.policy.errors import ConfigError, locate
from responder.policy.units import finite, parse_duration, shown

FAULT_KINDS = ("outage", "rate_limit", "errors", "timeouts")
# The live responder's bound on RAIDSIM_SEND_CONCURRENCY, which ``workers`` models: each
# worker is a simulated process, and 10,000,001 of them ran for minutes before the first
# message (a typo, not a provider).
MAX_WORKERS = 1000


@dataclass(frozen=True)
class ProviderModel:
    segments_per_second: float = 10.0
    latency_median_s: float = 0.25
    latency_p95_s: float = 0.9
    error_rate: float = 0.002
    rate_limit_rate: float = 0.01
    timeout_rate: float = 0.0005
    reject_rate: float = 0.0
    retry_after_s: float = 1.0
    max_attempts: int = 8
    workers: int = 4
    # the live outbox's circuit breaker (RAIDSIM_BREAKER_THRESHOLD / _COOLDOWN_S)
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0

    @property
    def sigma(self) -> float:
        """Lognormal shape from the median and the 95th percentile."""
        if self.latency_p95_s <= self.latency_median_s or self.latency_median_s <= 0:
            return 0.0
        return math.log(self.latency_p95_s / self.latency_median_s) / 1.6448536269514722


@dataclass(frozen=True)
class Fault:
    kind: str
    start_s: float
    end_s: float
    rate: float = 1.0


_ALIASES = {"latency_median": "latency_median_s", "latency_p95": "latency_p95_s",
            "retry_after": "retry_after_s", "breaker_cooldown": "breaker_cooldown_s"}


def parse_provider(table: Mapping[str, Any] | None, *, path: str | Path | None = None,
                   text: str | None = None) -> ProviderModel:
    """Build the provider model from a ``[provider]`` table; errors name file and line."""
    model = ProviderModel()
    if not table:
        return model
    known = {f.name: f for f in fields(model)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        name = _ALIASES.get(key, key)
        where = f"provider.{key}"
        if name not in known or (name.endswith("_s") and name == key):
            names = sorted(next((a for a, n in _ALIASES.items() if n == f), f) for f in known)
            raise ConfigError(f"unknown key {where!r}", path=path, line=locate(text, where),
                              hint=f"known keys: {', '.join(names)}")
        try:
            if name.endswith("_s"):
                changes[name] = parse_duration(value)
            elif name in ("max_attempts", "workers", "breaker_threshold"):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"must be a whole number of at least 1, got {value!r}")
                if name == "workers" and value > MAX_WORKERS:
                    raise ValueError(f"must be at most {MAX_WORKERS:,} (the responder's bound "
                                     f"on RAIDSIM_SEND_CONCURRENCY), got {value:,}")
                changes[name] = value
            else:
                if (not isinstance(value, int | float) or isinstance(value, bool)
                        or not finite(value) or value < 0):  # nan, inf, 1e400, 10**400
                    raise ValueError(f"must be a finite number of at least 0, got "
                                     f"{shown(value)}")
                if name.endswith("_rate") and value > 1:
                    raise ValueError(f"is a probability between 0 and 1, got {value!r}")
                changes[name] = float(value)
        except ValueError as exc:
            sep = ":" if name.endswith("_s") else ""  # "provider.retry_after: cannot read..."
            raise ConfigError(f"{where}{sep} {exc}", path=path, line=locate(text, where),
                              hint=_value_hint(key, name)) from exc
    model = replace(model, **changes)
    if model.segments_per_second < MIN_SEGMENTS_PER_SECOND:
        raise ConfigError(f"provider.segments_per_second must be at least "
                          f"{MIN_SEGMENTS_PER_SECOND:g}, got {model.segments_per_second:g}",
                          path=path, line=locate(text, "provider.segments_per_second"),
                          hint=_value_hint("segments_per_second", "segments_per_second"))
    if model.latency_median_s == 0 < model.latency_p95_s and "latency_median" in table:
        raise ConfigError(
            f"provider.latency_median is 0 and latency_p95 {model.latency_p95_s:g} s: a "
            "lognormal with a median of 0 answers every call at once, whatever the p95",
            path=path, line=locate(text, "provider.latency_median"),
            hint="give a median above 0 (e.g. \"250ms\"), or 0 for both for an instant "
            "provider")
    if model.latency_p95_s < model.latency_median_s:  # the lognormal would quietly go flat
        key = "latency_p95" if "latency_p95" in table else "latency_median"
        raise ConfigError(
            f"provider.latency_p95 ({model.latency_p95_s:g} s) is below provider."
            f"latency_median ({model.latency_median_s:g} s)", path=path,
            line=locate(text, f"provider.{key}"),
            hint="the 95th percentile is at least the median; equal values give every "
            "call the same latency")
    problem = outcome_shares_problem(model)
    if problem is not None:
        rates = [key for key in table if _ALIASES.get(key, key).endswith("_rate")]
        raise ConfigError(f"provider: {problem}", path=path,
                          line=locate(text, f"provider.{rates[0]}") if rates else None,
                          hint="each request has one outcome: the rates are shares of "
                          "the requests and add up to 1 at most")
    return model


# One segment every 1,000 s: slower is no provider (a typo such as 1e-300 queued every
# reply for ever in the fake provider, and ran the simulator to its horizon).
MIN_SEGMENTS_PER_SECOND = 0.001


def _value_hint(key: str, name: str) -> str:
    """How to write a ``[provider]`` value, for the error that refused one."""
    if name.endswith("_s"):
        return f'a duration of 0 or more, such as {key} = "250ms"'
    if name in ("max_attempts", "workers", "breaker_threshold"):
        return f"a whole number, such as {key} = {getattr(ProviderModel(), name)}"
    if name.endswith("_rate"):
        return f"a share of the requests between 0 and 1, such as {key} = 0.01"
    return f"segments a second the provider accepts, above 0, such as {key} = 10"


def outcome_shares_problem(model: ProviderModel) -> str | None:
    """Why the model's outcome rates cannot be shares of the requests, or None."""
    shares = {"error_rate": model.error_rate, "rate_limit_rate": model.rate_limit_rate,
              "timeout_rate": model.timeout_rate, "reject_rate": model.reject_rate}
    total = sum(Decimal(repr(v)) for v in shares.values())
    if total > 1:
        listed = " + ".join(f"{k} {v}" for k, v in shares.items() if v)
        return f"the outcome rates add up to {total} ({listed}), more than 1"
    return None


def parse_faults(tables: Sequence[Mapping[str, Any]] | None, *, path: str | Path | None = None,
                 text: str | None = None) -> tuple[Fault, ...]:
    """Build the fault schedule from ``[[faults]]`` tables."""
    faults: list[Fault] = []
    for index, table in enumerate(tables or ()):
        def fail(key: str, message: str, hint: str | None = None,
                 index: int = index) -> ConfigError:
            return ConfigError(message, path=path, line=locate(text, f"faults[{index}].{key}"),
                               hint=hint)

        unknown = set(table) - {"kind", "start", "duration", "rate"}
        if unknown:
            key = sorted(unknown)[0]
            raise fail(key, f"unknown key faults.{key}", "known keys: kind, start, duration, rate")
        kind = table.get("kind")
        if kind not in FAULT_KINDS:
            raise fail("kind", f"unknown fault kind {kind!r}",
                       f"use one of: {', '.join(FAULT_KINDS)}")
        try:
            start = parse_duration(table.get("start", 0))
        except ValueError as exc:
            raise fail("start", f"faults.start: {exc}", "a duration such as \"2d6h\"") from exc
        try:
            duration = parse_duration(table.get("duration", "10m"))
        except ValueError as exc:
            raise fail("duration", f"faults.duration: {exc}",
                       "a duration such as \"30m\"") from exc
        rate = table.get("rate", 1.0)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
            raise fail("rate", f"faults.rate must be between 0 and 1, got {rate!r}",
                       "the share of requests the fault hits while it lasts, such as "
                       "rate = 0.5 (1: all of them)")
        faults.append(Fault(str(kind), start, start + duration, float(rate)))
    return tuple(faults)
