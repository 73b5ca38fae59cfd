"""The ASGI service: webhooks in, replies out through the outbox, operations on the side.

Resources (database, DB thread, httpx client, background tasks) are built in the
lifespan, never at import. ``create_app(settings)`` takes injectable seams for
tests: a clock, an httpx transport and a seeded ``random.Random``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from responder.config import Settings, is_loopback_host
from responder.logs import enabled, event, pseudonymise, redact_id, redact_numbers
from responder.metrics import Metrics
from responder.outbox import OutboxSender
from responder.policy import Action
from responder.policy.money import format_eur, from_micros
from responder.policy.retry import CircuitBreaker
from responder.provider import TwilioClient
from responder.service import Accepted, Batcher, DbThread, Responder
from responder.signing import signature_algorithm, verify_generic, verify_twilio
from responder.store import PENDING, SENDING, UNKNOWN, Inbound, open_store
from responder.transport import ProviderTransport, environment_proxies

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_FIELDS = 200
MAX_ID_LEN = 64
_GENERIC_PREFIX = "generic:"  # a generic webhook's id is stored under this prefix
# the longest ``?reply=`` a status callback carries: an inbound id as stored
MAX_REPLY_REF_LEN = len(_GENERIC_PREFIX) + MAX_ID_LEN
MAX_NUMBER_LEN = 32
POLICY_TICK_S = 1.0
PURGE_EVERY_S = 3600.0
# The server's collector thresholds (CPython's defaults: 700, 10, 10); see ``create_app``.
GC_THRESHOLDS = (2_000, 10, 100)


BODY_READ_TIMEOUT_S = 30.0  # the longest a request's body may take to arrive


class HTTPError(Exception):
    """An answer with ``status`` and ``reason``; ``label`` is the reason a rejected webhook
    is counted under, when ``reason`` quotes the request (a metric label must not)."""

    def __init__(self, status: int, reason: str, *, label: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.label = reason if label is None else label


@dataclass
class Context:
    """Everything the lifespan builds; handlers reach it through ``app.state.ctx``."""

    settings: Settings
    core: Responder
    db: DbThread
    metrics: Metrics
    sender: OutboxSender
    clock: Callable[[], float]
    batcher: Batcher
    policy_wake: asyncio.Event = field(default_factory=asyncio.Event)
    key: bytes = b""


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
    migrate: bool = True,
    tune_gc: bool = False,
) -> Starlette:
    """The responder as an ASGI app. Nothing touches the database before start-up.

    ``tune_gc`` (the server sets it; it changes process-wide settings, restored at
    shutdown) moves everything built at start-up out of the cyclic garbage collector's
    reach (``gc.freeze``), so its full collections scan only what the service allocated
    since, and sets ``GC_THRESHOLDS``. The policy keeps a few container objects per
    sender (a raid brings a new sender with most messages), so the long-lived heap grows
    with the traffic: with CPython's defaults, a full collection ran each time it had
    grown by a quarter (about 25 of them, 1.5 s of CPU, over ~75k webhooks), and young
    collections every ~20 webhooks. Measured in the worker at 32 connections: garbage
    collection went from ~14% of its CPU to ~3%, with young pauses of ~0.3 ms
    (generation 1: ~1.7 ms); a full collection's pause still grows with the policy's
    memory (at most two tracked objects per sender), it just comes far less often. Memory is
    freed by reference counting as before; only cyclic garbage waits a little longer.
    """
    metrics = Metrics()
    holder: dict[str, Context] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = open_store(settings.database_url)
        db = DbThread(inline=store.dialect == "sqlite")
        core = Responder(settings, store)
        core.count_folded = lambda kind, count: metrics.folded.labels(kind).inc(count)
        try:
            await db.call(core.start, now=clock(), migrate=migrate)
        except BaseException:
            await db.call(store.close)
            db.close()
            raise
        timeout = httpx.Timeout(connect=settings.send_connect_timeout_s,
                                read=settings.send_read_timeout_s,
                                write=settings.send_read_timeout_s,
                                pool=settings.send_connect_timeout_s)
        limits = httpx.Limits(max_connections=max(4, settings.send_concurrency))
        provider_transport = transport
        if provider_transport is None and not environment_proxies():
            provider_transport = ProviderTransport(limits=limits)
        client = httpx.AsyncClient(timeout=timeout, transport=provider_transport, limits=limits)
        callback = (
            f"{settings.public_url.rstrip('/')}/webhooks/twilio/status"
            if settings.public_url and settings.status_callback else None
        )
        twilio = TwilioClient(client, api_base=settings.twilio_api_base,
                              account_sid=settings.twilio_account_sid,
                              auth_token=settings.twilio_auth_token, status_callback=callback)
        # The lease owner is this process alone: with `--workers N` (or one
        # RAIDSIM_INSTANCE_ID given to several processes) a worker stopping released the
        # leases of a sibling whose call was still in flight, and the reply went twice.
        owner = f"{settings.instance_id or 'raidsim'}-{secrets.token_hex(6)}"
        sender = OutboxSender(
            core, db, twilio, metrics, owner=owner, concurrency=settings.send_concurrency,
            max_attempts=settings.send_max_attempts,
            breaker=CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown_s, clock),
            rng=rng or random.Random(), clock=clock, rate_per_s=settings.send_rate_per_s,
        )
        ctx = Context(settings, core, db, metrics, sender, clock, Batcher(db, core),
                      key=settings.pseudonym_secret)
        holder["ctx"] = ctx
        app.state.ctx = ctx
        gc_thresholds = gc.get_threshold()
        if tune_gc:
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        stopping = asyncio.Event()
        tasks = [
            asyncio.create_task(sender.run(stopping, settings.drain_timeout_s), name="outbox"),
            asyncio.create_task(_policy_clock(ctx, stopping), name="policy-clock"),
        ]
        event("started", instance=owner, database=store.dialect, replayed=core.replayed,
              held=core.state.held_count, caps_source=await db.call(store.caps_source))
        caps = await db.call(store.caps)
        if caps.total_micros is None:
            # What switched the 2017 number off: nothing bounded what a raid could spend.
            event("budget_uncapped", level=logging.WARNING,
                  per_hour_eur=(None if caps.per_hour_micros is None
                                else format_eur(caps.per_hour_micros)),
                  hint="no total cap: set RAIDSIM_BUDGET_EUR, or the caps with PUT "
                  "/admin/budget; without one, what a raid can spend has no bound")
        try:
            yield
        finally:
            stopping.set()
            # The drain, then the calls still in flight at its deadline: each ends within
            # the provider timeouts (pool and connect, then write and read), plus a margin.
            longest_call = 2 * settings.send_connect_timeout_s + 2 * settings.send_read_timeout_s
            _done, pending = await asyncio.wait(
                tasks, timeout=settings.drain_timeout_s + longest_call + 5)
            for task in pending:
                task.cancel()
            counts = await db.call(store.outbox_counts)
            event("stopped", pending=counts[PENDING], sending=counts[SENDING],
                  unknown=counts[UNKNOWN])
            await client.aclose()
            await db.call(store.close)
            db.close()
            if tune_gc:
                gc.set_threshold(*gc_thresholds)

    def ctx_of(request: Request) -> Context:
        return holder["ctx"]

    routes = [
        Route("/webhooks/twilio/sms", _guard(ctx_of, twilio_sms), methods=["POST"]),
        Route("/webhooks/twilio/status", _guard(ctx_of, twilio_status), methods=["POST"]),
        Route("/webhooks/generic/sms", _guard(ctx_of, generic_sms), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", _guard(ctx_of, readyz), methods=["GET"]),
        Route("/metrics", _guard(ctx_of, metrics_endpoint), methods=["GET"]),
    ]
    from responder.admin import admin_routes

    routes.extend(admin_routes(ctx_of, _guard))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    return app


Handler = Callable[[Request, Context], Awaitable[Response]]


def _guard(
    ctx_of: Callable[[Request], Context], handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Turn HTTPError into its status, and a database failure into 503 (retry later)."""

    async def endpoint(request: Request) -> Response:
        ctx = ctx_of(request)
        try:
            return await handler(request, ctx)
        except HTTPError as exc:
            # Webhook rejections are counted under a fixed set of labels (a reason that
            # quotes the request, which may hold a phone number, has a label without it);
            # admin errors quote the operator's input and are not webhook rejections.
            if request.url.path.startswith("/webhooks/"):
                ctx.metrics.rejected.labels(exc.label).inc()
            # A reason may quote the request (an admin body's unknown key): a lone
            # surrogate escape there ("\ud800") cannot be UTF-8, and encoding it was a 500.
            reason = exc.reason.encode("utf-8", "backslashreplace")
            return PlainTextResponse(reason, status_code=exc.status)
        except ClientDisconnect:
            # The client hung up before its body arrived: nothing was stored, nothing is
            # wrong here; not the database-down signal ("unavailable") an alert watches.
            event("client_disconnected", path=_route_path(request))
            ctx.metrics.rejected.labels("client disconnected").inc()
            return PlainTextResponse("client disconnected", status_code=400)
        except Exception as exc:
            event("request_failed", level=40, path=_route_path(request),
                  error=redact_numbers(ctx.key, f"{type(exc).__name__}: {exc}"))
            ctx.metrics.rejected.labels("unavailable").inc()
            return PlainTextResponse("temporarily unavailable", status_code=503,
                                     headers={"Retry-After": "1"})

    return endpoint


