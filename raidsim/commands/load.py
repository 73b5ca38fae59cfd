"""``raidsim load``: replay traffic against a live responder with Locust, then score it.

Locust runs in a subprocess (``scenarios/locustfile.py``): ``import locust`` patches the
process with gevent, so this module never imports it. The replies are counted where they
are paid for, in the fake provider's bill, and the results JSON has the shape
``raidsim simulate`` writes (docs/results.md).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from raidsim.cli import seed_value

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
POLL_S = 0.25
# after the run, how long to wait (at least) for a fake provider that does not answer
# (an outage closing its port) before the run is given up as unscorable
BILL_WAIT_S = 30.0
MAX_WALL_S = 30 * 86400  # a plan that would take longer is a --speed typo
# a webhook sent this much later than its due time (p95) skews the responder's view of time
LAG_WARN_S = 1.0
# wall seconds from setting the fake's clock to the first webhook: Locust's start-up
START_DELAY_S = 2.0
RELEASE_POLL_S = 1.0  # how often /metrics is read while Locust sends (releases' times)
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143, as `raidsim serve` after a SIGTERM
STOP_GRACE_S = 10.0  # how long Locust has to stop on SIGTERM before it is killed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "load",
        help="replay a scenario or trace against a live responder with Locust",
        description=(
            "Send a scenario's traffic (or a trace) to a running responder as signed Twilio "
            "webhooks over real HTTP with Locust, time compressed by --speed, then read "
            "what was paid from the fake provider's bill (raidsim fake-provider) and the "
            "responder's metrics, and write the results JSON raidsim simulate writes. "
            "Loopback only. Note: the responder's policy runs on its own wall clock, so a "
            "compressed replay looks like a faster raid to it."
        ),
        epilog=(
            "example (docs/live-load.md):\n"
            "  export RAIDSIM_TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef\n"
            "  export RAIDSIM_TWILIO_AUTH_TOKEN=test-auth-token-0123456789\n"
            "  raidsim fake-provider --port 8099 &\n"
            "  RAIDSIM_TWILIO_API_BASE=http://127.0.0.1:8099 \\\n"
            "      RAIDSIM_PUBLIC_URL=http://127.0.0.1:8000 raidsim serve --port 8000 &\n"
            "  raidsim load scenarios/anti-relous-2017.toml --from 6d12h30m --speed 60 \\\n"
            "      --max-messages 2000 --target http://127.0.0.1:8000 \\\n"
            "      --provider http://127.0.0.1:8099 --json results.json --report report/ \\\n"
            "      --threshold 'spend_eur<=100'\n"
            "  (it exits 1: the scenario's own legit_coverage threshold fails, because the\n"
            "  replies held during that raid wave are released after the run; the docs say\n"
            "  why, and how to gate on cost only)\n\n"
            "exit codes:\n"
            "  0    pass\n"
            "  1    a threshold failed, the run was aborted, or replies were still queued\n"
            "       in the responder's outbox after --settle (see --allow-unsettled)\n"
            "  2    usage or input error; also a run that measured nothing: every webhook\n"
            "       refused with 403, or every accepted one a message the responder had;\n"
            "       and a responder or fake provider that stops answering mid-run\n"
            "  130  Ctrl-C; 143 SIGTERM (Locust is stopped first: no webhook is sent\n"
            "       once load has exited)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", nargs="?", type=Path, metavar="SCENARIO.toml",
                        help="scenario whose traffic (and [thresholds]) to use")
    parser.add_argument("--trace", type=Path, metavar="FILE.jsonl",
                        help="replay this trace instead of the scenario's traffic")
    parser.add_argument("--target", default="http://127.0.0.1:8000",
                        help="the responder's base URL (default http://127.0.0.1:8000)")
    parser.add_argument("--provider", default="http://127.0.0.1:8099",
                        help="the fake provider's base URL (default http://127.0.0.1:8099)")
    parser.add_argument("--auth-token", default=None,
                        help="Twilio auth token that signs webhooks "
                        "(default $RAIDSIM_TWILIO_AUTH_TOKEN)")
    parser.add_argument("--admin-token", default=None,
                        help="responder admin token, to read spend and caps "
                        "(default $RAIDSIM_ADMIN_TOKEN; optional)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="trace seconds per wall second (default 1)")
    parser.add_argument("--from", dest="start", default="0s", metavar="DURATION",
                        help="skip the traffic before this trace time, e.g. 5d20h")
    parser.add_argument("--max-messages", type=int, default=None, metavar="N",
                        help="send at most N messages")
    parser.add_argument("--duration", default=None, metavar="DURATION",
                        help="stop sending after this much wall time, e.g. 5m")
    parser.add_argument("--users", type=int, default=20,
                        help="Locust users (default 20): in trace order, each is ready with "
                        "the next webhooks while one is answered; with --unordered, up to "
                        "this many in flight")
    parser.add_argument("--unordered", action="store_true",
                        help="post webhooks concurrently, up to --users in flight, instead of "
                        "each once the one before it is answered: more load on the responder, "
                        "but messages due at once are decided in whichever order they arrive, "
                        "so decisions under a cap can differ from raidsim simulate's")
    parser.add_argument("--settle", default="10s", metavar="DURATION",
                        help="after the last webhook, wait up to this long for replies to "
                        "reach the provider (default 10s)")
    parser.add_argument("--allow-unsettled", action="store_true",
                        help="do not fail the run when replies are still queued in the "
                        "responder's outbox after --settle (by default an implicit check, "
                        "live.unsettled_replies <= 0, fails: spend_eur leaves them out); "
                        "they are still warned about and counted in live.unsettled_replies")
    parser.add_argument("--seed", type=seed_value, default=None, metavar="N",
                        help="scenario traffic seed, 0 or more")
    parser.add_argument("--json", type=Path, dest="json_out", metavar="OUT",
                        help="write the results JSON here ('-' for stdout)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write results.json, report.html, plots, summary.md, junit.xml")
    parser.add_argument("--threshold", action="append", default=[], metavar="EXPR",
                        help="pass/fail rule on a results key, e.g. 'spend_eur<=600' "
                        "(repeatable; adds to the scenario's [thresholds], where a "
                        "threshold written with abort_on_fail = true stops the run early)")
    parser.set_defaults(func=run)


# -- inputs ----------------------------------------------------------------------------


def _loopback(url: str, what: str) -> str:
    from raidsim.cli import UsageError

    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for "99999" or "abc"
    except ValueError as exc:
        raise UsageError(f"{what} {url!r} is not a valid URL ({exc}): write "
                         "http://127.0.0.1:PORT") from exc
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or port is None:
        raise UsageError(f"{what} {url!r} must be http://127.0.0.1:PORT (loopback only)")
    return url.rstrip("/")


def plan_records(records: Iterable[Any], *, start_s: float, speed: float,
                 max_messages: int | None, duration_s: float | None) -> Iterator[Any]:
    """The records to send: from ``start_s`` on, bounded by count and wall duration."""
    first: float | None = None
    sent = 0
    for record in records:
        if record.t < start_s:
            continue
        if max_messages is not None and sent >= max_messages:
            return
        if first is None:
            first = record.t
        if duration_s is not None and (record.t - first) / speed > duration_s:
            return
        sent += 1
        yield record


# -- live reads --------------------------------------------------------------------------


def _is_ready(response: Any) -> bool:
    """Whether a 200 from ``GET /readyz`` is raidsim's (``{"status": "ready"}``)."""
    try:
        data = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("status") == "ready"


