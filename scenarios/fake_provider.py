"""A Twilio-compatible Messages API that bills every SMS and injects faults.

``raidsim fake-provider`` serves it; ``raidsim load`` reads its bill. It speaks just
enough of Twilio for a responder's sender: ``POST /2010-04-01/Accounts/{Sid}/Messages.json``
with HTTP Basic auth (account SID, auth token) and the form fields ``To``, ``From`` (or
``MessagingServiceSid``), ``Body`` and ``StatusCallback``; it answers 201 with Twilio's
JSON (``sid``, ``status``, ``num_segments``, ``price``...). Segments and prices come from
``responder.sms`` at the configured price per segment, and the bill is kept in integer
micro-euros: ``GET /_fake/bill`` returns it exactly. Requests Twilio itself refuses are
refused the same way, before any fault is drawn, and never billed: 401/20003 for bad
credentials, 400/21602-21604 for a missing Body, From or To, 400/21211 for a To that is
not an E.164 number, 400/21617 for a Body over 1,600 characters. ``GET`` on the same path
lists the billed messages as Twilio's Messages list does (newest first, filtered by ``To``
and ``From``, one page of ``PageSize``): the responder looks its ``unknown`` replies up
there.

Status callbacks: for every billed message whose request named a ``StatusCallback``
URL, the fake then POSTs ``MessageStatus`` ``sent`` and then ``delivered`` to it, signed
with ``X-Twilio-Signature`` (HMAC-SHA1 of the URL and the sorted form under the auth
token), as Twilio does. A ``timeouts`` message gets its callbacks while its answer is
still withheld: the callback is how a responder learns that such a reply went out. Each
callback is tried once, with a 5 s timeout; the bill counts them under ``callbacks``.

Faults are drawn per request from a seeded ``random.Random``, as the simulator's provider
model draws them (``sim.provider``): the ``[provider]`` rates of a scenario (or flags),
raised during its ``[[faults]]`` windows. The windows are in scenario time:
``offset_s + elapsed wall seconds * speed``. An outage is drawn on arrival: a refused
connection never reaches the provider, so it takes no place in its queue. Every other
outcome is the provider's when it takes the request, after its throughput queue. The
simulator draws both at the same points (before and after its token wait).

Latency and throughput (``latency``, ``throughput``; off unless asked for: the CLI asks
for both when started from a scenario) follow ``sim.model``'s worker, in scenario time,
each scenario second lasting ``1 / speed`` wall seconds. Throughput: one segment token
shared by all requests; a request waits until ``start = max(now, token_free_at)``, then
``token_free_at = start + segments / segments_per_second`` (taken on arrival with no
``await`` in between, so concurrent requests queue in arrival order). Latency:
``latency_median_s * lognormvariate(0, sigma)`` (sigma from the median and p95), drawn on
arrival from a second seeded stream, so turning latency on leaves the fault draws alone.
Requests refused at the door (auth, form, ``To``) and outages answer at once and take no
capacity. A message is billed when it leaves the queue (its receipt, ``wall_at``: where
the simulator's reply latency ends); an accepted message's status callbacks start when its
201 goes out, a timed-out one's while its answer is withheld.
``GET /_fake/bill`` gives the settings (``shaping``) and what was injected, in wall
seconds (``injected.queue_wait_s`` and ``injected.latency_s``: count, total, p50, p95,
max), recorded on arrival: a backlog shows at once. When the fake stops, requests still
queued get 503 (not billed) and waiting answers go out at once, so a long queue does not
hold up the shutdown.

========== ============================================================ ======== ==========
outcome    answer                                                       billed   shaping
========== ============================================================ ======== ==========
accepted   201, status ``queued``                                       yes      queue, then
                                                                                 latency
timeouts   201, but only after ``timeout_delay_s`` (past the client's   yes      queue, then
           read timeout): the sender cannot know whether it was sent             the delay
rate_limit 429, code 20429, ``Retry-After: retry_after_s``              no       queue,
                                                                                 latency
errors     ``error_status`` (503 by default: refused before processing) no       queue,
                                                                                 latency
reject     400, code 21610 (the recipient opted out)                    no       queue,
                                                                                 latency
outage     connection refused while a full outage (rate 1) lasts: the   no       none
           listener is closed; 503 + ``Connection: close`` on
           connections opened before it, and for partial outages
           (rate < 1)
(refused)  401/20003 bad credentials; 400/21602-21604 no Body, From or  no       none
           To; 400/21211 a To that is not E.164; 400/21617 a Body over
           1,600 characters; 413/21617 a form over 64 KiB: all before
           any fault is drawn
========== ============================================================ ======== ==========
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import hmac
import itertools
import json
import math
import random
import socket
import threading
import time
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from responder.policy.money import from_micros, to_micros
from responder.sms import MAX_BODY_CHARS, segment_info
from scenarios.signing import sign_twilio
from sim.metrics import percentile
from sim.provider import Fault, ProviderModel
from sim.trace import E164

MESSAGES_PATH = "/2010-04-01/Accounts/{account_sid}/Messages.json"
BILL_PATH = "/_fake/bill"
MESSAGES_LOG_PATH = "/_fake/messages"
CLOCK_PATH = "/_fake/clock"
OUTCOMES = ("accepted", "timeouts", "rate_limit", "errors", "reject", "outage")
CLEAN = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=0.0, reject_rate=0.0)
MAX_FORM_BYTES = 64 * 1024
OUTAGE_POLL_S = 0.02
CALLBACK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class FakeProviderConfig:
    """How the fake behaves. Rates come from ``model``; ``faults`` raise them for a while."""

    auth_token: str
    account_sid: str | None = None  # None: any AC... SID whose password is the token
    eur_per_segment: Decimal = Decimal("0.16")
    model: ProviderModel = CLEAN
    faults: tuple[Fault, ...] = ()
    outage_mode: str = "refuse"  # or "503"
    error_status: int = 503
    timeout_delay_s: float = 30.0
    status_callbacks: bool = True  # POST sent/delivered to each message's StatusCallback
    seed: int = 0
    speed: float = 1.0
    offset_s: float = 0.0
    # Shaping, in scenario time (wall seconds = scenario seconds / speed). Off by default:
    # a FakeProviderConfig built in code answers at once, as it always did; the CLI turns
    # both on when the fake is started from a scenario (raidsim.commands.fake_provider).
    latency: bool = False  # answer after model.latency_median_s x lognormal(0, model.sigma)
    throughput: bool = False  # take at most model.segments_per_second, in arrival order

    def __post_init__(self) -> None:
        if self.outage_mode not in ("refuse", "503"):
            raise ValueError(f"outage_mode must be 'refuse' or '503', got {self.outage_mode!r}")
        if not 500 <= self.error_status <= 599:
            raise ValueError(f"error_status must be a 5xx status, got {self.error_status}")
        if self.speed <= 0:
            raise ValueError(f"speed must be above 0, got {self.speed}")
        if self.timeout_delay_s < 0:
            raise ValueError("timeout_delay_s must be at least 0")
        model = self.model
        if self.latency:
            for name in ("latency_median_s", "latency_p95_s"):
                value = getattr(model, name)
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"model.{name} must be a finite number of seconds of "
                                     f"at least 0, got {value}")
            if model.latency_p95_s < model.latency_median_s:
                raise ValueError(f"model.latency_p95_s ({model.latency_p95_s:g}) is below "
                                 f"model.latency_median_s ({model.latency_median_s:g})")
        if self.throughput and not (math.isfinite(model.segments_per_second)
                                    and model.segments_per_second > 0):
            raise ValueError("model.segments_per_second must be a finite number above 0, "
                             f"got {model.segments_per_second}")
        to_micros(self.eur_per_segment)  # exact in micro-euros, or MoneyError


@dataclass(frozen=True, slots=True)
class BilledMessage:
    sid: str
    to: str
    sender: str
    body: str
    segments: int
    price_micros: int
    at_s: float  # scenario time
    status_callback: str | None
    wall_at: float = 0.0  # Unix time it arrived (reply latency in live runs)


@dataclass
class Bill:
    """Every billed SMS, in integer micro-euros. Thread-safe: the CLI reads it from outside."""

    micros_per_segment: int
    messages: list[BilledMessage] = field(default_factory=list)
    segments: int = 0
    amount_micros: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    callbacks: Counter[str] = field(default_factory=Counter)  # delivered/refused/unreachable
    # wall seconds each shaped request waited for throughput / was given as latency
    queue_waits: array[float] = field(default_factory=lambda: array("d"))
    latencies: array[float] = field(default_factory=lambda: array("d"))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Messages taken into the throughput queue that will be sent, by sid: Twilio creates
    # a message when it accepts the request and lists it from then on (status "queued"),
    # so the Messages list shows them before they are billed. Unlisted, a reply waiting
    # in the queue longer than the responder's read timeout and its look-up grace read as
    # never created, and was sent again.
    pending: dict[str, BilledMessage] = field(default_factory=dict)

    def reserve(self, to: str, sender: str, body: str, *, at_s: float,
                status_callback: str | None) -> BilledMessage:
        """A message the provider has created and will send (and bill) after its queue."""
        segments = segment_info(body).segments
        with self._lock:
            sid = f"SM{next(self._ids):032x}"
            message = BilledMessage(sid, to, sender, body, segments,
                                    segments * self.micros_per_segment, at_s, status_callback,
                                    time.time())
            self.pending[sid] = message
        return message

    def charge(self, message: BilledMessage) -> BilledMessage:
        """Bill a reserved message as it leaves the queue (its ``wall_at``: now)."""
        with self._lock:
            self.pending.pop(message.sid, None)
            billed = replace(message, wall_at=time.time())
            self.messages.append(billed)
            self.segments += billed.segments
            self.amount_micros += billed.price_micros
        return billed

    def drop(self, message: BilledMessage) -> None:
        """A reserved message the provider never took (it stopped with it queued)."""
        with self._lock:
            self.pending.pop(message.sid, None)

    def count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def count_callback(self, result: str) -> None:
        with self._lock:
            self.callbacks[result] += 1

    def record_shaping(self, *, queue_wait_s: float | None, latency_s: float | None) -> None:
        """What a request was given, in wall seconds; None: that shaping did not apply."""
        with self._lock:
            if queue_wait_s is not None:
                self.queue_waits.append(queue_wait_s)
            if latency_s is not None:
                self.latencies.append(latency_s)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "count": len(self.messages),
                "segments": self.segments,
                "amount_eur": str(from_micros(self.amount_micros)),
                "amount_micros": self.amount_micros,
                "eur_per_segment": str(from_micros(self.micros_per_segment)),
                "currency": "EUR",
                "recipients": len({m.to for m in self.messages}),
                # accepted and waiting in the throughput queue: billed when they leave it
                "pending": len(self.pending),
                "requests": dict(sorted(self.outcomes.items())),
                "callbacks": dict(sorted(self.callbacks.items())),
                "injected": {"queue_wait_s": _spread(self.queue_waits),
                             "latency_s": _spread(self.latencies)},
            }


def _spread(values: array[float]) -> dict[str, Any]:
    """Count, total and nearest-rank p50/p95/max of wall seconds (None when empty)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "total": 0.0, "p50": None, "p95": None, "max": None}
    return {"count": len(ordered), "total": round(math.fsum(ordered), 6),
            "p50": round(percentile(ordered, 50), 6), "p95": round(percentile(ordered, 95), 6),
            "max": round(ordered[-1], 6)}