def _route_path(request: Request) -> str:
    """The request's path for a log line: its route's (``/admin/numbers/{kind}/{pattern}``),
    since a path may hold a number pattern, which is personal data."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    return "/".join(request.url.path.split("/")[:3])  # a Starlette that names no route


# -- request parsing ---------------------------------------------------------------


def raw_headers(request: Request) -> dict[bytes, bytes]:
    """The request's headers by (lower-case, as ASGI gives them) name, first value first.

    One dict per request for the handful of lookups a webhook makes: Starlette's
    ``Headers.get`` scans the whole list per lookup (and raises and catches KeyError for
    each absent header). Same answers: the first occurrence of a name wins.
    """
    headers = request.scope["headers"]
    return dict(reversed(headers if isinstance(headers, list) else list(headers)))


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


async def read_body(request: Request, limit: int,
                    headers: dict[bytes, bytes] | None = None) -> bytes:
    if headers is None:
        headers = raw_headers(request)
    declared = _header(headers, b"content-length")
    if declared is not None:
        if not (declared.isdigit() and declared.isascii()):
            raise HTTPError(400, "bad content-length")
        if int(declared) > limit:
            raise HTTPError(413, "body too large")
    # ASGI messages read directly (what ``Request.stream()`` does, without an async
    # generator per request); the body is read once, here.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    try:
        # A client trickling its body a byte at a time holds a connection and its buffer:
        # the whole body must arrive within BODY_READ_TIMEOUT_S (a webhook is one packet).
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "http.request":
                    chunk = message.get("body", b"")
                    if chunk:
                        size += len(chunk)
                        if size > limit:
                            raise HTTPError(413, "body too large")
                        chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                elif kind == "http.disconnect":
                    raise ClientDisconnect()
    except TimeoutError as exc:
        raise HTTPError(408, "body too slow") from exc
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_form(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)``, cheaper.

    The same pairs, in the same order, with the same errors (ValueError past MAX_FIELDS,
    ``unquote``'s replacement character for bad UTF-8), without ``parse_qsl``'s per-field
    type coercion; ``tests/test_responder_signing.py`` checks it against ``parse_qsl``.
    """
    if text.count("&") + 1 > MAX_FIELDS:
        raise ValueError("Max number of fields exceeded")
    pairs = []
    for pair in text.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name)
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value)
        pairs.append((name, value))
    return pairs