def provider_mismatch(sends_to: Any, provider: str) -> str | None:
    """Why the responder's replies would not reach ``--provider`` (its ``/readyz`` says
    where it sends them), or None. A responder wired to a real provider would get the
    whole trace as signed webhooks and text the trace's numbers, at a real price."""
    if not isinstance(sends_to, str):
        return None  # an older responder says nothing: warned about, not refused
    if sends_to == "remote":
        return ("the responder at --target sends its replies to a remote provider (its "
                "RAIDSIM_TWILIO_API_BASE), not to --provider: replaying would text the "
                "trace's numbers for real, at a real price (hint: start a responder with "
                f"RAIDSIM_TWILIO_API_BASE={provider} for the rehearsal)")
    if _same_origin(sends_to, provider):
        return None
    return (f"the responder at --target sends its replies to {sends_to}, not to --provider "
            f"{provider}: the bill read would not be this run's (hint: point --provider at "
            f"{sends_to}, or restart the responder with RAIDSIM_TWILIO_API_BASE={provider})")


def _same_origin(a: str, b: str) -> bool:
    """Whether two loopback URLs name one server (``localhost`` and ``127.0.0.1`` alike)."""
    def origin(url: str) -> tuple[str, str, int | None]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        host = "127.0.0.1" if host == "localhost" else host
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        return parts.scheme, host, port

    try:
        return origin(a) == origin(b)
    except ValueError:
        return False


def _align_clock(client: Any, provider: str, first_t: float, in_s: float) -> None:
    """Set the fake's scenario clock to ``first_t`` in ``in_s`` wall seconds. An older fake
    without ``POST /_fake/clock`` keeps its own clock (from its start): said, not fatal."""
    import httpx

    from raidsim.cli import UsageError

    try:
        response = client.post(provider + "/_fake/clock",
                               json={"scenario_time_s": first_t, "in_s": in_s})
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot set the fake provider's clock at {provider}: {exc}") from exc
    if response.status_code == 404:
        print("raidsim load: warning: the fake provider does not take POST /_fake/clock (an "
              "older raidsim): its fault windows count from its own start, not from the "
              "first message", file=sys.stderr)
    elif response.status_code != 200:
        raise UsageError(f"the fake provider at {provider} refused to set its clock: "
                         f"{response.text[:200]} (hint: give each run a fake provider of "
                         "its own)")


def _get_json(client: Any, url: str, **kwargs: Any) -> Any:
    response = client.get(url, **kwargs)
    response.raise_for_status()
    return response.json()


def budget_cap(admin_budget: Mapping[str, Any] | None, scenario: Any) -> Decimal | None:
    """The total cap for ``budget.cap_eur``: the responder's own, as its admin API reports
    it (``null``: no cap, whatever the scenario says); without the admin API, the
    scenario's, which is what the responder runs when it was started with that policy."""
    if admin_budget is not None:
        total = admin_budget.get("total_eur")
        return None if total is None else Decimal(str(total))
    if scenario is not None and scenario.policy.budget.enabled:
        from responder.policy.money import from_micros

        micros = scenario.policy.budget.total_micros
        return None if micros is None else from_micros(micros)
    return None


def _samples(text: str) -> Iterator[tuple[str, str]]:
    """Each sample of Prometheus text as (name with its labels, value)."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            yield name, value


def _labels(name: str) -> dict[str, str]:
    """The labels of a Prometheus sample name: ``a_total{x="1",y="2"}`` -> {x: 1, y: 2}."""
    return {key: value.strip('"') for key, _, value in
            (part.partition("=") for part in name[name.index("{") + 1:-1].split(","))}


def parse_metrics(text: str) -> dict[str, Any]:
    """The responder's counters (decisions, replies by outcome, provider errors by kind)
    and gauges from its Prometheus text."""
    decisions: Counter[str] = Counter()
    replies: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    gauges: dict[str, float] = {}
    for name, value in _samples(text):
        if name.startswith(("raidsim_inbound_messages_total{", "raidsim_released_messages_total{")):
            labels = _labels(name)
            kind = "inbound" if name.startswith("raidsim_inbound") else "released"
            decisions[f"{kind}.{labels['decision']}:{labels['rule']}"] += int(float(value))
        elif name.startswith("raidsim_replies_total{"):
            replies[_labels(name)["outcome"]] += int(float(value))
        elif name.startswith("raidsim_provider_errors_total{"):
            errors[_labels(name)["kind"]] += int(float(value))
        elif name in ("raidsim_held_replies", "raidsim_spend_eur",
                      "raidsim_inbound_duplicates_total"):
            gauges[name] = float(value)
    return {"decisions": dict(sorted(decisions.items())),
            "replies": dict(sorted(replies.items())),
            "provider_errors": dict(sorted(errors.items())), **gauges}


def outbox_queued(text: str) -> int | None:
    """Replies the responder still has to send (``pending`` and ``sending`` in its
    ``raidsim_outbox_depth`` gauge), or None when its metrics do not say."""
    queued: int | None = None
    for name, value in _samples(text):
        if name in ('raidsim_outbox_depth{status="pending"}',
                    'raidsim_outbox_depth{status="sending"}'):
            queued = (queued or 0) + int(float(value))
    return queued


class MetricsPoll:
    """The responder's ``/metrics`` read during a run: what its outbox still holds, and
    when its ``released.*`` counters moved, that is when held messages were decided
    (``timeseries.decisions`` places them at the read that saw them)."""

    def __init__(self, client: Any, target: str, before: Mapping[str, Any],
                 wall: Callable[[], float] = time.time) -> None:
        self.client, self.target, self.wall = client, target, wall
        self.snapshots: list[tuple[float, dict[str, int]]] = [(wall(), _released(before))]

    def read(self) -> int | None:
        """Replies still to send (None when the metrics do not say or cannot be read)."""
        import httpx

        try:
            text = self.client.get(self.target + "/metrics").text
        except httpx.HTTPError:
            return None
        self.record(parse_metrics(text))
        return outbox_queued(text)

    def record(self, metrics: Mapping[str, Any]) -> None:
        """``metrics`` (``parse_metrics``) as read now."""
        self.snapshots.append((self.wall(), _released(metrics)))

    def since(self, wall: float) -> float:
        return wall - self.snapshots[-1][0]

    def releases(self) -> list[tuple[float, str, int]]:
        """(wall time of the read, rule, how many more) for each rise of a released.*
        counter between two reads."""
        out: list[tuple[float, str, int]] = []
        for (_, before), (at, now) in itertools.pairwise(self.snapshots):
            for key, count in sorted(now.items()):
                more = count - before.get(key, 0)
                if more > 0:
                    out.append((at, key.partition(":")[2], more))
        return out


def _released(metrics: Mapping[str, Any]) -> dict[str, int]:
    return {key: n for key, n in metrics.get("decisions", {}).items()
            if key.startswith("released.")}


def settle(read_bill: Any, read_queued: Any, bill: dict[str, Any], settle_s: float, *,
           clock: Any = time.monotonic, sleep: Any = time.sleep,
           stable_s: float = 1.0) -> tuple[dict[str, Any], int | None]:
    """Wait, at most ``settle_s``, until the bill has not moved for ``stable_s``, the
    responder's outbox has nothing queued and the provider holds no accepted message it
    has yet to bill (its throughput queue: ``pending`` in the bill); the last bill and
    what is still queued on either side. ``read_bill`` returns None when the provider
    does not answer."""
    deadline = clock() + settle_s
    stable_since = clock()
    queued = _unsettled(read_queued(), bill)
    while clock() < deadline and (clock() - stable_since < stable_s or queued):
        sleep(POLL_S)
        now_bill = read_bill()
        if now_bill is None:  # the provider did not answer (an outage): not settled
            stable_since = clock()
        elif (now_bill["count"], now_bill.get("pending")) != (bill["count"],
                                                              bill.get("pending")):
            bill, stable_since = now_bill, clock()
        queued = _unsettled(read_queued(), bill)
    return bill, queued


def _unsettled(outbox: int | None, bill: Mapping[str, Any]) -> int | None:
    """Replies still on their way: queued in the responder's outbox, or accepted by the
    provider and waiting in its throughput queue (billed when they leave it: a provider
    at one segment every 5 s looked settled after 1 s still, and the run passed on part
    of its spend). None when neither side says."""
    pending = bill.get("pending")
    if outbox is None and not isinstance(pending, int):
        return None
    return (outbox or 0) + (pending if isinstance(pending, int) else 0)


def reply_of(scenario: Any, admin_budget: Mapping[str, Any] | None,
             bill: Mapping[str, Any]) -> tuple[str | None, Decimal | None]:
    """The reply text and price per segment for ``reply``: the scenario's, as the reply's
    cost is (``reply_cost_eur``); without a scenario, the responder's text (admin API) and
    the fake provider's price. A responder whose text differs from the scenario's is
    warned about: its replies may cost another number of segments."""
    admin_text = (admin_budget or {}).get("reply_text")
    if scenario is not None:
        text = scenario.policy.reply_text
        if isinstance(admin_text, str) and admin_text != text:
            print("raidsim load: warning: the responder replies with another text than the "
                  f"scenario's reply.text ({admin_text!r}): reply, reply_cost_eur, naive and "
                  "oracle spend use the scenario's; spend_eur is what was billed",
                  file=sys.stderr)
        return text, scenario.policy.eur_per_segment
    price = bill.get("eur_per_segment")
    return (admin_text if isinstance(admin_text, str) else None,
            Decimal(str(price)) if price is not None else None)


def _percentile(values: list[float], q: float) -> float | None:
    """The simulator's percentile (nearest rank), so live and simulated figures compare."""
    from sim.metrics import percentile

    if not values:
        return None  # nothing measured: null in the results, and a threshold on it fails
    return round(percentile(sorted(values), round(q * 100)), 6)


