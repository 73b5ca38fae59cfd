"""Synthetic traffic: generators picked by ``kind`` from a registry, merged into one trace.

``iter_generate(scenario, seed)`` streams ``TraceRecord``s sorted by ``(t, source, n)``;
memory follows the number of senders active at once, so a million-message raid streams in
bounded memory. Every source has its own ``random.Random`` derived from the seed and its
position, so the same scenario and seed give the same records, byte for byte, and never
read the clock or the global random state.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sim.trace import TraceRecord, default_message_id
from sim.traffic.base import Context, TrafficSpec
from sim.traffic.numbers import MobileNumbers
from sim.traffic.organic import Organic, Press
from sim.traffic.raid import Drip, Flood, Raid
from sim.traffic.texts import build_pools

if TYPE_CHECKING:
    from sim.scenario import Scenario

KINDS: dict[str, type[TrafficSpec]] = {
    spec.kind: spec for spec in (Organic, Press, Raid, Drip, Flood)
}


def iter_generate(scenario: Scenario, seed: int | None = None) -> Iterator[TraceRecord]:
    """Stream the scenario's inbound messages in trace order (``seed`` overrides its seed)."""
    seed = scenario.seed if seed is None else seed
    pools = build_pools(seed)
    clock_offset_s = scenario.clock_offset_s
    streams = []
    for index, spec in enumerate(scenario.traffic):
        start_s, end_s = spec.window(scenario.duration_s)
        context = Context(
            rng=random.Random(f"raidsim:{seed}:{index}:{spec.kind}"),
            pools=pools,
            numbers=MobileNumbers(seed, index),
            start_s=start_s,
            end_s=end_s,
            clock_offset_s=clock_offset_s,
        )
        streams.append(_numbered(spec, context, index))
    for position, (t, _, _, sender, body, label) in enumerate(heapq.merge(*streams)):
        yield TraceRecord(t, sender, scenario.number, body, label, default_message_id(position))


def _numbered(
    spec: TrafficSpec, context: Context, index: int
) -> Iterator[tuple[float, int, int, str, str, str]]:
    label = spec.effective_label
    for n, (t, sender, body) in enumerate(spec.events(context)):
        if context.start_s <= t < context.end_s:
            yield round(t, 3), index, n, sender, body, label


def generate(scenario: Scenario, seed: int | None = None) -> list[TraceRecord]:
    """All of ``iter_generate`` as a list."""
    return list(iter_generate(scenario, seed))


__all__ = ["KINDS", "TrafficSpec", "generate", "iter_generate"]
