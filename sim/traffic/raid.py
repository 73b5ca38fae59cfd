"""Raid traffic: the forum raid in waves, the slow drip, and the scripted flood.

A raid participant is one of four sorts, drawn with the spec's shares:

- *once*: sends a single message, mostly a pasted template;
- *human*: a heavy-tailed (Pareto) number of messages, tens of seconds apart with the odd
  long pause, pasting the same template with fresh mutations or writing his own lines;
- *scripted*: an app or script firing hundreds of messages every few seconds;
- *rotating*: a raider hopping across virtual numbers from a few rented blocks, each
  number used a few times.

Participants arrive after forum posts: each wave rises within minutes and decays over
hours, and each post pushes its own template, so the hot text shifts from wave to wave.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from sim.traffic.base import (
    Context,
    Event,
    Participant,
    SpecProblem,
    TrafficSpec,
    fraction,
    grid,
    lognormal_gap,
    merge_participants,
    sorted_arrivals,
)
from sim.traffic.numbers import VirtualBlocks
from sim.traffic.organic import hourly_activity
from sim.traffic.texts import (
    RAID_TEMPLATES,
    SCRIPT_MODES,
    mutate,
    own_insult,
    pick,
    script_text,
    template_weights,
)

ONCE, HUMAN, SCRIPTED, ROTATING = range(4)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(max(low, 1e-9)), math.log(max(high, 1e-9))))


# Rented virtual-number ranges, and flood scripts: a few, in any raid. Each is built up
# front (a prefix, a share), so a typo of a billion filled memory before the first message.
MAX_BLOCKS = 10_000
MAX_SCRIPTS = 10_000


def check_blocks(blocks: int) -> None:
    if blocks > MAX_BLOCKS:
        raise SpecProblem("blocks", f"blocks is at most {MAX_BLOCKS:,}, got {blocks:,}",
                          "a raid rents a few ranges of virtual numbers: write blocks = 3")


@dataclass(frozen=True)
class _RaidTexts:
    """Which template a raider pastes: the current forum post's, or a popular one."""

    rng: random.Random
    weights: tuple[float, ...]

    def template(self, favourite: int | None = None) -> str:
        if favourite is not None and self.rng.random() < 0.55:
            return RAID_TEMPLATES[favourite]
        return self.rng.choices(RAID_TEMPLATES, self.weights)[0]