def build_results(*, name: str, seed: int, sent: list[dict[str, Any]],
                  billed: list[dict[str, Any]], bill: dict[str, Any],
                  reply_cost_micros: int | None, cap_eur: Any,
                  extra: dict[str, Any], speed: float | None = None,
                  responder: Mapping[str, Any] | None = None,
                  reply_text: str | None = None, eur_per_segment: Decimal | None = None,
                  raid_periods: Sequence[Sequence[float | None]] | None = None,
                  releases: Sequence[tuple[float, str, int]] | None = None,
                  planned: Sequence[Mapping[str, Any]] | None = None
                  ) -> dict[str, Any]:
    """The results JSON (docs/results.md) from what was sent and what the provider billed.

    ``speed`` (trace seconds per wall second) places the billed replies in trace time for
    ``timeseries.spend_eur`` and ``timeseries.reply_latency_s`` (left out without it);
    ``responder`` (this run's share of the responder's counters, ``live.responder``)
    gives the final decisions of the held messages (its ``decisions``), the replies'
    outcomes (``replies``) and the provider's errors (``provider_errors``), each where
    it has that key.
    ``reply_text`` and ``eur_per_segment`` give ``reply``; ``raid_periods`` (the
    responder's, ``[start, end or None]`` in Unix seconds) give ``raid_mode`` in trace
    time, with ``speed``; ``releases`` (``MetricsPoll.releases``) place the held
    messages' later decisions in ``timeseries.decisions``, with ``speed``. ``planned``
    (the run's plan: every message it meant to send, ``{"id", "from", "label", ...}``)
    makes a reply to a planned message this run's even when Locust recorded no answer for
    it (a webhook in flight when an abort stopped it)."""
    from responder.policy.engine import is_e164
    from responder.policy.money import from_micros

    delivered = [s for s in sent if s["status"] == 200]
    billed, foreign = own_replies(sent, billed, planned)
    # A sender's label as sim.metrics counts it: its first message's ("unlabelled" when
    # none), but legit as soon as one of its messages is (a number seen first in raid
    # traffic, then as a real person). A reply counts, and is timed, as the simulator
    # does it: under the label of the message it answers, from when that message came,
    # when the responder names that message (its status callback's ?reply=, with
    # RAIDSIM_PUBLIC_URL set); else under its sender's first label, and only a sender's
    # first reply is timed, from the sender's first message.
    first_label: dict[str, str] = {}
    label_of: dict[str, str] = {}
    first_sent: dict[str, float] = {}
    by_id = {s["id"]: s for s in delivered if "id" in s}
    # a planned message with no recorded answer (in flight when Locust was stopped): its
    # reply counts under its label, untimed (its send time is unknown)
    unrecorded = {p["id"]: p for p in planned or () if "id" in p and p["id"] not in by_id}
    planned_label: dict[str, str] = {}  # likewise by number, without ?reply=
    for p in planned or ():
        if "from" in p:
            planned_label.setdefault(p["from"], p.get("label") or "unlabelled")
    for s in delivered:
        kind = s.get("label") or "unlabelled"
        first_label.setdefault(s["from"], kind)
        if kind == "legit" or s["from"] not in label_of:
            label_of[s["from"]] = kind
        first_sent.setdefault(s["from"], s["sent_at"])
    labels = Counter(s.get("label") or "unlabelled" for s in delivered)
    replies: Counter[str] = Counter()
    replied: set[str] = set()
    latencies: list[float] = []
    timed: list[tuple[float, float]] = []  # (wall time the reply was billed, its latency)
    for m in billed:
        answered = by_id.get(m.get("reply_to") or "")
        latency: float | None = None
        in_flight = unrecorded.get(m.get("reply_to") or "")
        if answered is not None:
            kind = answered.get("label") or "unlabelled"
            replies[kind] += 1
            if kind == "legit":
                latency = max(0.0, m["wall_at"] - answered["sent_at"])
        elif in_flight is not None:
            replies[in_flight.get("label") or "unlabelled"] += 1
        else:
            replies[first_label.get(m["to"]) or planned_label.get(m["to"], "unlabelled")] += 1
            if (label_of.get(m["to"]) == "legit" and m["to"] not in replied
                    and m["to"] in first_sent):
                latency = max(0.0, m["wall_at"] - first_sent[m["to"]])
        if latency is not None:
            latencies.append(latency)
            timed.append((m["wall_at"], latency))
        replied.add(m["to"])
    legit_senders = {s for s, label in label_of.items() if label == "legit"}
    if reply_cost_micros is None and billed and billed[0].get("price_micros") is not None:
        # neither a scenario nor --admin-token gave the reply's price: the bill does
        reply_cost_micros = int(billed[0]["price_micros"])
    cost = reply_cost_micros or 0

    # the bill less the replies to messages of an earlier run (see own_replies)
    foreign_micros = sum(int(m.get("price_micros") or 0) for m in foreign)
    spend_micros = int(bill["amount_micros"]) - foreign_micros

    def per_reply(count: int) -> Decimal | None:  # unknown reply price: no figure, not 0
        return from_micros(cost * count) if reply_cost_micros is not None else None
    # when the first webhook was dropped for the total cap (the responder names each
    # webhook's decision in X-Raidsim-Decision), in trace time, as the simulator reports it
    exhausted = [s["t"] for s in delivered if s.get("decision") == "drop budget_total"]
    # Senders as sim.metrics counts them (label_of: first label, legit once seen legit).
    sender_messages = Counter(s["from"] for s in delivered)
    histograms: dict[str, Counter[int]] = {}
    for sender, n in sender_messages.items():
        histograms.setdefault(label_of[sender], Counter())[n] += 1
    # Final decisions by rule: each webhook's own (X-Raidsim-Decision), except a held one
    # ("defer ..."), decided later; those come from the responder's released.* counters,
    # by rule only (a message still held at the end is in neither).
    by_rule: Counter[str] = Counter()
    held = 0
    for s in delivered:
        action, _, rule = (s.get("decision") or "").partition(" ")
        if action == "defer":
            held += 1
        elif action in ("reply", "drop") and rule:
            by_rule[rule] += 1
    for key, n in (responder or {}).get("decisions", {}).items():
        kind, _, decided = key.partition(".")
        if kind == "released" and n > 0:
            by_rule[decided.partition(":")[2]] += n
    results: dict[str, Any] = {
        "scenario": name, "seed": seed, "policy": "live",
        "messages": {"total": len(delivered), "legit": labels["legit"],
                     "raid": labels["raid"], "unlabelled": labels["unlabelled"]},
        "replies": {"total": len(billed), "legit": replies["legit"], "raid": replies["raid"],
                    "unlabelled": replies["unlabelled"],
                    "segments": sum(m["segments"] for m in billed)},
        "spend_eur": from_micros(spend_micros),
        "oracle_spend_eur": per_reply(len(legit_senders)),
        "naive_spend_eur": per_reply(len(delivered)),
        "legit_senders": len(legit_senders),
        "legit_senders_replied": len(legit_senders & replied),
        "legit_coverage": round(len(legit_senders & replied) / len(legit_senders), 6)
        if legit_senders else None,  # no legit sender: no coverage to claim
        "reply_latency_s": {"p50": _percentile(latencies, 0.5),
                            "p95": _percentile(latencies, 0.95),
                            "p99": _percentile(latencies, 0.99)},
        "budget": {"cap_eur": cap_eur,
                   "exhausted_at_s": min(exhausted) if exhausted else None},
        "reply_cost_eur": per_reply(1),
        # spend as a multiple of the oracle, as raidsim simulate reports it
        "spend_vs_oracle": round(spend_micros / (cost * len(legit_senders)), 4)
        if cost and legit_senders else None,
        # one reply per distinct E.164 sender, whatever its label, as simulate counts it
        "per_sender_spend_eur": per_reply(sum(1 for x in sender_messages if is_e164(x))),
        "senders": {
            "total": len(sender_messages), "legit": len(legit_senders),
            "raid": sum(1 for label in label_of.values() if label == "raid"),
            "messages_per_sender": {label: {str(k): v for k, v in sorted(hist.items())}
                                    for label, hist in sorted(histograms.items())},
        },
        "decisions": {"by_rule": dict(sorted(by_rule.items())), "held": held},
        **extra,
    }
    results["reply_latency_s"]["max"] = (round(max(latencies), 6) if latencies else None)
    if responder is not None and "replies" in responder:
        outcomes = responder["replies"]
        results["replies"]["unknown_outcome"] = int(outcomes.get("unknown", 0))
        # refunded and never sent: refused for good, or cancelled (an operator's block)
        results["replies"]["rejected"] = int(outcomes.get("failed", 0)
                                             + outcomes.get("cancelled", 0))
    if responder is not None and "provider_errors" in responder:
        errors: Counter[str] = Counter()
        for kind, n in responder["provider_errors"].items():
            errors[provider_error_kind(kind)] += int(n)
        results["provider"] = {"errors": dict(sorted(errors.items()))}
    if reply_text is not None:
        from responder.sms import segment_info

        results["reply"] = {"text": reply_text, **segment_info(reply_text).__dict__,
                            "eur_per_segment": float(eur_per_segment)
                            if eur_per_segment is not None else None}
    clock = _trace_clock(sent, speed, billed)
    times = [float(s["t"]) for s in delivered if isinstance(s.get("t"), int | float)]
    if times and len(times) == len(delivered):  # the trace time of the run's last event
        last = max(times)
        if clock is not None and billed:
            last = max(last, max(clock(m["wall_at"]) for m in billed))
        results["duration_s"] = round(last, 3)
        if clock is not None and raid_periods is not None:
            periods = _raid_mode(raid_periods, clock,
                                 min(float(s["sent_at"]) for s in delivered), last)
            results["raid_mode"] = {"periods": periods,
                                    "total_s": round(sum(b - a for a, b in periods), 3)}
    timeseries = _timeseries(delivered, sent, billed, timed, clock=clock,
                             reply_cost_micros=reply_cost_micros, cost=cost,
                             releases=releases or ())
    if timeseries is not None:
        if "raid_mode" in results:
            timeseries["raid_mode"] = results["raid_mode"]["periods"]
        results["timeseries"] = timeseries
    if "live" in results:
        results["live"] = {**results["live"], "foreign_replies": {
            "count": len(foreign), "spend_eur": from_micros(foreign_micros)}}
    return results