async def read_form(request: Request, limit: int,
                    headers: dict[bytes, bytes] | None = None) -> list[tuple[str, str]]:
    if headers is None:
        headers = raw_headers(request)
    content_type = (_header(headers, b"content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPError(415, "expected application/x-www-form-urlencoded")
    body = await read_body(request, limit, headers)
    try:
        return parse_form(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPError(400, "malformed form body") from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is refused, not "last one wins"
    (which of two ids would a provider, a proxy or a signer have meant?)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise HTTPError(400, f"malformed JSON: the key {key!r} is given twice",
                            label="malformed JSON: a key is given twice")
        data[key] = value
    return data


def _no_constant(name: str) -> Any:
    raise HTTPError(400, f"malformed JSON: {name} is not a JSON number")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; 400 for anything else: deep nesting, a
    key given twice, NaN or Infinity (Python's json reads them; JSON has no such number)."""
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HTTPError(400, "malformed JSON") from exc
    if not isinstance(data, dict):
        raise HTTPError(400, "expected a JSON object")
    return data


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "array" if isinstance(value, list) else "object"


def _json_content_type(request: Request) -> None:
    """415 for a body declared as anything but JSON (a form, text/plain); none is read as
    JSON, as the signature covers the bytes whatever they are called."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    kind = declared.split(";")[0].strip().lower()
    if kind != "application/json" and not (kind.startswith("application/")
                                           and kind.endswith("+json")):
        raise HTTPError(415, "expected application/json")


def signed_url(request: Request, settings: Settings,
               headers: dict[bytes, bytes] | None = None) -> str:
    """The URL Twilio called: RAIDSIM_PUBLIC_URL + path + query behind a proxy."""
    if not settings.public_url:
        scope = request.scope
        server = scope.get("server")
        if headers is None:
            headers = raw_headers(request)
        return _request_url(scope.get("scheme", "http"), None if server is None else tuple(server),
                            scope["path"], scope.get("query_string", b""),
                            _header(headers, b"host"))
    url = settings.public_url.rstrip("/") + request.url.path
    query = request.url.query
    return f"{url}?{query}" if query else url


@functools.lru_cache(maxsize=256)
def _request_url(scheme: str, server: tuple[Any, ...] | None, path: str, query_string: bytes,
                 host: str | None) -> str:
    """``str(request.url)``, from the only parts of the scope Starlette builds it from.

    Cached: webhooks arrive on one or a few URLs, and building a URL costs more than the
    HMAC. Bounded, so odd Host headers or paths only evict entries.
    """
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    return str(URL(scope={"type": "http", "scheme": scheme, "server": server, "path": path,
                          "query_string": query_string, "headers": headers}))


def check_twilio(request: Request, ctx: Context, params: list[tuple[str, str]],
                 headers: dict[bytes, bytes] | None = None) -> None:
    settings = ctx.settings
    if headers is None:
        headers = raw_headers(request)
    algorithm = signature_algorithm(_header(headers, b"x-twilio-webhooks-signature-settings"))
    key = settings.twilio_auth_token
    if algorithm != "HMAC_SHA1":
        key = settings.twilio_webhook_signing_key or ""
    if not verify_twilio(key, signed_url(request, settings, headers), params,
                         _header(headers, b"x-twilio-signature"), algorithm):
        raise HTTPError(403, "bad signature")


def _storable(value: str) -> bool:
    """Whether both databases can store ``value``: no NUL (PostgreSQL text refuses it) and
    no lone surrogate (not UTF-8; a JSON ``\\ud800`` escape decodes to one)."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _body_text(value: str) -> str:
    """A message body both databases can store: NUL and lone surrogates become U+FFFD."""
    if _storable(value):
        return value
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch
                   for ch in value)


# Form fields that name the message or its outcome: given twice, which one did the signer
# mean? (A dict keeps the last; the JSON webhook refuses a key given twice too.)
_ONCE = frozenset({"AccountSid", "MessageSid", "SmsMessageSid", "SmsSid", "From", "To",
                   "Body", "MessageStatus", "SmsStatus", "ErrorCode"})


def _form_fields(params: list[tuple[str, str]]) -> dict[str, str]:
    """A signed form's fields; 400 when one of ``_ONCE`` is given twice."""
    fields: dict[str, str] = {}
    for key, value in params:
        if key in fields and key in _ONCE:
            raise HTTPError(400, f"{key} is given twice")
        fields[key] = value
    return fields


def _field(fields: dict[str, str], *names: str, limit: int, required: bool = True) -> str:
    for name in names:
        value = fields.get(name)
        if value:
            if value.isspace():  # no id, number or status is blank: a broken integration
                raise HTTPError(400, f"{name} is blank")
            if len(value) > limit:
                raise HTTPError(400, f"{name} too long")
            # U+FFFD: what bad percent-encoded UTF-8 decodes to; no id or number holds one
            if not _storable(value) or "\ufffd" in value:
                raise HTTPError(400, f"{name} holds a NUL or invalid character")
            return value
    if required:
        raise HTTPError(400, f"missing {names[0]}")
    return ""


# -- webhooks ----------------------------------------------------------------------


async def twilio_sms(request: Request, ctx: Context) -> Response:
    started = time.perf_counter()
    headers = raw_headers(request)
    params = await read_form(request, ctx.settings.max_body_bytes, headers)
    check_twilio(request, ctx, params, headers)
    fields = _form_fields(params)
    token = _header(headers, b"i-twilio-idempotency-token")
    inbound = Inbound(
        message_sid=_field(fields, "MessageSid", "SmsMessageSid", "SmsSid", limit=MAX_ID_LEN),
        sender=_field(fields, "From", limit=MAX_NUMBER_LEN),
        recipient=_field(fields, "To", limit=MAX_NUMBER_LEN),
        body=_body_text(fields.get("Body", "")),
        received_at=ctx.clock(),
        source="twilio",
        idempotency_token=token[:200] if token else None,
    )
    accepted = await _accept(ctx, inbound)
    decision = accepted.decision
    # The decision, for replay tools (`raidsim load`); Twilio reads only the body.
    shown = "duplicate" if decision is None else f"{decision.action} {decision.rule}"
    response = Response(EMPTY_TWIML, media_type="text/xml",
                        headers={"X-Raidsim-Decision": shown})
    ctx.metrics.webhook_latency.observe(time.perf_counter() - started)
    return response


async def generic_sms(request: Request, ctx: Context) -> Response:
    """A signed JSON webhook for other providers (scheme in docs/responder.md)."""
    started = time.perf_counter()
    secret = ctx.settings.webhook_secret
    if not secret:
        raise HTTPError(404, "generic webhook disabled (set RAIDSIM_WEBHOOK_SECRET)")
    body = await read_body(request, ctx.settings.max_body_bytes)
    if not verify_generic(secret, body, request.headers.get("x-raidsim-signature")):
        raise HTTPError(403, "bad signature")
    _json_content_type(request)
    data = parse_json_object(body)
    for name in ("id", "from", "to", "body"):
        if name in data and not isinstance(data[name], str):
            raise HTTPError(400, f"{name} must be a string, not a JSON {_json_type(data[name])}")
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    inbound = Inbound(
        message_sid=_GENERIC_PREFIX + _field(fields, "id", limit=MAX_ID_LEN),
        sender=_field(fields, "from", limit=MAX_NUMBER_LEN),
        recipient=_field(fields, "to", limit=MAX_NUMBER_LEN),
        body=_body_text(fields.get("body", "")),
        received_at=ctx.clock(),
        source="generic",
    )
    accepted = await _accept(ctx, inbound)
    ctx.metrics.webhook_latency.observe(time.perf_counter() - started)
    decision = accepted.decision
    return JSONResponse({
        "duplicate": accepted.duplicate,
        "decision": None if decision is None else str(decision.action),
        "rule": None if decision is None else decision.rule,
    })


async def _accept(ctx: Context, inbound: Inbound) -> Accepted:
    accepted = await ctx.batcher.accept(inbound)
    metrics = ctx.metrics
    if accepted.duplicate:
        metrics.duplicates.inc()
        event("inbound_duplicate", message_sid=redact_id(ctx.key, inbound.message_sid))
        return accepted
    decision = accepted.decision
    assert decision is not None
    metrics.count_inbound(str(decision.action), decision.rule)
    if accepted.queued:
        ctx.sender.wake.set()
    if accepted.cancelled:
        ctx.sender.cancelled(accepted.cancelled, "opted_out")
    if decision.action is Action.DEFER:
        ctx.policy_wake.set()
    if enabled():  # the keyed hash costs more than the rest of the log call
        event("inbound", message_sid=redact_id(ctx.key, inbound.message_sid),
              source=inbound.source,
              sender=pseudonymise(ctx.key, inbound.sender), decision=str(decision.action),
              rule=decision.rule, until=decision.until)
    return accepted


async def twilio_status(request: Request, ctx: Context) -> Response:
    headers = raw_headers(request)
    params = await read_form(request, ctx.settings.max_body_bytes, headers)
    check_twilio(request, ctx, params, headers)
    fields = _form_fields(params)
    sid = _field(fields, "MessageSid", "SmsSid", limit=MAX_ID_LEN)
    status = _field(fields, "MessageStatus", "SmsStatus", limit=MAX_ID_LEN)
    error_code = _field(fields, "ErrorCode", limit=MAX_ID_LEN, required=False) or None
    # the outbox's own reference (``?reply=``, covered by the signature): it names the
    # reply when the send never learnt the provider's sid (a timeout left it ``unknown``)
    reply_to = _field({"reply": request.query_params.get("reply", "")}, "reply",
                      limit=MAX_REPLY_REF_LEN, required=False) or None
    matched = await ctx.db.call(ctx.core.store.record_status, sid, status, error_code,
                                now=ctx.clock(), reply_to=reply_to)
    event("status_callback", provider_sid=sid, status=status, error_code=error_code,
          reply_to=None if reply_to is None else redact_id(ctx.key, reply_to),
          matched=matched)
    return Response(status_code=200)


# -- operations ----------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request, ctx: Context) -> Response:
    try:
        ready = await asyncio.wait_for(ctx.db.call(ctx.core.store.ready), timeout=5.0)
    except TimeoutError:
        ready = False
    if not ready:
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse({"status": "ready", "provider": provider_shown(ctx.settings)})


def provider_shown(settings: Settings) -> str:
    """Where replies go, as ``/readyz`` says it: a loopback provider's base URL (a fake, in
    a rehearsal: ``raidsim load`` checks it is its ``--provider`` before sending a
    webhook), else ``"remote"`` (a real provider: no more is said to whoever asks)."""
    base = settings.twilio_api_base.rstrip("/")
    return base if is_loopback_url(base) else "remote"


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is a loopback address or ``localhost``."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return is_loopback_host(host)


RAID_PERIODS_SHOWN = 50  # GET /admin/budget's raid_periods: the latest ones


def budget_snapshot(ctx: Context) -> dict[str, Any]:
    """Runs on the DB thread."""
    store = ctx.core.store
    caps = store.caps()
    spent = store.spent_micros()
    now = ctx.clock()

    def eur(micros: int | None) -> str | None:
        return None if micros is None else str(from_micros(micros))

    left = None if caps.total_micros is None else max(0, caps.total_micros - spent)
    return {
        "spent_eur": eur(spent),
        "spent_this_hour_eur": eur(store.spent_in_hour_micros(now)),
        "total_eur": eur(caps.total_micros),
        "per_hour_eur": eur(caps.per_hour_micros),
        "left_eur": eur(left),
        "caps_source": store.caps_source(),
        "reply_cost_eur": eur(ctx.core.state.reply_cost_micros),
        # from the database, which holds every process's held replies (this process's
        # own count was one worker's under `--workers N`)
        "held": store.held_count(),
        "outbox": store.outbox_counts(),
        "raid_mode": ctx.core.state.is_raid_mode(),
        # this process's latest raid-mode periods, [start, end or null] in Unix seconds
        # (``raidsim load`` places them in trace time), and the reply it sends
        "raid_periods": [[start, end] for start, end in
                         ctx.core.state.raid_periods[-RAID_PERIODS_SHOWN:]],
        "reply_text": ctx.core.state.config.reply_text,
    }


async def metrics_endpoint(request: Request, ctx: Context) -> Response:
    token = ctx.settings.metrics_token
    if token is not None:
        # Raid mode, the money left and the count per rule tell a raid when to send and
        # which variant of its text gets through: with a token, only the scraper reads them.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("utf-8", "replace"), token.encode("ascii")):
            return Response("metrics need Authorization: Bearer $RAIDSIM_METRICS_TOKEN\n",
                            status_code=401, media_type="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    snap = await ctx.db.call(budget_snapshot, ctx)
    m = ctx.metrics
    m.spend.set(float(Decimal(snap["spent_eur"])))
    m.budget_left.set(float("inf") if snap["left_eur"] is None else float(snap["left_eur"]))
    for status, count in snap["outbox"].items():
        m.outbox.labels(status).set(count)
    m.held.set(snap["held"])
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)


async def _policy_clock(ctx: Context, stopping: asyncio.Event) -> None:
    """Every second: let the policy's time pass, release held replies when due, pick up
    operator changes, show raid mode; hourly: purge old bodies (store and policy), and
    forget the raiders long silent (their flags stay in the store)."""
    core, db = ctx.core, ctx.db
    next_purge = next_forget = 0.0
    raid_shown: bool | None = None
    while not stopping.is_set():
        now = ctx.clock()
        try:
            await db.call(core.tick, now=now)  # time passes: raid mode may end in a silence
            deadline = await db.call(core.next_deadline)
            if deadline is not None and deadline <= now:
                await release_held(ctx, now=now)
                deadline = await db.call(core.next_deadline)
            await db.call(core.refresh, now=now)
            await asyncio.to_thread(core.store.checkpoint)
        except Exception as exc:  # keep the clock alive through a database hiccup
            event("policy_clock_error", level=40,
                  error=redact_numbers(ctx.key, f"{type(exc).__name__}: {exc}"))
            deadline = None
        raid_shown = _show_raid_mode(ctx, raid_shown)
        days = ctx.settings.retention_days
        if days > 0 and now >= next_purge:
            # on its own: retention must not wait for the steps above to stop failing
            try:
                purged, forgotten = await db.call(core.purge, before=now - days * 86400.0)
                if purged or forgotten:
                    event("retention_purge", bodies=purged, texts=forgotten, days=days)
                next_purge = now + PURGE_EVERY_S
            except Exception as exc:  # tried again at the next tick
                event("retention_error", level=40,
                      error=redact_numbers(ctx.key, f"{type(exc).__name__}: {exc}"))
        if now >= next_forget:
            try:
                forgotten = await db.call(core.forget_raiders, now=now)
                if forgotten:
                    event("raiders_forgotten", raiders=forgotten)
                next_forget = now + PURGE_EVERY_S
            except Exception as exc:  # tried again at the next tick
                event("policy_clock_error", level=40,
                      error=redact_numbers(ctx.key, f"{type(exc).__name__}: {exc}"))
        timeout = POLICY_TICK_S
        if deadline is not None:
            timeout = min(POLICY_TICK_S, max(0.0, deadline - now))
        ctx.policy_wake.clear()
        waiters = [asyncio.ensure_future(ctx.policy_wake.wait()),
                   asyncio.ensure_future(stopping.wait())]
        _done, pending = await asyncio.wait(waiters, timeout=timeout,
                                            return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()


def _show_raid_mode(ctx: Context, shown: bool | None) -> bool:
    """Bring ``raidsim_raid_mode`` to the policy's raid mode, and log when it changed since
    ``shown`` (the last value shown): ``raid_mode_started``, a warning, with the policy
    time it started, or ``raid_mode_ended`` with its start and end."""
    state = ctx.core.state
    raid = state.raid_mode
    if raid != shown:
        start, end = state.raid_periods[-1] if state.raid_periods else (None, None)
        if raid:
            event("raid_mode_started", level=logging.WARNING, since=start)
        elif shown is not None:
            event("raid_mode_ended", since=start, until=end)
        ctx.metrics.raid_mode.set(1 if raid else 0)
    return raid


async def release_held(ctx: Context, *, now: float) -> int:
    """Decide again the held replies due at ``now``, persist and queue them; how many."""
    released, queued = await ctx.db.call(ctx.core.release_due, now=now)
    for item in released:
        ctx.metrics.released.labels(str(item.decision.action), item.decision.rule).inc()
        event("released", message_sid=redact_id(ctx.key, item.message.message_id),
              decision=str(item.decision.action), rule=item.decision.rule)
    if queued:
        ctx.sender.wake.set()
    return len(released)


async def advance_policy_clock(ctx: Context, until: float, *, max_steps: int = 100_000) -> int:
    """Release held replies up to ``until`` as if the policy clock woke at each deadline.

    For drivers that inject the clock (the parity test, replays): each due deadline
    ``d <= until`` is released at ``now=d`` exactly, in order, which is what the
    simulator's timer does. Call it *before* moving the injected clock past ``until``,
    so the background policy clock never finds those replies due first. Returns how many
    replies were decided; raises RuntimeError after ``max_steps`` deadlines.
    """
    decided = 0
    for _ in range(max_steps):
        deadline = await ctx.db.call(ctx.core.next_deadline)
        if deadline is None or deadline > until:
            return decided
        decided += await release_held(ctx, now=deadline)
    raise RuntimeError(f"held replies still due after {max_steps} policy deadlines")


__all__ = ["EMPTY_TWIML", "Context", "HTTPError", "advance_policy_clock", "create_app",
           "release_held"]