@dataclass(frozen=True)
class Raid(TrafficSpec):
    """A raid organised on a forum: waves, heavy tails, templates, scripts, rotating numbers."""

    kind: ClassVar[str] = "raid"
    summary: ClassVar[str] = "forum raid: waves, heavy-tailed senders, scripts, virtual numbers"
    default_label: ClassVar[str] = "raid"

    waves_s: tuple[float, ...] = (0.0,)      # forum posts, as offsets from start
    wave_sizes: tuple[float, ...] = ()       # relative size of each wave (default: equal)
    wave_rise_s: float = 300.0
    wave_decay_s: float = 5400.0
    background: float = 0.03                 # steady trickle between waves, vs the average
    once: float = 0.35                       # shares of participants by sort...
    scripted: float = 0.005
    rotating: float = 0.02                   # ...the rest are humans
    own_text: float = 0.25                   # humans who write their own lines
    tail: float = 1.3                        # Pareto exponent of a human's message count
    max_per_sender: int = 400
    gap_s: float = 45.0                      # median gap between a human's messages
    pause_chance: float = 0.06               # chance of a long pause before a message
    pause_length_s: float = 5400.0           # median long pause
    script_messages: tuple[int, int] = (100, 1500)
    script_interval_s: tuple[float, float] = (1.0, 8.0)
    rotating_messages: tuple[int, int] = (5, 200)
    per_number: tuple[int, int] = (1, 4)     # messages a virtual number carries
    blocks: int = 3                          # rented virtual-number blocks
    block_width: int = 4                     # free trailing digits of a block

    def check(self) -> None:
        super().check()
        fraction(self, "once", "scripted", "rotating", "own_text", "pause_chance", "background")
        if self.once + self.scripted + self.rotating > 1.0:
            raise SpecProblem("once", "once + scripted + rotating is more than 1",
                              "lower one of them; the rest of the participants are humans")
        if self.wave_sizes and len(self.wave_sizes) != len(self.waves_s):
            raise SpecProblem("wave_sizes", f"{len(self.wave_sizes)} wave_sizes for "
                              f"{len(self.waves_s)} waves", "give one size per wave, or none")
        if not self.waves_s:
            raise SpecProblem("waves", "a raid needs at least one wave", 'write waves = ["0m"]')
        if self.tail <= 0.5:
            raise SpecProblem("tail", "tail must be more than 0.5", "write tail = 1.3")
        if self.wave_rise_s <= 0:
            raise SpecProblem("wave_rise", "wave_rise must be more than 0",
                              'write wave_rise = "5m"')
        if self.wave_decay_s <= 0:
            raise SpecProblem("wave_decay", "wave_decay must be more than 0",
                              'write wave_decay = "90m"')
        if self.wave_sizes and not any(self.wave_sizes):
            raise SpecProblem("wave_sizes", "every wave has size 0: the raid sends nothing",
                              "give each wave its relative size, e.g. wave_sizes = [1.0, 0.5]")
        if not math.isfinite(sum(self.wave_sizes)):  # [1e308, 1e308]: sent nothing either
            raise SpecProblem("wave_sizes", "wave sizes are relative and add up to more than "
                              "a number can hold: the raid would send nothing",
                              "give each wave its relative size, e.g. wave_sizes = [1.0, 0.5]")
        if self.per_number[0] < 1:
            raise SpecProblem("per_number", "a number carries at least 1 message",
                              "write per_number = [1, 4]")
        if self.max_per_sender < 1:  # 0 made every human participant send nothing
            raise SpecProblem("max_per_sender", "a participant sends at least 1 message",
                              "write max_per_sender = 400")
        if not 1 <= self.block_width <= 7:
            raise SpecProblem("block_width", "block_width is between 1 and 7 digits",
                              "write block_width = 4")
        check_blocks(self.blocks)

    # -- shape ---------------------------------------------------------------------------

    def _waves(self) -> list[tuple[float, float]]:
        sizes = self.wave_sizes or tuple(1.0 for _ in self.waves_s)
        return sorted(zip((self.start_s + w for w in self.waves_s), sizes, strict=True))

    def intensity(self, t: float, waves: list[tuple[float, float]], span_s: float) -> float:
        level = 0.0
        for at, size in waves:
            if t >= at:
                since = t - at
                level += size * (1.0 - math.exp(-since / self.wave_rise_s)) * math.exp(
                    -since / self.wave_decay_s) / self.wave_decay_s
        return level + self.background * sum(s for _, s in waves) / span_s

    # -- participants ----------------------------------------------------------------------

    def _draw(self, rng: random.Random) -> tuple[int, int]:
        roll = rng.random()
        if roll < self.once:
            return ONCE, 1
        roll -= self.once
        if roll < self.scripted:
            return SCRIPTED, round(_log_uniform(rng, *self.script_messages))
        roll -= self.scripted
        if roll < self.rotating:
            return ROTATING, round(_log_uniform(rng, *self.rotating_messages))
        return HUMAN, min(self.max_per_sender, 1 + int(rng.paretovariate(self.tail)))

    def _participants(self, ctx: Context) -> list[tuple[int, int]]:
        drawn: list[tuple[int, int]] = []
        total = 0
        while total < self.messages:
            sort, count = self._draw(ctx.rng)
            count = max(1, min(count, self.messages - total))
            drawn.append((sort, count))
            total += count
        return drawn

    def events(self, ctx: Context) -> Iterator[Event]:
        participants = self._participants(ctx)
        waves = self._waves()
        span_s = max(ctx.end_s - ctx.start_s, 1.0)
        cell_s, cells = grid(ctx.start_s, ctx.end_s)
        weights = [self.intensity(ctx.start_s + (i + 0.5) * cell_s, waves, span_s)
                   for i in range(cells)]
        texts = _RaidTexts(ctx.rng, tuple(template_weights(len(RAID_TEMPLATES))))
        favourites = [texts.template() for _ in waves]
        blocks = VirtualBlocks(ctx.rng, self.blocks, self.block_width)
        arrivals = sorted_arrivals(ctx.rng, len(participants), ctx.start_s, cell_s, weights)

        def favourite_at(t: float) -> int | None:
            current = None
            for (at, _), text in zip(waves, favourites, strict=True):
                if at <= t:
                    current = RAID_TEMPLATES.index(text)
            return current

        def start(t: float, sort: int, count: int) -> Participant:
            favourite = favourite_at(t)
            if sort == SCRIPTED:
                return self._script(ctx, t, count, texts.template(favourite))
            if sort == ROTATING:
                return self._rotating(ctx, t, count, texts, favourite, blocks)
            return self._human(ctx, t, count, texts, favourite)

        return merge_participants(
            ((t, start(t, sort, count))
             for t, (sort, count) in zip(arrivals, participants, strict=False)),
            ctx.end_s,
        )

    def _human(self, ctx: Context, t: float, count: int, texts: _RaidTexts,
               favourite: int | None) -> Participant:
        rng = ctx.rng
        sender = ctx.numbers.fresh()
        own = rng.random() < self.own_text
        template = texts.template(favourite)
        for n in range(count):
            if n:
                t += lognormal_gap(rng, self.gap_s, 1.0)
                if rng.random() < self.pause_chance:
                    t += lognormal_gap(rng, self.pause_length_s, 0.7)
                if rng.random() < 0.15:
                    template = texts.template(favourite)
            yield t, sender, own_insult(rng) if own else mutate(rng, template)

    def _script(self, ctx: Context, t: float, count: int, base: str) -> Participant:
        rng = ctx.rng
        sender = ctx.numbers.fresh()
        mode = pick(rng, SCRIPT_MODES)
        interval = rng.uniform(*self.script_interval_s)
        for n in range(count):
            if n:
                t += interval * rng.uniform(0.75, 1.25)
            yield t, sender, script_text(rng, ctx.pools, mode, base, n + 1)

    def _rotating(self, ctx: Context, t: float, count: int, texts: _RaidTexts,
                  favourite: int | None, blocks: VirtualBlocks) -> Participant:
        rng = ctx.rng
        left = 0
        sender = ""
        template = texts.template(favourite)
        for n in range(count):
            if left == 0:
                sender = blocks.number()
                left = rng.randint(*self.per_number)
                if rng.random() < 0.3:
                    template = texts.template(favourite)
            if n:
                t += lognormal_gap(rng, self.gap_s / 2, 0.8)
            left -= 1
            yield t, sender, mutate(rng, template, 1.3)


