"""Genuine senders: people who were given the number, and viewers after a TV report."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import ClassVar

from sim.traffic.base import (
    Context,
    Event,
    Participant,
    SpecProblem,
    TrafficSpec,
    counts_for,
    fraction,
    grid,
    lognormal_gap,
    merge_participants,
    sorted_arrivals,
)
from sim.traffic.texts import organic_first, organic_followup, press_first

# Relative SMS activity by local hour (0h..23h): quiet nights, lunch, a long evening.
HOURLY = (0.30, 0.16, 0.08, 0.04, 0.03, 0.04, 0.08, 0.22, 0.42, 0.52, 0.58, 0.66,
          0.80, 0.78, 0.66, 0.64, 0.70, 0.82, 0.95, 1.00, 1.00, 0.96, 0.80, 0.55)


def hourly_activity(hour: float) -> float:
    """``HOURLY`` interpolated linearly between the hours."""
    low = int(hour) % 24
    share = hour - int(hour)
    return HOURLY[low] * (1.0 - share) + HOURLY[(low + 1) % 24] * share


def sender_counts(ctx: Context, messages: int, low: int, high: int) -> list[int]:
    """``low`` to ``high`` messages each, fewer more likely (weights 1/k^1.6).

    The options stay a ``range`` and the cumulative weights are summed once into a packed
    array (8 bytes an option), in the very order ``random.choices(options, weights)``
    sums them on each call: the same draws, without a list of Python objects per option
    and per draw.
    """
    options = range(low, high + 1)
    cumulative = array("d", accumulate(1.0 / k ** 1.6 for k in options))
    return counts_for(messages, lambda: ctx.rng.choices(options, cum_weights=cumulative)[0])


@dataclass(frozen=True)
class Organic(TrafficSpec):
    """People given the number: Poisson arrivals following the hour of day and the week,
    plus the buzz of the launch fading; each writes 1-3 messages minutes apart."""

    kind: ClassVar[str] = "organic"
    summary: ClassVar[str] = "people given the number: day/night cycle, 1-3 messages each"
    default_label: ClassVar[str] = "legit"

    messages_per_sender: tuple[int, int] = (1, 3)
    gap_s: float = 240.0          # median time between one person's messages
    buzz_s: float = 2 * 86400.0   # the launch buzz decays with this time constant (0: none)
    buzz_floor: float = 0.3       # activity left once the buzz is gone, relative to launch
    weekend: float = 1.25         # Friday evening to Sunday: more bars, more numbers given

    def check(self) -> None:
        super().check()
        fraction(self, "buzz_floor")
        if self.messages_per_sender[0] < 1:
            raise SpecProblem("messages_per_sender", "each sender sends at least 1 message",
                              "write messages_per_sender = [1, 3]")

    def intensity(self, ctx: Context, t: float) -> float:
        level = hourly_activity(ctx.local_hour(t))
        day = ctx.weekday(t)
        if day == 5 or day == 6 or (day == 4 and ctx.local_hour(t) >= 18):
            level *= self.weekend
        if self.buzz_s > 0:
            fade = math.exp(-(t - self.start_s) / self.buzz_s)
            level *= self.buzz_floor + (1.0 - self.buzz_floor) * fade
        return level

    def events(self, ctx: Context) -> Iterator[Event]:
        counts = sender_counts(ctx, self.messages, *self.messages_per_sender)
        cell_s, cells = grid(ctx.start_s, ctx.end_s)
        weights = [self.intensity(ctx, ctx.start_s + (i + 0.5) * cell_s) for i in range(cells)]
        arrivals = sorted_arrivals(ctx.rng, len(counts), ctx.start_s, cell_s, weights)
        return merge_participants(
            ((t, self._person(ctx, t, n)) for t, n in zip(arrivals, counts, strict=False)),
            ctx.end_s,
        )

    def _person(self, ctx: Context, t: float, count: int) -> Participant:
        sender = ctx.numbers.fresh()
        yield t, sender, organic_first(ctx.rng, ctx.pools)
        for _ in range(count - 1):
            t += lognormal_gap(ctx.rng, self.gap_s, 0.9)
            yield t, sender, organic_followup(ctx.rng, ctx.pools)


@dataclass(frozen=True)
class Press(TrafficSpec):
    """A TV report: thousands of genuine curious viewers within the hour, a fast rise and an
    exponential decay. Their texts vary like people's do, and they must all be answered."""

    kind: ClassVar[str] = "press"
    summary: ClassVar[str] = "TV report: a fast wave of genuine curious senders"
    default_label: ClassVar[str] = "legit"

    rise_s: float = 240.0          # time constant of the rise after the broadcast
    decay_s: float = 1500.0        # time constant of the decay
    messages_per_sender: tuple[int, int] = (1, 2)
    gap_s: float = 180.0

    def check(self) -> None:
        super().check()
        if self.rise_s <= 0:
            raise SpecProblem("rise", "rise must be more than 0", 'write rise = "4m"')
        if self.decay_s <= 0:
            raise SpecProblem("decay", "decay must be more than 0", 'write decay = "25m"')
        if self.messages_per_sender[0] < 1:
            raise SpecProblem("messages_per_sender", "each sender sends at least 1 message",
                              "write messages_per_sender = [1, 2]")

    def default_span_s(self) -> float:
        return self.rise_s + 12.0 * self.decay_s

    def events(self, ctx: Context) -> Iterator[Event]:
        counts = sender_counts(ctx, self.messages, *self.messages_per_sender)
        cell_s, cells = grid(ctx.start_s, ctx.end_s)
        cell_s = min(cell_s, max(1.0, self.rise_s / 8))
        cells = max(1, math.ceil((ctx.end_s - ctx.start_s) / cell_s))
        weights = []
        for i in range(cells):
            since = (i + 0.5) * cell_s
            weights.append((1.0 - math.exp(-since / self.rise_s)) * math.exp(-since / self.decay_s))
        arrivals = sorted_arrivals(ctx.rng, len(counts), ctx.start_s, cell_s, weights)
        return merge_participants(
            ((t, self._viewer(ctx, t, n)) for t, n in zip(arrivals, counts, strict=False)),
            ctx.end_s,
        )

    def _viewer(self, ctx: Context, t: float, count: int) -> Participant:
        sender = ctx.numbers.fresh()
        yield t, sender, press_first(ctx.rng, ctx.pools)
        for _ in range(count - 1):
            t += lognormal_gap(ctx.rng, self.gap_s, 0.8)
            yield t, sender, organic_followup(ctx.rng, ctx.pools)
