"""What every traffic kind shares: its spec (parsed from a ``[[traffic]]`` table), the
context it runs in, and the engine that turns participants into a time-ordered stream.

A kind is a frozen dataclass subclassing ``TrafficSpec``. Its fields are its TOML keys:
a field ending in ``_s`` is a duration written without the suffix (``start = "5d20h"``),
``tuple[int, int]`` is an inclusive ``[low, high]`` range, ``tuple[float, ...]`` a list.
``check()`` validates values together; ``events(ctx)`` yields ``(t, sender, body)`` sorted
by ``t``, using only ``ctx.rng`` for randomness, so a seed gives one stream.
"""

from __future__ import annotations

import heapq
import math
import random
import types
import typing
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import accumulate, chain
from typing import Any, ClassVar

from responder.policy.units import finite, parse_duration, shown
from sim.trace import closest

if typing.TYPE_CHECKING:
    from sim.traffic.numbers import MobileNumbers
    from sim.traffic.texts import Pools

Event = tuple[float, str, str]  # (t, sender, body)

LABELS = ("legit", "raid")
# The most messages a scenario's traffic may add up to. A run's memory grows with its
# senders (a 1,000,000-message raid peaks at about 540 MB), so a typo such as an extra
# dozen zeros is refused at once instead of running until the machine runs out of memory.
# It also bounds the high end of every integer [low, high] range (messages per sender,
# per script, per number): one participant never sends more than a run takes.
MAX_MESSAGES = 10_000_000