@dataclass(frozen=True)
class Drip(TrafficSpec):
    """A slow raid: every participant sends one message, spread over days so that no rate
    looks abnormal. Only the texts (pasted templates) give it away, and not always."""

    kind: ClassVar[str] = "drip"
    summary: ClassVar[str] = "slow raid: one message per participant over a long period"
    default_label: ClassVar[str] = "raid"

    own_text: float = 0.3
    daily_cycle: bool = True      # follow the hour of day like genuine senders

    def check(self) -> None:
        super().check()
        fraction(self, "own_text")

    def events(self, ctx: Context) -> Iterator[Event]:
        cell_s, cells = grid(ctx.start_s, ctx.end_s)
        weights = [hourly_activity(ctx.local_hour(ctx.start_s + (i + 0.5) * cell_s))
                   if self.daily_cycle else 1.0 for i in range(cells)]
        texts = _RaidTexts(ctx.rng, tuple(template_weights(len(RAID_TEMPLATES), 0.8)))
        for t in sorted_arrivals(ctx.rng, self.messages, ctx.start_s, cell_s, weights):
            if ctx.rng.random() < self.own_text:
                body = own_insult(ctx.rng)
            else:
                body = mutate(ctx.rng, texts.template(), 0.8)
            yield t, ctx.numbers.fresh(), body


@dataclass(frozen=True)
class Flood(TrafficSpec):
    """Scripts firing at a fixed high rate, hopping across virtual numbers."""

    kind: ClassVar[str] = "flood"
    summary: ClassVar[str] = "scripted flood at a fixed rate from rotating numbers"
    default_label: ClassVar[str] = "raid"

    rate: float = 2.0                     # messages per second, all scripts together
    scripts: int = 3
    per_number: tuple[int, int] = (1, 3)
    blocks: int = 2
    block_width: int = 4
    virtual: float = 0.8                  # share of numbers from virtual blocks (else fresh)

    def check(self) -> None:
        super().check()
        fraction(self, "virtual")
        if self.rate <= 0:
            raise SpecProblem("rate", "rate must be more than 0",
                              "write rate = 2.0 (messages per second)")
        if self.scripts < 1:
            raise SpecProblem("scripts", "a flood needs at least one script",
                              "write scripts = 3")
        if self.per_number[0] < 1:
            raise SpecProblem("per_number", "a number carries at least 1 message",
                              "write per_number = [1, 3]")
        if not 1 <= self.block_width <= 7:
            raise SpecProblem("block_width", "block_width is between 1 and 7 digits",
                              "write block_width = 4")
        check_blocks(self.blocks)
        if self.scripts > MAX_SCRIPTS:  # a list of one share per script is built at start
            raise SpecProblem("scripts", f"scripts is at most {MAX_SCRIPTS:,}, got "
                              f"{self.scripts:,}", "a flood runs a few scripts: write "
                              "scripts = 3 (rate is all of them together)")

    def planned_messages(self, scenario_end_s: float) -> int:
        # messages = 0 means: as many as the rate fills the window with
        start, end = self.window(scenario_end_s)
        span = (end - start) * self.rate
        # a huge rate (1e308/s) overflows to inf: count it as more than any bound
        filled = math.ceil(span) if math.isfinite(span) else sys.maxsize
        return min(self.messages, filled) if self.messages else filled

    def events(self, ctx: Context) -> Iterator[Event]:
        rng = ctx.rng
        blocks = VirtualBlocks(rng, self.blocks, self.block_width)
        interval = self.scripts / self.rate
        limit = self.messages or math.inf
        total = math.ceil(min(limit, (ctx.end_s - ctx.start_s) * self.rate))
        shares = [total // self.scripts + (i < total % self.scripts) for i in range(self.scripts)]
        starts = sorted(ctx.start_s + rng.uniform(0.0, interval) for _ in shares)
        texts = _RaidTexts(rng, tuple(template_weights(len(RAID_TEMPLATES))))

        def script(t: float, count: int) -> Participant:
            mode = pick(rng, SCRIPT_MODES)
            base = texts.template()
            left = 0
            sender = ""
            for n in range(count):
                if left == 0:
                    sender = blocks.number() if rng.random() < self.virtual else ctx.numbers.fresh()
                    left = rng.randint(*self.per_number)
                if n:
                    t += interval * rng.uniform(0.7, 1.3)
                left -= 1
                yield t, sender, script_text(rng, ctx.pools, mode, base, n + 1)

        return merge_participants(
            ((t, script(t, n)) for t, n in zip(starts, shares, strict=True)), ctx.end_s)