# The responder's provider-error kinds (its raidsim_provider_errors_total{kind}) under the
# names the simulator's provider.errors uses; a refusal for good is an HTTP 4xx other than
# 429 and the two auth ones, http_{status}; other kinds (auth, transport, error) keep theirs.
_ERROR_KINDS = {"http_429": "rate_limited", "http_503": "server_error",
                "http_5xx": "server_error", "timeout": "timeout", "connect": "connect_error"}


def provider_error_kind(kind: str) -> str:
    """A responder provider-error kind as ``provider.errors`` names it (docs/results.md)."""
    if kind in _ERROR_KINDS:
        return _ERROR_KINDS[kind]
    if kind.startswith("http_4") and kind[5:].isdigit():
        return "rejected"
    return kind


def _trace_clock(sent: list[dict[str, Any]], speed: float | None,
                 billed: list[dict[str, Any]]) -> Callable[[float], float] | None:
    """Wall time to trace time, ``t0 + (wall - wall0) * speed``, from the first webhook's
    (``sent_at``, ``t``); None without ``speed``, a webhook without ``t``, or a speed so
    large that a billed reply would land past the simulator's horizon (see _timeseries)."""
    from sim.metrics import BIN_S, MAX_SPAN_S

    if speed is None or not sent or any(not isinstance(s.get("t"), int | float)
                                        for s in sent):
        return None
    first = min(sent, key=lambda s: (s["t"], s["sent_at"]))
    t0, wall0, rate = float(first["t"]), float(first["sent_at"]), speed

    def clock(wall: float) -> float:
        return t0 + (wall - wall0) * rate

    # A huge --speed (1e9: send at once) puts a reply billed seconds later years into the
    # trace: one slot per minute up to it took more memory than the machine had. Past the
    # simulator's own horizon (from the first webhook's bin) the placement means nothing.
    start = math.floor(t0 / BIN_S) * BIN_S
    if billed and max(clock(m["wall_at"]) for m in billed) - start >= MAX_SPAN_S:
        return None
    return clock


def _raid_mode(periods: Sequence[Sequence[float | None]], clock: Callable[[float], float],
               wall_start: float, end_s: float) -> list[list[float]]:
    """The responder's raid-mode periods (Unix seconds) that overlap the run, in trace time
    and within it: one that began before the first webhook starts with it, one still open
    (or ending later) stops at ``end_s``."""
    start_s = clock(wall_start)
    out: list[list[float]] = []
    for period in periods:
        begin, finish = period[0], period[1]
        if begin is None:
            continue
        a = max(start_s, clock(float(begin)))
        b = end_s if finish is None else min(end_s, clock(float(finish)))
        if b > a:
            out.append([round(a, 3), round(b, 3)])
    return out


