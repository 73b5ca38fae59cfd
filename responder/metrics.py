"""Prometheus metrics on a per-app registry (so tests can build many apps).

Under ``raidsim serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set by serve before it
spawns the workers) every worker writes its values to files in that directory, and
``/metrics`` adds up the whole process group's (prometheus_client's multiprocess mode):
one scrape gives fleet totals, whichever worker answers it. Gauges say how their
workers' values combine: ``mostrecent`` for those set from the shared database at
scrape time (the scraping worker's fresh value wins), ``livemax`` for the circuit
breaker and raid mode (open, or on, in any live worker). Counters and the histogram add
up, dead workers' included, so they never go backwards when a worker is replaced.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.inbound = Counter(
            "raidsim_inbound_messages", "Inbound messages decided, by decision and rule.",
            ["decision", "rule"], registry=r,
        )
        self.released = Counter(
            "raidsim_released_messages", "Held messages decided again, by decision and rule.",
            ["decision", "rule"], registry=r,
        )
        self.duplicates = Counter(
            "raidsim_inbound_duplicates", "Webhook deliveries of an already stored message.",
            registry=r,
        )
        self.rejected = Counter(
            "raidsim_webhook_rejected", "Webhook requests refused, by reason.", ["reason"],
            registry=r,
        )
        self.replies = Counter(
            "raidsim_replies", "Replies leaving the outbox, by outcome.", ["outcome"], registry=r,
        )
        self.segments = Counter(
            "raidsim_reply_segments", "SMS segments of the replies the provider accepted.",
            registry=r,
        )
        self.provider_errors = Counter(
            "raidsim_provider_errors", "Provider call failures, by kind.", ["kind"], registry=r,
        )
        self.reconciled = Counter(
            "raidsim_reply_lookups", "Look-ups of unknown replies at the provider, by what "
            "they showed (found: sent; absent: queued again; unclear: looked up later).",
            ["lookup"], registry=r,
        )
        self.admin_unauthorised = Counter(
            "raidsim_admin_unauthorised", "Admin API requests refused for a missing or wrong "
            "token.", registry=r,
        )
        self.folded = Counter(
            "raidsim_folded", "What other processes stored that this one folded into its "
            "policy's memory: their messages, and their releases of held replies (0 with "
            "one process).", ["kind"], registry=r,
        )
        for kind in ("message", "release"):  # exported at 0 from the start, as documented
            self.folded.labels(kind)
        self.spend = Gauge("raidsim_spend_eur", "Money reserved or spent on replies.",
                           registry=r, multiprocess_mode="mostrecent")
        self.budget_left = Gauge(
            "raidsim_budget_left_eur", "Total budget left (+Inf without a cap).", registry=r,
            multiprocess_mode="mostrecent",
        )
        self.outbox = Gauge(
            "raidsim_outbox_depth", "Replies in the outbox, by status.", ["status"], registry=r,
            multiprocess_mode="mostrecent",
        )
        self.held = Gauge("raidsim_held_replies", "Replies held by the policy.", registry=r,
                          multiprocess_mode="mostrecent")
        self.breaker = Gauge(
            "raidsim_provider_circuit_open", "1 while the provider circuit breaker is open.",
            registry=r, multiprocess_mode="livemax",
        )
        self.raid_mode = Gauge(
            "raidsim_raid_mode", "1 while the policy is in raid mode (a surge of new senders: "
            "first contacts held).", registry=r, multiprocess_mode="livemax",
        )
        self.webhook_latency = Histogram(
            "raidsim_webhook_latency_seconds", "Time to answer an inbound webhook.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self._inbound_children: dict[tuple[str, str], Any] = {}

    def count_inbound(self, decision: str, rule: str) -> None:
        """``inbound.labels(decision, rule).inc()``, the labelled child looked up once."""
        child = self._inbound_children.get((decision, rule))
        if child is None:
            child = self._inbound_children[decision, rule] = self.inbound.labels(decision, rule)
        child.inc()

    def exposition(self) -> bytes:
        """The text ``/metrics`` serves: this app's registry, or under ``--workers N``
        every worker's values combined (read from ``PROMETHEUS_MULTIPROC_DIR``)."""
        if not os.environ.get(MULTIPROC_DIR_ENV):
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))