def twilio_error(status: int, code: int, message: str,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "status": status,
         "more_info": f"https://www.twilio.com/docs/errors/{code}"},
        status_code=status, headers=headers,
    )


class FakeProvider:
    """The fake's state: configuration, bill, seeded fault draws and the scenario clock."""

    def __init__(self, config: FakeProviderConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.started = clock()
        self.offset_s = config.offset_s  # scenario time at ``started`` (POST /_fake/clock)
        self.rng = random.Random(f"fake-provider:{config.seed}")
        # latency has a stream of its own: turning it on does not change the fault draws
        self.latency_rng = random.Random(f"fake-provider-latency:{config.seed}")
        self._token_free_at = -math.inf  # scenario time the provider can take more segments
        self.bill = Bill(to_micros(config.eur_per_segment))
        self._callbacks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._stopping: asyncio.Event | None = None  # set by serving() when it stops

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False at once if the server is stopping meanwhile, so that a
        long queue or a withheld answer does not hold up its shutdown."""
        stopping = self._stopping
        if stopping is None:
            await asyncio.sleep(seconds)
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)
        return not stopping.is_set()

    def scenario_time(self) -> float:
        return self.offset_s + (self.clock() - self.started) * self.config.speed

    def fault_rate(self, kind: str, now: float) -> float:
        rate = 0.0
        for fault in self.config.faults:
            if fault.kind == kind and fault.start_s <= now < fault.end_s:
                rate = max(rate, fault.rate)
        return rate

    def full_outage(self, now: float) -> bool:
        return self.fault_rate("outage", now) >= 1.0

    def draw_outage(self, now: float) -> bool:
        """Whether this request's connection fails (drawn on arrival, as ``sim.model``
        draws it before the token wait: a refused request never reaches the queue)."""
        return self.rng.random() < self.fault_rate("outage", now)

    def draw(self, now: float) -> str:
        """This request's outcome once the provider takes it, as ``sim.model`` draws it
        after its token wait (``draw_outage`` came first)."""
        rng = self.rng
        model = self.config.model
        timeout = max(model.timeout_rate, self.fault_rate("timeouts", now))
        limit = max(model.rate_limit_rate, self.fault_rate("rate_limit", now))
        errors = max(model.error_rate, self.fault_rate("errors", now))
        draw = rng.random()
        if draw < timeout:
            return "timeouts"
        if draw < timeout + limit:
            return "rate_limit"
        if draw < timeout + limit + errors:
            return "errors"
        if draw < timeout + limit + errors + model.reject_rate:
            return "reject"
        return "accepted"

    def queue_ahead(self, now: float) -> float:
        """Scenario seconds a request arriving at ``now`` would wait, its slot not taken."""
        return max(0.0, self._token_free_at - now) if self.config.throughput else 0.0

    def queue_wait(self, segments: int, now: float) -> float:
        """Scenario seconds a request for ``segments`` arriving at ``now`` waits for the
        provider's throughput, and its slot taken: ``sim.model``'s segment token. Read and
        written with no ``await`` between, so concurrent requests queue in arrival order."""
        if not self.config.throughput:
            return 0.0
        start = max(now, self._token_free_at)
        self._token_free_at = start + segments / self.config.model.segments_per_second
        return start - now

    def draw_latency(self) -> float:
        """Scenario seconds of the provider's answer time, drawn as ``sim.model`` draws it:
        ``latency_median_s`` x lognormal(0, sigma); 0 when latency is off."""
        if not self.config.latency:
            return 0.0
        model = self.config.model
        sigma = model.sigma
        return model.latency_median_s * (self.latency_rng.lognormvariate(0.0, sigma)
                                         if sigma else 1.0)

    def authorised(self, request: Request, account_sid: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = self.config.account_sid
        return (
            bool(sep)
            and user == account_sid
            and (expected is None or hmac.compare_digest(user, expected))
            and user.startswith("AC")
            and hmac.compare_digest(password.encode(), self.config.auth_token.encode())
        )

    # -- endpoints ------------------------------------------------------------------

    async def create_message(self, request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        if not self.authorised(request, account_sid):
            return twilio_error(401, 20003, "Authenticate",
                                {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return twilio_error(413, 21617, "The concatenated message body is too long")
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return twilio_error(400, 21601, "Malformed form body")
        to = form.get("To", "")
        sender = form.get("From") or form.get("MessagingServiceSid", "")
        text = form.get("Body", "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not sender:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not text:
            return twilio_error(400, 21602, "Message body is required.")
        if not E164.fullmatch(to):  # Twilio refuses anything else with 21211
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if len(text) > MAX_BODY_CHARS:  # Twilio's own limit, whatever the encoding
            return twilio_error(400, 21617, "The concatenated message body exceeds the "
                                f"{MAX_BODY_CHARS} character limit")
        now = self.scenario_time()
        if self.draw_outage(now):  # the provider never saw it: no queue, no latency
            self.bill.count("outage")
            return twilio_error(503, 20503, "Service Unavailable", {"Connection": "close"})
        # The outcome is the provider's when it takes the request, after its queue, as
        # sim.model draws it after the token wait: a fault window that opens while a
        # request waits applies to it. Drawn on arrival all the same (before any await,
        # so in arrival order, and the queue is first come first served).
        outcome = self.draw(now + self.queue_ahead(now))
        self.bill.count(outcome)
        config = self.config
        # Shaping, decided on arrival: every other outcome waits for its segments' turn,
        # as every attempt takes the simulator's token; then each but a timeout (held
        # timeout_delay_s instead) takes its latency.
        wait = self.queue_wait(segment_info(text).segments, now)
        latency = 0.0 if outcome == "timeouts" else self.draw_latency()
        self.bill.record_shaping(
            queue_wait_s=wait / config.speed if config.throughput else None,
            latency_s=latency / config.speed if config.latency and outcome != "timeouts"
            else None)
        created = (self.bill.reserve(to, sender, text, at_s=now + wait,
                                     status_callback=form.get("StatusCallback") or None)
                   if outcome in ("accepted", "timeouts") else None)
        if wait > 0 and not await self._pause(wait / config.speed):
            # stopping with requests still queued: they were never taken, nor billed
            if created is not None:
                self.bill.drop(created)
            return twilio_error(503, 20503, "Service Unavailable", {"Connection": "close"})
        if outcome in ("rate_limit", "errors", "reject") and latency > 0:
            await self._pause(latency / config.speed)
        if outcome == "rate_limit":
            retry = config.model.retry_after_s
            return twilio_error(429, 20429, "Too Many Requests",
                                # whole seconds, rounded up: never sooner than the model's
                                {"Retry-After": str(max(1, math.ceil(retry)))})
        if outcome == "errors":
            return twilio_error(config.error_status, 20500, "Internal Server Error")
        if outcome == "reject":
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        # billed when the provider takes it (after its queue, before its answer time): the
        # receipt is when the reply "left", as sim.model's reply latency ends
        assert created is not None  # accepted or timeouts
        message = self.bill.charge(created)
        if outcome == "timeouts":
            self._start_callbacks(account_sid, message)  # while the answer is withheld
            await self._pause(config.timeout_delay_s)  # the fault itself: answer too late
        else:
            if latency > 0:
                await self._pause(latency / config.speed)
            self._start_callbacks(account_sid, message)  # sent, then delivered: after 201
        return JSONResponse(self._resource(account_sid, message), status_code=201)

    def _start_callbacks(self, account_sid: str, message: BilledMessage) -> None:
        if message.status_callback and self.config.status_callbacks:
            task = asyncio.create_task(self._call_back(account_sid, message))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    async def _call_back(self, account_sid: str, message: BilledMessage) -> None:
        """POST ``sent`` then ``delivered`` to the message's StatusCallback, signed."""
        url = message.status_callback
        assert url is not None
        if not url.startswith(("http://", "https://")):
            self.bill.count_callback("unreachable")
            return
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S)
        for status in ("sent", "delivered"):
            form = [("AccountSid", account_sid), ("ApiVersion", "2010-04-01"),
                    ("From", message.sender), ("MessageSid", message.sid),
                    ("MessageStatus", status), ("SmsSid", message.sid),
                    ("SmsStatus", status), ("To", message.to)]
            signature = sign_twilio(self.config.auth_token, url, form)
            try:
                answer = await self._http.post(url, data=dict(form),
                                               headers={"X-Twilio-Signature": signature})
            except httpx.HTTPError:
                self.bill.count_callback("unreachable")
                return
            self.bill.count_callback("delivered" if answer.is_success else "refused")

    async def aclose(self) -> None:
        """Let the callbacks under way finish (at most ``CALLBACK_TIMEOUT_S``), then stop."""
        if self._callbacks:
            _, late = await asyncio.wait(set(self._callbacks), timeout=CALLBACK_TIMEOUT_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _resource(self, account_sid: str, message: BilledMessage, *, sent: bool = True
                  ) -> dict[str, Any]:
        created = format_datetime(dt.datetime.fromtimestamp(message.wall_at, dt.UTC),
                                  usegmt=True)
        price = from_micros(message.price_micros)
        return {
            "sid": message.sid,
            "account_sid": account_sid,
            "to": message.to,
            "from": message.sender,
            "body": message.body,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(message.segments),
            "num_media": "0",
            "price": f"-{price}" if sent else None,  # Twilio prices a message once sent
            "price_unit": "EUR",
            "date_created": created,
            "date_updated": created,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{message.sid}.json",
        }

    async def list_messages(self, request: Request) -> Response:
        """Twilio's ``GET .../Messages.json``: the account's messages, newest first,
        filtered by ``To`` and ``From`` when given, one page of ``PageSize`` (at most
        1000, default 50). The responder looks its ``unknown`` replies up here."""
        account_sid = request.path_params["account_sid"]
        if not self.authorised(request, account_sid):
            return twilio_error(401, 20003, "Authenticate",
                                {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        query = request.query_params
        size_text = query.get("PageSize", "50")
        if not (size_text.isascii() and size_text.isdigit()) or not 1 <= int(size_text) <= 1000:
            return twilio_error(400, 20001, "PageSize must be from 1 to 1000")
        size = int(size_text)
        to, sender = query.get("To"), query.get("From")
        def wanted(m: BilledMessage) -> bool:
            return (to is None or m.to == to) and (sender is None or m.sender == sender)

        with self.bill._lock:  # billed and queued as of one instant: (message, sent)
            chosen = [(m, True) for m in self.bill.messages if wanted(m)]
            chosen += [(m, False) for m in self.bill.pending.values() if wanted(m)]
        chosen.sort(key=lambda pair: pair[0].sid, reverse=True)  # sids number them as created
        page = chosen[:size]
        return JSONResponse({
            "messages": [self._resource(account_sid, m, sent=sent) for m, sent in page],
            "page": 0, "page_size": size, "first_page_uri": str(request.url.path),
            "next_page_uri": None, "previous_page_uri": None, "uri": str(request.url.path),
        })

    async def get_messages(self, request: Request) -> Response:
        """Billed messages from index ``since`` on (default 0), oldest first."""
        since = request.query_params.get("since", "0")
        if not (since.isascii() and since.isdigit()):
            return JSONResponse({"error": f"since must be a message index of 0 or more, "
                                          f"got {since!r}"}, status_code=400)
        start = int(since)
        with self.bill._lock:
            chosen = self.bill.messages[start:]
        return JSONResponse([
            {"sid": m.sid, "to": m.to, "from": m.sender, "segments": m.segments,
             "price_micros": m.price_micros, "at_s": m.at_s, "wall_at": m.wall_at,
             "reply_to": _reply_to(m.status_callback)}
            for m in chosen
        ])

    async def set_clock(self, request: Request) -> Response:
        """``{"scenario_time_s": T, "in_s": D}``: the scenario clock reads T in D wall
        seconds (0 if left out), and runs on at ``--speed`` from there. ``raidsim load``
        sets it to its first message's time at the moment it sends it, so fault windows,
        throughput and latency fall at the trace's times, not at the fake's start plus
        however long the responder took to come up (x ``--speed``)."""
        try:
            data = json.loads(await request.body())
        except ValueError:
            data = None
        values = {}
        for key, default in (("scenario_time_s", None), ("in_s", 0.0)):
            value = data.get(key, default) if isinstance(data, dict) else None
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value) or value < 0):
                return JSONResponse({"error": f"{key} must be a number of seconds, 0 or "
                                              f"more, got {value!r}"}, status_code=400)
            values[key] = float(value)
        with self.bill._lock:
            queued = bool(self.bill.pending)
        if queued:  # their queue times were in the old clock
            return JSONResponse({"error": "messages are still waiting in the throughput "
                                          "queue; set the clock before a run"},
                                status_code=409)
        self.offset_s = values["scenario_time_s"]
        self.started = self.clock() + values["in_s"]
        self._token_free_at = -math.inf
        return JSONResponse({"scenario_time_s": round(self.scenario_time(), 3)})

    async def get_bill(self, request: Request) -> Response:
        snapshot = self.bill.snapshot()
        snapshot["scenario_time_s"] = round(self.scenario_time(), 3)
        snapshot["shaping"] = self.shaping()
        snapshot["faults"] = self.fault_settings()
        return JSONResponse(snapshot)

    def fault_settings(self) -> dict[str, Any]:
        """The fault rates it draws from and its fault windows, in scenario time."""
        model = self.config.model
        return {"rates": {"errors": model.error_rate, "rate_limit": model.rate_limit_rate,
                          "timeouts": model.timeout_rate, "rejects": model.reject_rate},
                "windows": [{"kind": f.kind, "start_s": f.start_s, "end_s": f.end_s,
                             "rate": f.rate} for f in self.config.faults]}

    def shaping(self) -> dict[str, Any]:
        """The configured latency and throughput, in scenario units; None where off."""
        config, model = self.config, self.config.model
        return {"latency_median_s": model.latency_median_s if config.latency else None,
                "latency_p95_s": model.latency_p95_s if config.latency else None,
                "segments_per_second": model.segments_per_second if config.throughput
                else None,
                "speed": config.speed}


def create_app(provider: FakeProvider) -> Starlette:
    return Starlette(routes=[
        Route(MESSAGES_PATH.replace("{account_sid}", "{account_sid:str}"),
              provider.create_message, methods=["POST"]),
        Route(MESSAGES_PATH.replace("{account_sid}", "{account_sid:str}"),
              provider.list_messages, methods=["GET"]),
        Route(BILL_PATH, provider.get_bill, methods=["GET"]),
        Route(CLOCK_PATH, provider.set_clock, methods=["POST"]),
        Route(MESSAGES_LOG_PATH, provider.get_messages, methods=["GET"]),
    ])


# -- serving ------------------------------------------------------------------------


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket; TCP_NODELAY is inherited by accepted connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serving(provider: FakeProvider, host: str = "127.0.0.1", port: int = 0,
                  ) -> AsyncIterator[str]:
    """Serve the fake on uvicorn in this event loop; yields its base URL.

    During a full outage the listening socket is closed (clients get "connection
    refused") and opened again on the same port afterwards.
    """
    import uvicorn

    sock = listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    provider._stopping = asyncio.Event()
    server = uvicorn.Server(uvicorn.Config(create_app(provider), lifespan="off",
                                           log_level="warning", access_log=False, ws="none"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    gate: asyncio.Task[None] | None = None
    try:
        deadline = time.monotonic() + 20.0
        while not server.started:  # bounded
            if task.done():
                task.result()
                raise RuntimeError("fake provider stopped before it started")
            if time.monotonic() > deadline:
                raise RuntimeError("fake provider did not start within 20 s")
            await asyncio.sleep(0.01)
        if provider.config.outage_mode == "refuse" and any(
                f.kind == "outage" and f.rate >= 1.0 for f in provider.config.faults):
            gate = asyncio.create_task(_outage_gate(provider, server, host, bound_port))
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound_port}"
    finally:
        if gate is not None:
            gate.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gate
        provider._stopping.set()  # queued and withheld answers end now: uvicorn waits
        server.should_exit = True  # for the requests under way before it stops
        await asyncio.wait_for(task, timeout=30.0)
        await provider.aclose()


async def _outage_gate(provider: FakeProvider, server: Any, host: str, port: int) -> None:
    """Close the listener while a full outage lasts; reopen it on the same port after."""
    loop = asyncio.get_running_loop()
    factory = server.servers[0]._protocol_factory  # asyncio.Server keeps uvicorn's factory
    closed = False
    while not server.should_exit:  # runs until the server stops (task cancelled then)
        down = provider.full_outage(provider.scenario_time())
        if down and not closed:
            for listener in server.servers:
                listener.close()
            server.servers.clear()
            closed = True
        elif not down and closed:
            sock = listening_socket(host, port)
            server.servers.append(await loop.create_server(factory, sock=sock))
            closed = False
        await asyncio.sleep(OUTAGE_POLL_S)


__all__ = [
    "BILL_PATH",
    "CLEAN",
    "MESSAGES_LOG_PATH",
    "MESSAGES_PATH",
    "Bill",
    "BilledMessage",
    "FakeProvider",
    "FakeProviderConfig",
    "create_app",
    "serving",
]


def _reply_to(callback: str | None) -> str | None:
    """The inbound message id a reply answers, as the responder names it in its status
    callback URL (``?reply=SM...``); None when the request named no callback."""
    if not callback:
        return None
    values = parse_qs(urlsplit(callback).query).get("reply")
    return values[0] if values else None