def _timeseries(delivered: list[dict[str, Any]], sent: list[dict[str, Any]],
                billed: list[dict[str, Any]], timed: list[tuple[float, float]], *,
                clock: Callable[[float], float] | None, reply_cost_micros: int | None,
                cost: int, releases: Sequence[tuple[float, str, int]] = ()
                ) -> dict[str, Any] | None:
    """``timeseries`` as sim.metrics writes it, in trace time, from ``start_s`` (the start
    of the first webhook's 60-s bin) on; None when a webhook has no trace time.

    Inbound, naive, oracle and decisions are binned by each webhook's ``t``. A billed reply
    is placed at ``clock(wall)`` (_trace_clock); without a clock, spend and latency series
    are left out. A held message's later decision (``releases``) is placed, with a clock,
    at the read of the responder's counters that first showed it; without one it is left
    out. ``raid_mode`` is added by build_results when the responder gave it."""
    from responder.policy.money import from_micros
    from sim.metrics import BIN_S

    if not delivered or any(not isinstance(s.get("t"), int | float) for s in sent):
        return None
    first = min(sent, key=lambda s: (s["t"], s["sent_at"]))
    start = math.floor(float(first["t"]) / BIN_S) * BIN_S
    ordered = sorted(delivered, key=lambda s: (s["t"], s["sent_at"]))

    def index(t: float) -> int:
        return max(0, int((t - start) // BIN_S))

    n_bins = index(float(ordered[-1]["t"])) + 1
    if clock is not None:
        n_bins = max([n_bins, *(index(clock(m["wall_at"])) + 1 for m in billed),
                      *(index(clock(at)) + 1 for at, _, _ in releases)])
    inbound: dict[str, list[int]] = {}
    decisions: dict[str, list[int]] = {}
    naive, oracle = [0] * n_bins, [0] * n_bins
    label: dict[str, str] = {}
    for s in ordered:
        i = index(float(s["t"]))
        kind = s.get("label") or "unlabelled"
        inbound.setdefault(kind, [0] * n_bins)[i] += 1
        naive[i] += cost
        if kind == "legit" and label.get(s["from"]) != "legit":
            oracle[i] += cost  # the bin in which the sender first counts as legit
        if s["from"] not in label or kind == "legit":
            label[s["from"]] = kind
        action, _, rule = (s.get("decision") or "").partition(" ")
        if action in ("reply", "drop") and rule:
            decisions.setdefault(rule, [0] * n_bins)[i] += 1
    if clock is not None:  # held messages decided later, at the read that showed it
        for at, rule, more in releases:
            decisions.setdefault(rule, [0] * n_bins)[index(clock(at))] += more

    def cumulative(series: list[int]) -> list[Decimal]:
        out, running = [], 0
        for value in series:
            running += value
            out.append(from_micros(running))
        return out

    result: dict[str, Any] = {"bin_s": BIN_S, "start_s": start,
                              "inbound": dict(sorted(inbound.items()))}
    if clock is not None:
        spend = [0] * n_bins
        for m in billed:
            price = m.get("price_micros")
            spend[index(clock(m["wall_at"]))] += int(price) if price is not None else cost
        result["spend_eur"] = cumulative(spend)
    if reply_cost_micros is not None:  # an unknown price: no naive or oracle figure
        result["naive_spend_eur"] = cumulative(naive)
        result["oracle_spend_eur"] = cumulative(oracle)
    if clock is not None:
        per_bin: dict[int, list[float]] = {}
        for wall, latency in timed:
            per_bin.setdefault(index(clock(wall)), []).append(latency)
        result["reply_latency_s"] = {
            f"p{q}": [_percentile(per_bin.get(i, []), q / 100) for i in range(n_bins)]
            for q in (50, 95, 99)}
    result["decisions"] = dict(sorted(decisions.items()))
    return result


def own_replies(sent: list[dict[str, Any]], billed: list[dict[str, Any]],
                planned: Iterable[Mapping[str, Any]] | None = None
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The billed replies that answer this run's messages, and the others.

    A responder still holding replies from an earlier run (a surge hold lasts 20 minutes
    or more of wall time) releases them during this one, and the provider bills them in
    this run's window. A reply is another run's when the message it answers (the fake
    provider's ``reply_to``, from the responder's status callback) is not one of this
    run's; without ``reply_to`` (no RAIDSIM_PUBLIC_URL), when its recipient is not one of
    this run's senders. This run's messages are those of its plan (``planned``), sent or
    not: after an abort, the webhooks in flight when Locust was stopped reached the
    responder, and their replies are this run's although Locust recorded no answer;
    without a plan, those Locust recorded (``sent``)."""
    ours = [*sent, *(planned or ())]
    ids = {s["id"] for s in ours if "id" in s}
    numbers = {s["from"] for s in ours if "from" in s}
    own: list[dict[str, Any]] = []
    foreign: list[dict[str, Any]] = []
    for m in billed:
        answers = m.get("reply_to")
        mine = answers in ids if answers else m["to"] in numbers
        (own if mine else foreign).append(m)
    return own, foreign


def _read_lines(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines appended to ``path`` since byte ``offset``."""
    if not path.exists():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    lines = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return lines, offset + end


# -- the command ---------------------------------------------------------------------------


class Terminated(BaseException):
    """SIGTERM reached ``raidsim load``: raised in its main thread so that the run unwinds
    (its ``finally`` stops Locust) and the command exits 143. A BaseException, so that no
    ``except Exception`` on the way holds it."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def run(args: argparse.Namespace) -> int:
    # SIGTERM (a process supervisor, `timeout`, `kill`) must stop Locust too: by default
    # it ended this process alone, and Locust, re-parented to PID 1, went on posting
    # signed webhooks (spending money at a real responder) for the rest of its run time.
    # A Ctrl-C (KeyboardInterrupt, exit 130) unwinds the same way.
    handling = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if handling else None
    try:
        # The plan, Locust's output and its log live in a folder removed when the run ends.
        with tempfile.TemporaryDirectory(prefix="raidsim-load-") as work:
            return _run(args, Path(work))
    except Terminated:
        print("raidsim load: stopped by SIGTERM: Locust was stopped, nothing was scored",
              file=sys.stderr)
        return EXIT_SIGTERM
    finally:
        if handling:
            signal.signal(signal.SIGTERM, previous)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (start_new_session)."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing to stop
        os.killpg(process.pid, signum)


def stop_locust(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """Stop Locust and whatever it started: it runs in a session (and process group) of
    its own, so SIGTERM goes to the whole group; after ``grace_s`` (or at once when a
    second signal interrupts the wait), SIGKILL to what is left of it. Bounded."""
    try:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_s)
    finally:
        _signal_group(process, signal.SIGKILL)  # a child that outlived Locust, if any
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL is not refused
            process.wait(timeout=10)


def _unsettled_check() -> Any:
    from reports.thresholds import Threshold

    return Threshold("live.unsettled_replies", "<=", Decimal(0), source="raidsim load")


def _run(args: argparse.Namespace, work: Path) -> int:
    import httpx

    from raidsim.cli import (
        EXIT_USAGE,
        UsageError,
        check_output_dir,
        check_output_file,
        duration_flag,
    )
    from reports import gate, parse_threshold, should_abort, thresholds_from_table
    from reports.console import format_summary_failures
    from reports.thresholds import ThresholdSyntaxError, merge
    from responder.policy.errors import ConfigError

    if args.scenario is None and args.trace is None:
        raise UsageError("give a SCENARIO.toml, --trace FILE.jsonl, or both")
    if importlib.util.find_spec("locust") is None:  # it runs in a subprocess: check here
        raise UsageError("raidsim load runs Locust, which is not installed (hint: install "
                         "it from the raidsim checkout with: pip install '.[load]')")
    target = _loopback(args.target, "--target")
    provider = _loopback(args.provider, "--provider")
    token = args.auth_token or os.environ.get("RAIDSIM_TWILIO_AUTH_TOKEN")
    if not token:
        raise UsageError("give --auth-token or set RAIDSIM_TWILIO_AUTH_TOKEN")
    admin = args.admin_token or os.environ.get("RAIDSIM_ADMIN_TOKEN")
    if not (math.isfinite(args.speed) and args.speed > 0):
        raise UsageError(f"--speed must be a number above 0, got {args.speed}")
    if args.users < 1:
        raise UsageError(f"--users must be at least 1, got {args.users}")
    if args.max_messages is not None and args.max_messages < 1:
        raise UsageError("--max-messages must be at least 1")
    start_s = duration_flag("--from", args.start)
    duration_s = None if args.duration is None else duration_flag(
        "--duration", args.duration, above_zero="a load of no time sends nothing")
    settle_s = duration_flag("--settle", args.settle)
    try:
        thresholds = [parse_threshold(e, source="--threshold") for e in args.threshold]
    except (ValueError, ThresholdSyntaxError) as exc:
        raise UsageError(str(exc)) from exc
    check_output_file(args.json_out, "--json",
                      inputs=(args.scenario, args.trace))
    check_output_dir(args.report, "--report")
    # Create the output folders now: a folder that cannot be made should stop the run
    # before it sends (and pays for) anything, not after.
    for folder, flag in ((args.report, "--report"),
                         (None if args.json_out is None or str(args.json_out) == "-"
                          else Path(args.json_out).parent, "--json")):
        if folder is not None:
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"{flag} {folder}: cannot create the folder: "
                                 f"{exc.strerror or exc}") from exc

    name, seed, reply_cost = "trace", 0, None
    try:
        scenario = None
        if args.scenario is not None:
            from sim.scenario import load_scenario

            scenario = load_scenario(args.scenario, need_traffic=args.trace is None)
            name, seed = scenario.name, scenario.seed if args.seed is None else args.seed
            reply_cost = scenario.policy.reply_cost_micros
            if scenario.thresholds:
                thresholds = merge(thresholds_from_table(  # a repeated one is checked once
                    scenario.thresholds, path=scenario.path, text=scenario.text), thresholds)
        records: Iterable[Any]
        if args.trace is not None:
            from sim.trace import key_warnings, read_trace

            for warning in key_warnings(args.trace):
                print(f"raidsim load: warning: {warning}", file=sys.stderr)
            records = read_trace(args.trace)
            name = name if scenario is not None else args.trace.stem
        else:
            from sim.traffic import iter_generate

            records = iter_generate(scenario, args.seed)  # type: ignore[arg-type]
        plan = work / "plan.jsonl"
        count = 0
        with plan.open("w", encoding="utf-8") as handle:
            for r in plan_records(records, start_s=start_s, speed=args.speed,
                                  max_messages=args.max_messages, duration_s=duration_s):
                handle.write(json.dumps({"id": r.message_id, "t": r.t, "from": r.sender,
                                         "to": r.to, "body": r.body, "label": r.label},
                                        ensure_ascii=False) + "\n")
                count += 1
        if args.trace is not None:
            # the lines past --max-messages or --duration are checked too, before any
            # webhook is sent, as simulate checks every line (docs/scenarios.md)
            for _ in records:
                pass
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    if count == 0:
        raise UsageError("nothing to send: no message after --from within the bounds")

    client = httpx.Client(timeout=10.0)
    try:
        try:
            ready = client.get(target + "/readyz")
        except httpx.HTTPError as exc:
            raise UsageError(f"cannot reach the responder at {target}: {exc} (hint: start it "
                             "with `raidsim serve`, or point --target at it)") from exc
        if ready.status_code != 200:
            raise UsageError(f"the responder at {target} is not ready (GET /readyz)")
        if not _is_ready(ready):  # a server, but not raidsim's: nothing would be measured
            raise UsageError(f"{target} is not a raidsim responder: GET /readyz answered "
                             f"{ready.text[:80]!r}, not {{\"status\": \"ready\"}} (hint: "
                             "point --target at `raidsim serve`)")
        sends_to = ready.json().get("provider")  # (_is_ready: a JSON object)
        wrong_provider = provider_mismatch(sends_to, provider)
        if wrong_provider is not None:
            raise UsageError(wrong_provider)
        if sends_to is None:
            print("raidsim load: warning: the responder does not say where it sends its "
                  "replies (a raidsim older than this one): make sure its "
                  f"RAIDSIM_TWILIO_API_BASE is {provider}, or its replies go to real numbers, "
                  "at a real price", file=sys.stderr)
        try:
            bill_before = _get_json(client, provider + "/_fake/bill")
        except (httpx.HTTPError, ValueError) as exc:
            raise UsageError(f"cannot read the bill of the fake provider at {provider}: {exc} "
                             "(hint: start it with `raidsim fake-provider`, or point "
                             "--provider at it)") from exc
        problem = bill_problem(bill_before)
        if problem is not None:
            raise UsageError(f"{provider} is not raidsim's fake provider: GET /_fake/bill "
                             f"answered {problem} (hint: start one with `raidsim "
                             "fake-provider`, or point --provider at it)")
        faults = bill_before.get("faults") or {}
        if args.speed != 1 and (faults.get("windows") or any(
                isinstance(rate, int | float) and rate > 0
                for rate in (faults.get("rates") or {}).values())):
            print(f"raidsim load: warning: the fake provider injects faults and this run is "
                  f"at --speed {args.speed:g}: the responder's retries, backoff and breaker "
                  "run in wall time, so a fault lasts fewer of its retries than in raidsim "
                  "simulate; compare spend and provider errors at --speed 1 "
                  "(docs/live-load.md)", file=sys.stderr)
        shaping = bill_before.get("shaping") or {}
        fake_speed = shaping.get("speed")
        timed = faults.get("windows") or any(
            shaping.get(key) is not None
            for key in ("latency_median_s", "latency_p95_s", "segments_per_second"))
        if timed and isinstance(fake_speed, int | float) and fake_speed != args.speed:
            # (without fault windows, latency or throughput, time does not matter to it; a
            # fake slowed on purpose, a test's slow provider, is a choice: said, not refused)
            print(f"raidsim load: warning: the fake provider runs at --speed {fake_speed:g} "
                  f"and this run at --speed {args.speed:g}: its fault windows, latency and "
                  "throughput fall at other trace times than its scenario says (start both "
                  "with the same --speed to replay the scenario's provider)", file=sys.stderr)

        def read_bill() -> dict[str, Any] | None:
            """This run's share of the bill; None when the provider does not answer (an
            --outage in refuse mode closes its port) or answers something else."""
            try:
                data = _get_json(client, provider + "/_fake/bill")
            except (httpx.HTTPError, ValueError):
                return None
            return None if bill_problem(data) else _bill_delta(data, bill_before)

        def bill_waiting(wait_s: float) -> dict[str, Any]:
            """``read_bill``, waiting up to ``wait_s`` for the provider to answer again."""
            deadline = time.monotonic() + wait_s
            while (bill := read_bill()) is None:
                if time.monotonic() >= deadline:
                    raise UsageError(
                        f"the fake provider at {provider} did not answer GET /_fake/bill "
                        f"for {wait_s:g} s after the run: this run's spend cannot be read "
                        "(hint: an --outage in the default refuse mode closes its port: "
                        "end it before the run settles, give a longer --settle, or use "
                        "--outage-mode 503)")
                time.sleep(POLL_S)
            return bill

        # the responder's counters cover its whole life: this run's share is the difference
        metrics_before = parse_metrics(client.get(target + "/metrics").text)
        poll = MetricsPoll(client, target, metrics_before)
        admin_headers = {"Authorization": f"Bearer {admin}"} if admin else None
        if reply_cost is None and admin_headers:
            budget = _get_json(client, target + "/admin/budget", headers=admin_headers)
            from responder.policy.money import to_micros

            reply_cost = to_micros(budget["reply_cost_eur"])

        out = work / "sent.jsonl"
        # The first webhook leaves START_DELAY_S from now (Locust starts meanwhile), and
        # the fake's scenario clock reads the first message's time then: its fault windows,
        # throughput and latency fall at the trace's times.
        start_at = time.time() + START_DELAY_S
        _align_clock(client, provider, _first_t(plan), START_DELAY_S)
        env = dict(os.environ, RAIDSIM_LOAD_PLAN=str(plan), RAIDSIM_LOAD_OUT=str(out),
                   RAIDSIM_LOAD_START_AT=repr(start_at),
                   RAIDSIM_LOAD_TOKEN=token, RAIDSIM_LOAD_SPEED=repr(args.speed),
                   RAIDSIM_LOAD_ORDERED="0" if args.unordered else "1",
                   RAIDSIM_LOAD_DURATION=repr(duration_s if duration_s is not None
                                              else float("inf")))
        locustfile = Path(__file__).resolve().parents[2] / "scenarios" / "locustfile.py"
        if not locustfile.exists():
            import scenarios

            locustfile = Path(scenarios.__file__).with_name("locustfile.py")
        span_s = (duration_s if duration_s is not None else float("inf"))
        last_t = _last_t(plan)
        span_s = min(span_s, (last_t - _first_t(plan)) / args.speed)
        if span_s > MAX_WALL_S:  # Locust's own --run-time overflowed at --speed 1e-12
            raise UsageError(f"--speed {args.speed:g}: sending the plan would take about "
                             f"{span_s:.3g} s, more than {MAX_WALL_S // 86400} days (hint: "
                             "raise --speed, or bound the run with --duration or "
                             "--max-messages)")
        run_time = int(span_s + 30)
        command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
                   "--host", target, "-u", str(args.users), "-r", str(args.users),
                   "--run-time", f"{run_time}s", "--stop-timeout", "5", "--only-summary",
                   "--loglevel", "WARNING", "--exit-code-on-error", "0"]
        log = work / "locust.log"
        print(f"raidsim load: sending {count} webhooks to {target} with {args.users} Locust "
              f"users at {args.speed:g}x (about {span_s:.0f} s)", file=sys.stderr)
        sent: list[dict[str, Any]] = []
        offset = 0
        aborted: list[Any] = []
        with log.open("wb") as log_handle:
            # its own session: a Ctrl-C at the terminal reaches this process only, and
            # stop_locust stops Locust's whole process group, whatever ended the run
            process = subprocess.Popen(command, env=env, stdout=log_handle,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                limit = time.monotonic() + run_time + 30
                while process.poll() is None and time.monotonic() < limit:
                    time.sleep(POLL_S)  # pacing of the progress poll only
                    lines, offset = _read_lines(out, offset)
                    sent.extend(lines)
                    if poll.since(time.time()) >= RELEASE_POLL_S:
                        poll.read()  # when held messages are decided
                    if any(t.abort_on_fail for t in thresholds):
                        read = read_bill()
                        if read is None:
                            continue  # the provider does not answer (an outage): next poll
                        bill = read
                        partial = {"spend_eur": Decimal(bill["amount_eur"]),
                                   "replies": {"total": bill["count"],
                                               "segments": bill["segments"]},
                                   "messages": {"total": len(sent)}}
                        aborted = should_abort(partial, thresholds)
                        if aborted:
                            for line in format_summary_failures(
                                    {"thresholds": [a.to_json() for a in aborted]}):
                                print(f"raidsim load: aborting: {line}", file=sys.stderr)
                            break
            finally:  # the end of the plan, an abort, an error, Ctrl-C or SIGTERM
                stop_locust(process)
        lines, offset = _read_lines(out, offset)
        sent.extend(lines)
        if process.returncode not in (0, None) and not aborted and not sent:
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            print("raidsim load: error: Locust failed", file=sys.stderr)
            return EXIT_USAGE

        # Replies leave through the responder's outbox: wait until the bill stops moving
        # and the outbox holds nothing left to send (an open circuit breaker, a backoff or
        # a Retry-After keeps the bill still for many seconds while replies are queued).
        bill = bill_waiting(max(settle_s, BILL_WAIT_S))
        queued = None
        if not aborted:
            queued = settle(read_bill, poll.read, bill, settle_s)[1]
            # scored as it is now (settle's last read may predate the provider's silence)
            bill = bill_waiting(max(settle_s, BILL_WAIT_S))
            if queued and args.allow_unsettled:
                print(f"raidsim load: warning: {queued} replies were still queued in the "
                      f"responder's outbox or the provider's throughput queue after --settle "
                      f"{args.settle}: they are not counted (give a longer --settle)",
                      file=sys.stderr)
        try:
            billed = _get_json(client, provider + "/_fake/messages",
                               params={"since": bill_before["count"]})
            final = parse_metrics(client.get(target + "/metrics").text)
            poll.record(final)
            metrics = _metrics_delta(final, metrics_before)
            admin_budget = (_get_json(client, target + "/admin/budget",
                                      headers=admin_headers) if admin_headers else None)
        except httpx.HTTPError as exc:
            url = str(exc.request.url) if exc.request is not None else ""
            who = (f"the fake provider at {provider}" if url.startswith(provider)
                   else f"the responder at {target}")
            raise UsageError(f"{who} stopped answering during the run ({url}: {exc}): "
                             "this run cannot be scored (hint: keep it running until "
                             "raidsim load exits)") from exc
    finally:
        client.close()

    statuses = Counter(str(s["status"]) for s in sent)
    if sent and statuses.get("403") == len(sent):
        raise UsageError(f"the responder refused all {len(sent)} webhooks with 403 (a bad "
                         "signature): give --auth-token (or RAIDSIM_TWILIO_AUTH_TOKEN) the "
                         "responder's RAIDSIM_TWILIO_AUTH_TOKEN, and --target the URL it "
                         "signs (RAIDSIM_PUBLIC_URL, if set)")
    why = nothing_measured(sent, metrics)
    if why:
        raise UsageError(why)
    decided = sum(count for key, count in metrics.get("decisions", {}).items()
                  if key.startswith("inbound."))
    answered = statuses.get("200", 0)
    if decided > answered:  # Locust was stopped (an abort) with webhooks in flight
        print(f"raidsim load: warning: the responder decided {decided} webhooks, Locust "
              f"recorded {answered} answers: {decided - answered} were in flight when it "
              "stopped; messages and coverage count the recorded ones", file=sys.stderr)
    refused = refused_warning(statuses)
    if refused:
        print(f"raidsim load: warning: {refused}", file=sys.stderr)
    held_before = int(metrics_before.get("raidsim_held_replies", 0))
    if held_before:
        print(f"raidsim load: warning: the responder held {held_before} replies from before "
              "this run; those it drops or releases meanwhile are in "
              "live.responder.decisions", file=sys.stderr)
    for warning in _live_warnings(len(sent), metrics, bill, provider):
        print(f"raidsim load: warning: {warning}", file=sys.stderr)
    webhook_latency = [s["latency_s"] for s in sent]
    lag = [float(s.get("lag_s", 0.0)) for s in sent]
    lag_p95 = _percentile(lag, 0.95)
    if lag_p95 is not None and lag_p95 > LAG_WARN_S:
        print(f"raidsim load: warning: webhooks went out behind the trace's schedule (p95 "
              f"{lag_p95:.2f} s late, at most {max(lag):.2f} s): the responder's clock saw "
              "the traffic spread out; lower --speed"
              + ("" if args.unordered else ", or pass --unordered to post concurrently")
              + " (live.send_lag_s)", file=sys.stderr)
    extra: dict[str, Any] = {
        "live": {
            "target": target, "provider": provider, "speed": args.speed,
            "users": args.users, "ordered": not args.unordered, "planned": count,
            "sent": len(sent),
            "http_status": dict(sorted(statuses.items())),
            "webhook_latency_s": {"p50": _percentile(webhook_latency, 0.5),
                                  "p95": _percentile(webhook_latency, 0.95),
                                  "p99": _percentile(webhook_latency, 0.99)},
            "send_lag_s": {"p50": _percentile(lag, 0.5), "p95": lag_p95,
                           "max": round(max(lag), 6) if lag else None},
            "bill": bill,
            "responder": metrics,
            "admin_budget": admin_budget,
            "aborted": [a.threshold.name for a in aborted],
            # replies the responder had still to send when the run was scored (null: its
            # metrics do not say, or an abort, which does not settle)
            "unsettled_replies": queued,
        },
    }
    cap = budget_cap(admin_budget, scenario)
    reply_text, per_segment = reply_of(scenario, admin_budget, bill)
    planned = _planned(plan)
    results = build_results(name=name, seed=seed, sent=sent, billed=billed, bill=bill,
                            reply_cost_micros=reply_cost, cap_eur=cap, extra=extra,
                            speed=args.speed, responder=metrics, reply_text=reply_text,
                            releases=poll.releases(),
                            eur_per_segment=per_segment,
                            raid_periods=(admin_budget or {}).get("raid_periods"),
                            planned=planned)
    foreign = results["live"]["foreign_replies"]["count"]  # counted by own_replies
    if foreign:
        print(f"raidsim load: warning: {foreign} billed replies answer messages that are "
              "not in this run's plan (left from an earlier run: held by the policy, or "
              "still queued in the outbox when that run stopped settling, and sent during "
              "this one): spend_eur and replies leave them out "
              "(live.foreign_replies); replay on a fresh responder, or wait until its "
              "GET /metrics shows raidsim_held_replies 0 and an empty outbox",
              file=sys.stderr)
    if queued and not args.allow_unsettled:
        # spend_eur and replies leave the queued replies out: a cost gate on them would
        # pass on what this run did not measure. An implicit threshold fails the run, in
        # the results (and their report and JUnit file) as any other does.
        thresholds = merge(thresholds, [_unsettled_check()])
    code = gate(results, thresholds, report_dir=args.report, prog="raidsim load",
                stream=sys.stderr if str(args.json_out) == "-" else None)
    if queued and not args.allow_unsettled:
        print(f"raidsim load: error: {queued} replies were still queued in the responder's "
              f"outbox or the provider's throughput queue after --settle {args.settle}: "
              "spend_eur and replies do not count "
              "them, so the run cannot pass (live.unsettled_replies); give a longer "
              "--settle, or --allow-unsettled to gate on what was billed", file=sys.stderr)
    if aborted:
        results["passed"] = False
        code = 1
    if args.json_out is not None:
        from reports.results import dumps

        text = dumps(results)
        if str(args.json_out) == "-":
            sys.stdout.write(text)
        else:
            from raidsim.cli import write_output

            write_output(args.json_out, text, "the results JSON")
    coverage = results["legit_coverage"]
    print(f"raidsim load: {len(sent)} webhooks sent, {bill['count']} replies billed, "
          f"EUR {bill['amount_eur']}, legit coverage "
          + (f"{coverage:.4f}" if coverage is not None else "n/a (no legit sender)"),
          file=sys.stderr)
    return code


def _metrics_delta(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """This run's share of the responder's counters: decisions, duplicates and spend are
    differences; ``raidsim_held_replies`` is the gauge as the run ended."""
    out: dict[str, Any] = {}
    for counters in ("decisions", "replies", "provider_errors"):
        delta = {key: count - before.get(counters, {}).get(key, 0)
                 for key, count in now.get(counters, {}).items()}
        out[counters] = {k: v for k, v in delta.items() if v}
    for name in ("raidsim_inbound_duplicates_total", "raidsim_spend_eur"):
        if name in now:
            out[name] = round(now[name] - before.get(name, 0.0), 6)
    if "raidsim_held_replies" in now:
        out["raidsim_held_replies"] = now["raidsim_held_replies"]
    return out


def nothing_measured(sent: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]
                     ) -> str | None:
    """Why a run measured nothing although the responder accepted its webhooks: each one
    it accepted was a message it already had (its ``X-Raidsim-Decision: duplicate``; from
    its duplicates counter when no webhook carries the header), so it decided and replied
    to none, and a cost gate would pass on EUR 0.00. None when something was measured."""
    accepted = [s for s in sent if s.get("status") == 200]
    if not accepted:
        return None
    if any(s.get("decision") for s in accepted):
        duplicates = sum(1 for s in accepted if s.get("decision") == "duplicate")
    else:  # a responder that does not name its decisions
        duplicates = int(metrics.get("raidsim_inbound_duplicates_total", 0))
    if duplicates < len(accepted):
        return None
    return (f"the responder already had all {len(accepted)} webhooks it accepted (a replay "
            "against the database of an earlier run: traces and scenario traffic reuse "
            "message ids), so it decided none of them and this run measured nothing: "
            "replay on a fresh database (start the responder with a new "
            "RAIDSIM_DATABASE_URL), or with message ids it has not seen (another --from "
            "window, or a trace with other ids)")


def refused_warning(statuses: Mapping[str, int]) -> str | None:
    """A warning when the responder answered some webhooks other than 200: those messages
    were never decided and are left out of ``messages``, replies and coverage, so the run
    scored less traffic than it sent (a 400 for an id or number the responder refuses, a
    413 for a body over RAIDSIM_MAX_BODY_BYTES, a 503 under overload...)."""
    refused = {status: n for status, n in statuses.items() if status != "200" and n}
    if not refused:
        return None
    total = sum(refused.values())
    detail = ", ".join(f"{n} x HTTP {status}" for status, n in sorted(refused.items()))
    return (f"the responder did not accept {total} of the {sum(statuses.values())} webhooks "
            f"({detail}): those messages were never decided, and messages, replies and "
            "legit coverage leave them out, so this run scores less traffic than "
            "`raidsim simulate` does on the same trace (see the responder's log for why)")


def _live_warnings(sent: int, metrics: Mapping[str, Any], bill: Mapping[str, Any],
                   provider: str) -> list[str]:
    """What makes a run's figures mean less than they seem, from the responder's counters."""
    warnings = []
    duplicates = int(metrics.get("raidsim_inbound_duplicates_total", 0))
    if sent and duplicates * 2 >= sent:
        warnings.append(
            f"{duplicates} of the {sent} webhooks were messages the responder already had "
            "(a replay against the database of an earlier run: traces reuse message ids), "
            "so they got no reply; start the responder on a fresh database")
    replies = sum(count for key, count in metrics.get("decisions", {}).items()
                  if ".reply:" in key)
    if replies and not bill.get("count"):
        warnings.append(
            f"the responder decided {replies} replies but {provider} billed none: is the "
            "responder's RAIDSIM_TWILIO_API_BASE this --provider? (or raise --settle)")
    return warnings


def bill_problem(data: Any) -> str | None:
    """Why ``GET /_fake/bill``'s answer is not a fake provider's bill, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    for key in ("count", "segments", "amount_micros"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | str):
            return f"no whole number {key!r}"
        try:
            int(value)
        except ValueError:
            return f"no whole number {key!r}"
    return None


def _bill_delta(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """This run's share of the bill (the fake provider may have billed earlier runs)."""
    from responder.policy.money import from_micros

    micros = int(now["amount_micros"]) - int(before["amount_micros"])
    return {"count": now["count"] - before["count"],
            "segments": now["segments"] - before["segments"],
            # accepted, in the provider's throughput queue, not billed yet (null: an older
            # fake): all of them this run's, since an earlier run settled its own
            "pending": now.get("pending"),
            "amount_micros": micros, "amount_eur": str(from_micros(micros)),
            "eur_per_segment": now.get("eur_per_segment"),
            # the latency and throughput the fake provider applied (null: an older fake)
            "shaping": now.get("shaping")}


def _planned(plan: Path) -> list[dict[str, Any]]:
    """Every message of the plan, sent or not: its id, sender and label."""
    with plan.open(encoding="utf-8") as handle:
        return [{"id": m["id"], "from": m["from"], "label": m.get("label")}
                for m in map(json.loads, handle)]


def _first_t(plan: Path) -> float:
    with plan.open(encoding="utf-8") as handle:
        return float(json.loads(handle.readline())["t"])


def _last_t(plan: Path) -> float:
    last = 0.0
    with plan.open(encoding="utf-8") as handle:
        for line in handle:
            last = float(json.loads(line)["t"])
    return last