class SpecProblem(ValueError):
    """A bad value in a ``[[traffic]]`` table: the key, what is wrong and the fix."""

    def __init__(self, key: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Context:
    """Where one traffic source runs: its random stream, text pools, numbers and window."""

    rng: random.Random
    pools: Pools
    numbers: MobileNumbers
    start_s: float          # absolute window, already clipped to the scenario
    end_s: float
    clock_offset_s: float   # seconds from Monday 00:00 local time to t = 0

    def local_hour(self, t: float) -> float:
        """Hour of day (0..24) at trace time ``t``."""
        return ((t + self.clock_offset_s) % 86400.0) / 3600.0

    def weekday(self, t: float) -> int:
        """0 = Monday ... 6 = Sunday at trace time ``t``."""
        return int(((t + self.clock_offset_s) // 86400.0) % 7)


@dataclass(frozen=True)
class TrafficSpec:
    """Keys every kind accepts. ``messages`` is how many the participants send."""

    kind: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    default_label: ClassVar[str] = "legit"

    name: str = ""
    start_s: float = 0.0
    duration_s: float | None = None  # None: until the scenario ends
    label: str = ""
    messages: int = 0

    @property
    def effective_label(self) -> str:
        return self.label or self.default_label

    def check(self) -> None:
        """Raise ``SpecProblem`` for values that are wrong together."""
        if self.label and self.label not in LABELS:
            raise SpecProblem("label", f"label must be one of {LABELS}, got {self.label!r}",
                              'write label = "legit" or label = "raid"')

    def default_span_s(self) -> float:
        """How long the source lasts when ``duration`` is not given (default: to the end)."""
        return math.inf

    def window(self, scenario_end_s: float) -> tuple[float, float]:
        """Absolute ``(start, end)`` of this source inside a scenario."""
        span = self.duration_s if self.duration_s is not None else self.default_span_s()
        return self.start_s, min(scenario_end_s, self.start_s + span)

    def planned_messages(self, scenario_end_s: float) -> int:
        """How many messages this source sends in a scenario ending at ``scenario_end_s``
        (a bound for the scenario's checks; ``messages`` for most kinds)."""
        return self.messages

    def events(self, ctx: Context) -> Iterator[Event]:
        raise NotImplementedError


def toml_key(field_name: str) -> str:
    return field_name[:-2] if field_name.endswith("_s") else field_name


def known_keys(spec_class: type[TrafficSpec]) -> list[str]:
    return ["kind", *(toml_key(f.name) for f in fields(spec_class))]


def parse_spec(spec_class: type[TrafficSpec], table: Mapping[str, Any]) -> TrafficSpec:
    """Build ``spec_class`` from a TOML table (without ``kind``); raises ``SpecProblem``."""
    hints = typing.get_type_hints(spec_class)
    by_key = {toml_key(f.name): f.name for f in fields(spec_class)}
    assert len(by_key) == len(fields(spec_class)), f"{spec_class.kind}: two fields, one key"
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "kind":
            continue
        name = by_key.get(key)
        if name is None:
            close = closest(key, by_key) or next(
                (k for k in by_key if k in key or key in k), None)  # "buzz_flor": buzz_floor
            hint = f"did you mean {close!r}? " if close else ""
            raise SpecProblem(key, f"unknown key {key!r} for kind {spec_class.kind!r}",
                              hint + "known keys: " + ", ".join(known_keys(spec_class)))
        values[name] = _convert(key, name, hints[name], raw)
    spec = spec_class(**values)
    spec.check()
    return spec


def _convert(key: str, name: str, hint: Any, raw: Any) -> Any:
    is_duration = name.endswith("_s")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):  # "X | None"
        inner = [a for a in args if a is not type(None)]
        return _convert(key, name, inner[0], raw)
    if origin is tuple:
        if not isinstance(raw, list):
            raise SpecProblem(key, f"{key} must be a list, got {raw!r}",
                              f"write {key} = [{_example(args[0], is_duration)}, ...]")
        if len(args) == 2 and args[1] is not Ellipsis:  # an inclusive [low, high] range
            if len(raw) != 2:
                raise SpecProblem(key, f"{key} must be [low, high], got {raw!r}",
                                  f"write {key} = [1, 3]")
            low, high = (_scalar(key, args[0], v, is_duration) for v in raw)
            if low > high:
                raise SpecProblem(key, f"{key}: low {low!r} is above high {high!r}",
                                  f"write {key} = [{high}, {low}]")
            if args[0] is int and high > MAX_MESSAGES:
                raise SpecProblem(key, f"{key}: high {high:,} is more than the "
                                  f"{MAX_MESSAGES:,} messages a run takes",
                                  f"write a high end of at most {MAX_MESSAGES:,}, such as "
                                  f"{key} = [1, 3]")
            return (low, high)
        return tuple(_scalar(key, args[0], v, is_duration) for v in raw)
    return _scalar(key, hint, raw, is_duration)


def _example(kind: Any, is_duration: bool) -> str:
    return '"30m"' if is_duration else ("1" if kind is int else '"..."' if kind is str else "0.5")


def _scalar(key: str, kind: Any, raw: Any, is_duration: bool) -> Any:
    if is_duration:
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise SpecProblem(key, f"{key}: {exc}", f'write {key} = "90m" or "1d12h"') from exc
    if kind is bool:
        if not isinstance(raw, bool):
            raise SpecProblem(key, f"{key} must be true or false, got {raw!r}",
                              f"write {key} = true or {key} = false, without quotes")
        return raw
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            example = (int(raw) if isinstance(raw, float) and math.isfinite(raw)
                       and abs(raw) < 1e15 else 1)
            if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
                example = int(raw.strip())  # "4600": the number without its quotes
            raise SpecProblem(key, f"{key} must be a whole number, got {raw!r}",
                              f"write {key} = {example}")
        if raw < 0:
            raise SpecProblem(key, f"{key} cannot be negative, got {raw!r}",
                              f"write {key} = {-raw}, or 0")
        return raw
    if kind is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not finite(raw):
            raise SpecProblem(key, f"{key} must be a finite number, got {shown(raw)}",
                              f"write {key} = 0.5")
        if raw < 0:
            raise SpecProblem(key, f"{key} cannot be negative, got {raw!r}",
                              f"write {key} = {-raw!r}, or 0")
        return float(raw)
    if kind is str:
        if not isinstance(raw, str):
            raise SpecProblem(key, f"{key} must be a string, got {raw!r}", f'write {key} = "..."')
        return raw
    raise TypeError(f"unsupported spec field type {kind!r}")  # a bug in a kind, not user input


def fraction(spec: TrafficSpec, *names: str) -> None:
    """Check that each named field is a share between 0 and 1."""
    for name in names:
        value = getattr(spec, name)
        if not 0.0 <= value <= 1.0:
            raise SpecProblem(toml_key(name), f"{toml_key(name)} is a share between 0 and 1, "
                              f"got {value!r}", f"write {toml_key(name)} = 0.25")


# ----------------------------------------------------------------------------- arrivals


def sorted_arrivals(
    rng: random.Random, count: int, start_s: float, cell_s: float, weights: Sequence[float]
) -> Iterator[float]:
    """``count`` times drawn from the density ``weights`` (one per cell), in ascending order.

    Streams in O(len(weights)) memory: the ascending order statistics of uniforms come one by
    one (each the minimum of those left), and the cumulative weights invert them.
    """
    cumulative = list(accumulate(weights))
    total = cumulative[-1] if cumulative else 0.0
    if count <= 0 or total <= 0:
        return
    position = 0.0
    for i in range(count):
        position = 1.0 - (1.0 - position) * rng.random() ** (1.0 / (count - i))
        target = position * total
        cell = min(bisect_right(cumulative, target), len(cumulative) - 1)
        below = cumulative[cell - 1] if cell else 0.0
        inside = (target - below) / weights[cell] if weights[cell] > 0 else 0.0
        yield start_s + (cell + min(max(inside, 0.0), 1.0)) * cell_s


def grid(start_s: float, end_s: float, most_cells: int = 10000) -> tuple[float, int]:
    """A cell size (at least 1 s, at most 60 s) and a cell count covering the window."""
    span = max(end_s - start_s, 0.0)
    cell_s = min(60.0, max(1.0, span / most_cells))
    return cell_s, max(1, math.ceil(span / cell_s))


def counts_for(messages: int, draw: Callable[[], int]) -> list[int]:
    """Per-participant message counts drawn until they add up to exactly ``messages``."""
    counts: list[int] = []
    total = 0
    while total < messages:
        n = max(1, min(draw(), messages - total))
        counts.append(n)
        total += n
    return counts


# ----------------------------------------------------------------------------- participants

Participant = Iterator[Event]


def merge_participants(
    arrivals: Iterable[tuple[float, Participant | None]], end_s: float
) -> Iterator[Event]:
    """Interleave participants into one stream sorted by time, cutting at ``end_s``.

    ``arrivals`` come in time order; each participant yields its own events in time order,
    the first at its arrival. Only one pending event per active participant is held, so
    memory follows how many talk at once, not how many messages there are.
    """
    heap: list[tuple[float, int, str, str, Participant]] = []
    push, pop = heapq.heappush, heapq.heappop
    sequence = 0
    last: tuple[float, Participant | None] = (math.inf, None)  # flushes the heap at the end
    for arrival, participant in chain(arrivals, (last,)):
        while heap and heap[0][0] <= arrival:
            t, key, sender, body, active = pop(heap)
            yield t, sender, body
            following = next(active, None)
            if following is not None and following[0] < end_s:
                push(heap, (max(following[0], t), key, following[1], following[2], active))
        if participant is None:
            break
        first = next(participant, None)
        if first is not None and first[0] < end_s:
            push(heap, (first[0], sequence, first[1], first[2], participant))
            sequence += 1


def lognormal_gap(rng: random.Random, median_s: float, sigma: float) -> float:
    return median_s * math.exp(rng.gauss(0.0, sigma))
