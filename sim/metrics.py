"""What a run measured: spend, coverage, latency, decisions; and the results JSON."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from responder.policy.engine import is_e164
from responder.policy.money import from_micros

BIN_S = 60

# The longest stretch of simulated time a run may cover: 366 days. The time series keep one
# slot per BIN_S over the whole run, so a run's memory and results JSON grow with its span
# (a year: 32 MB of JSON, 180-310 MB of memory, 3-7 s); a trace whose "t" is a Unix time, or in
# milliseconds, would otherwise ask for centuries. The trace reader and scenario files
# refuse anything longer (docs/scenarios.md).
MAX_SPAN_S = 366 * 86400


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (deterministic, no interpolation)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def eur(micros: int) -> float:
    """Micro-euros as a JSON number. Exact: at most 6 decimals and 15 significant digits."""
    return float(from_micros(micros))


@dataclass
class Metrics:
    """Counters the model fills while it runs; ``results`` turns them into the JSON."""

    reply_cost_micros: int
    replies: Counter[str] = field(default_factory=Counter)
    segments: int = 0
    billed_micros: int = 0
    held: int = 0
    sender_messages: dict[str, int] = field(default_factory=dict)
    sender_label: dict[str, str] = field(default_factory=dict)
    replied_senders: set[str] = field(default_factory=set)
    legit_latencies: list[float] = field(default_factory=list)
    unknown_outcomes: int = 0
    rejected: int = 0
    provider_errors: Counter[str] = field(default_factory=Counter)
    budget_exhausted_at: float | None = None
    # time series, one slot per BIN_S
    inbound_bins: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    spend_bins: list[int] = field(default_factory=list)
    decision_bins: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    latency_bins: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    oracle_bins: list[int] = field(default_factory=list)

    @staticmethod
    def _bump(series: list[int], index: int, amount: int = 1) -> None:
        if len(series) <= index:
            series.extend([0] * (index + 1 - len(series)))
        series[index] += amount

    # inbound() and decision() run once per message: they bump the current bin in place
    # and leave growing a series to _bump. The totals (messages by kind, decisions by rule)
    # and the naive spend per bin are sums of those bins, taken when asked for.

    @property
    def messages(self) -> Counter[str]:
        """Inbound messages by label ("legit", "raid", "unlabelled")."""
        return Counter({kind: sum(series) for kind, series in self.inbound_bins.items()})

    @property
    def decisions(self) -> Counter[str]:
        """Decisions by rule."""
        return Counter({rule: sum(series) for rule, series in self.decision_bins.items()})

    @property
    def naive_bins(self) -> list[int]:
        """Naive spend (one reply per message) per bin, in micro-euros."""
        width = max((len(series) for series in self.inbound_bins.values()), default=0)
        totals = [0] * width
        for series in self.inbound_bins.values():
            for index, count in enumerate(series):
                totals[index] += count
        return [count * self.reply_cost_micros for count in totals]

    def inbound(self, sender: str, label: str | None, t: float) -> None:
        kind = label or "unlabelled"
        sender_messages = self.sender_messages
        count = sender_messages.get(sender, 0)
        sender_messages[sender] = count + 1
        index = int(t // BIN_S)
        series = self.inbound_bins[kind]
        if index < len(series):
            series[index] += 1
        else:
            self._bump(series, index)
        if count == 0:
            self.sender_label[sender] = kind
            if kind == "legit":
                self._bump(self.oracle_bins, index, self.reply_cost_micros)
        elif kind == "legit" and self.sender_label.get(sender) != "legit":
            # A number seen first in raid traffic, then as a real person: count it legit.
            self.sender_label[sender] = "legit"
            self._bump(self.oracle_bins, index, self.reply_cost_micros)

    def decision(self, rule: str, t: float) -> None:
        index = int(t // BIN_S)
        series = self.decision_bins[rule]
        if index < len(series):
            series[index] += 1
        else:
            self._bump(series, index)

    def sent(self, sender: str, label: str | None, inbound_t: float, t: float, segments: int,
             cost_micros: int, *, left_at: float | None = None) -> None:
        """A billed reply: answered by the provider at ``t``, sent at ``left_at`` (default
        ``t``). Its latency runs from ``inbound_t`` to ``left_at``, when it left."""
        kind = label or "unlabelled"
        self.replies[kind] += 1
        self.segments += segments
        self.billed_micros += cost_micros
        self.replied_senders.add(sender)
        self._bump(self.spend_bins, int(t // BIN_S), cost_micros)
        if kind == "legit":
            left = t if left_at is None else left_at
            latency = left - inbound_t
            self.legit_latencies.append(latency)
            self.latency_bins[int(left // BIN_S)].append(latency)

    # ------------------------------------------------------------------

    def results(
        self,
        *,
        scenario: str,
        seed: int | None,
        policy: str,
        cap_micros: int | None,
        raid_periods: list[tuple[float, float | None]],
        end_s: float,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        cost = self.reply_cost_micros
        messages, decisions = self.messages, self.decisions
        total = sum(messages.values())
        legit_senders = {s for s, k in self.sender_label.items() if k == "legit"}
        replyable = sum(1 for s in self.sender_label if is_e164(s))
        legit_replied = len(legit_senders & self.replied_senders)
        latencies = sorted(self.legit_latencies)
        n_bins = max(
            (len(series) for series in (*self.inbound_bins.values(), self.spend_bins)),
            default=0,
        )
        n_bins = max(n_bins, int(end_s // BIN_S) + 1)
        by_label: dict[str, Counter[int]] = defaultdict(Counter)
        for sender, count in self.sender_messages.items():
            by_label[self.sender_label.get(sender, "unlabelled")][count] += 1
        results: dict[str, Any] = {
            "scenario": scenario,
            "seed": seed,
            "policy": policy,
            "messages": {
                "total": total,
                "legit": messages.get("legit", 0),
                "raid": messages.get("raid", 0),
                "unlabelled": messages.get("unlabelled", 0),
            },
            "replies": {
                "total": sum(self.replies.values()),
                "legit": self.replies.get("legit", 0),
                "raid": self.replies.get("raid", 0),
                "unlabelled": self.replies.get("unlabelled", 0),
                "segments": self.segments,
                "unknown_outcome": self.unknown_outcomes,
                "rejected": self.rejected,
            },
            "spend_eur": eur(self.billed_micros),
            "oracle_spend_eur": eur(len(legit_senders) * cost),
            "naive_spend_eur": eur(total * cost),
            "per_sender_spend_eur": eur(replyable * cost),
            # spend as a multiple of the oracle (1.0 = answered exactly the genuine senders)
            "spend_vs_oracle": (
                round(self.billed_micros / (len(legit_senders) * cost), 4)
                if legit_senders and cost
                else None
            ),
            "reply_cost_eur": eur(cost),
            "senders": {
                "total": len(self.sender_messages),
                "legit": len(legit_senders),
                "raid": sum(1 for k in self.sender_label.values() if k == "raid"),
                "messages_per_sender": {
                    label: {str(k): v for k, v in sorted(hist.items())}
                    for label, hist in sorted(by_label.items())
                },
            },
            "legit_senders": len(legit_senders),
            "legit_senders_replied": legit_replied,
            # null when there is no legit sender (an unlabelled or raid-only trace): a
            # coverage gate then fails closed instead of passing on a vacuous 100 %
            "legit_coverage": (
                round(legit_replied / len(legit_senders), 6) if legit_senders else None
            ),
            # null, not 0, when no legit sender got a reply: a latency gate then fails
            # (thresholds fail closed on null) instead of passing on nothing sent
            "reply_latency_s": {
                "p50": round(percentile(latencies, 50), 3) if latencies else None,
                "p95": round(percentile(latencies, 95), 3) if latencies else None,
                "p99": round(percentile(latencies, 99), 3) if latencies else None,
                "max": round(latencies[-1], 3) if latencies else None,
            },
            "budget": {
                "cap_eur": eur(cap_micros) if cap_micros is not None else None,
                "exhausted_at_s": self.budget_exhausted_at,
            },
            "decisions": {
                "by_rule": dict(sorted(decisions.items())),
                "held": self.held,
            },
            "provider": {"errors": dict(sorted(self.provider_errors.items()))},
            "raid_mode": {
                "periods": [[round(a, 3), round(b if b is not None else end_s, 3)]
                            for a, b in raid_periods],
                "total_s": round(sum((b if b is not None else end_s) - a
                                     for a, b in raid_periods), 3),
            },
            "duration_s": round(end_s, 3),
            "timeseries": self._timeseries(n_bins, raid_periods, end_s),
            "thresholds": [],
            "passed": True,
        }
        if extra:
            results.update(extra)
        return results

    def _timeseries(self, n_bins: int, raid_periods: list[tuple[float, float | None]],
                    end_s: float) -> dict[str, Any]:
        def padded(series: list[int]) -> list[int]:
            return series + [0] * (n_bins - len(series))

        def cumulative_eur(series: list[int]) -> list[float]:
            running, out = 0, []
            for value in padded(series):
                running += value
                out.append(eur(running))
            return out

        latency: dict[str, list[float | None]] = {"p50": [], "p95": [], "p99": []}
        for index in range(n_bins):
            values = sorted(self.latency_bins.get(index, ()))
            for q in (50, 95, 99):
                latency[f"p{q}"].append(round(percentile(values, q), 3) if values else None)
        return {
            "bin_s": BIN_S,
            "inbound": {k: padded(v) for k, v in sorted(self.inbound_bins.items())},
            "spend_eur": cumulative_eur(self.spend_bins),
            "naive_spend_eur": cumulative_eur(self.naive_bins),
            "oracle_spend_eur": cumulative_eur(self.oracle_bins),
            "reply_latency_s": latency,
            "decisions": {k: padded(v) for k, v in sorted(self.decision_bins.items())},
            "raid_mode": [[round(a, 3), round(b if b is not None else end_s, 3)]
                          for a, b in raid_periods],
        }

