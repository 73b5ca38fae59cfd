"""The admin API: budget, kill switch, block/allow lists, evidence export.

Every route needs ``Authorization: Bearer $RAIDSIM_ADMIN_TOKEN`` (compared in
constant time). Without RAIDSIM_ADMIN_TOKEN the admin API does not exist (404).
The evidence export is the only place senders' raw phone numbers leave the service (the
block and allow lists show the patterns operators wrote).
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import logging
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from responder.logs import event, pseudonymise
from responder.policy import RAID_RULES, RULES, Caps
from responder.policy.money import MoneyError, to_micros
from responder.service import allows_more_spend

if TYPE_CHECKING:
    from responder.app import Context

# Senders are E.164 ("+33612345678") and lists match them by prefix, so a pattern
# without its "+" ("336123") was stored (201) but could never match anyone.
_PATTERN = re.compile(r"^\+[0-9]{1,15}$")
CANCEL_BATCH = 500  # queued replies cancelled per transaction when a block is added
_NUMBER = re.compile(r"^\+[0-9]{8,15}$")  # one person's number (is_e164's length)


def admin_routes(ctx_of: Callable[[Request], Context], guard: Any) -> list[Route]:
    def route(path: str, handler: Callable[[Request, Context], Awaitable[Response]],
              methods: list[str]) -> Route:
        async def authorised(request: Request, ctx: Context) -> Response:
            _authorise(request, ctx)
            return await handler(request, ctx)

        return Route(path, guard(ctx_of, authorised), methods=methods)

    return [
        route("/admin/budget", get_budget, ["GET"]),
        route("/admin/budget", set_budget, ["PUT", "POST"]),
        route("/admin/kill-switch", get_kill_switch, ["GET"]),
        route("/admin/kill-switch", set_kill_switch, ["PUT", "POST"]),
        route("/admin/numbers", get_numbers, ["GET"]),
        route("/admin/numbers/{kind}", add_number, ["POST"]),
        route("/admin/numbers/{kind}/{pattern}", remove_number, ["DELETE"]),
        route("/admin/outbox", get_outbox, ["GET"]),
        route("/admin/evidence", evidence, ["GET"]),
    ]


def _authorise(request: Request, ctx: Context) -> None:
    from responder.app import HTTPError

    token = ctx.settings.admin_token
    if not token:
        raise HTTPError(404, "admin API disabled (set RAIDSIM_ADMIN_TOKEN)")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    ok = hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8"))
    if scheme.lower() != "bearer" or not ok:
        # Guessing the token must show: counted, and logged with the endpoint (its first
        # two segments: a number pattern is personal data) and the client pseudonymised.
        ctx.metrics.admin_unauthorised.inc()
        client = request.client.host if request.client is not None else ""
        endpoint = "/".join(request.url.path.split("/")[:3])
        event("admin_unauthorised", logging.WARNING, method=request.method,
              endpoint=endpoint, client=pseudonymise(ctx.key, client),
              reason="no bearer token" if not given.strip() else "wrong token")
        raise HTTPError(401, "unauthorised")


async def _json(request: Request, ctx: Context) -> dict[str, Any]:
    from responder.app import parse_json_object, read_body

    body = await read_body(request, ctx.settings.max_body_bytes)
    return parse_json_object(body or b"{}")


async def get_budget(request: Request, ctx: Context) -> Response:
    from responder.app import budget_snapshot

    return JSONResponse(await ctx.db.call(budget_snapshot, ctx))


def _amount(data: dict[str, Any], key: str, current: int | None) -> int | None:
    from responder.app import HTTPError

    if key not in data:
        return current
    value = data[key]
    if value is None:
        return None
    if isinstance(value, float | bool):
        raise HTTPError(400, f"{key} must be a string amount such as \"500.00\" or null")
    try:
        micros = to_micros(value)
    except MoneyError as exc:
        raise HTTPError(400, f"{key}: {exc}") from exc
    if micros < 0:
        raise HTTPError(400, f"{key} cannot be negative")
    return micros


async def set_budget(request: Request, ctx: Context) -> Response:
    """Body: {"total_eur": "500.00" | null, "per_hour_eur": "20" | null}; omitted keys stay,
    unknown ones are a 400."""
    from responder.app import HTTPError, budget_snapshot

    data = await _json(request, ctx)
    unknown = sorted(str(key) for key in data if key not in ("total_eur", "per_hour_eur"))
    if unknown or not data:  # a misspelt cap was a 200 that changed nothing, mid-raid
        raise HTTPError(400, f"unknown field(s) {', '.join(unknown)}: give total_eur and/or "
                        "per_hour_eur" if unknown else "give total_eur and/or per_hour_eur")
    store = ctx.core.store

    def apply() -> tuple[dict[str, Any], bool]:
        caps = store.caps()
        new = Caps(total_micros=_amount(data, "total_eur", caps.total_micros),
                   per_hour_micros=_amount(data, "per_hour_eur", caps.per_hour_micros))
        store.set_caps(new)
        ctx.core.refresh(now=ctx.clock(), force=True)
        return budget_snapshot(ctx), allows_more_spend(caps, new)

    snapshot, raised = await ctx.db.call(apply)
    ctx.policy_wake.set()  # replies held for a cap just raised are due now (Responder.refresh)
    # More money allowed (a cap raised or removed) is the change to see in the logs, as
    # the kill switch is: a warning, with the caps it left.
    event("admin_budget", level=logging.WARNING if raised else logging.INFO,
          total_eur=snapshot["total_eur"], per_hour_eur=snapshot["per_hour_eur"],
          raised=raised)
    return JSONResponse(snapshot)


async def get_kill_switch(request: Request, ctx: Context) -> Response:
    return JSONResponse({"on": await ctx.db.call(ctx.core.store.kill_switch)})


async def set_kill_switch(request: Request, ctx: Context) -> Response:
    """Body: {"on": true|false}. On: no reply leaves any instance from now on."""
    from responder.app import HTTPError

    data = await _json(request, ctx)
    on = data.get("on")
    if not isinstance(on, bool):
        raise HTTPError(400, "expected {\"on\": true} or {\"on\": false}")

    def apply() -> None:
        ctx.core.store.set_kill_switch(on)
        ctx.core.refresh(now=ctx.clock(), force=True)

    await ctx.db.call(apply)
    ctx.policy_wake.set()  # replies held while it was on are due now (Responder.refresh)
    event("admin_kill_switch", on=on, level=30)
    return JSONResponse({"on": on})


def _kind(request: Request) -> str:
    from responder.app import HTTPError

    kind = str(request.path_params["kind"])
    if kind not in ("block", "allow"):
        raise HTTPError(404, "kind must be block or allow")
    return kind


async def get_numbers(request: Request, ctx: Context) -> Response:
    controls = await ctx.db.call(ctx.core.store.controls)
    return JSONResponse({"block": sorted(controls.blocked), "allow": sorted(controls.allowed)})


async def add_number(request: Request, ctx: Context) -> Response:
    """Body: {"pattern": "+33612345678"} (a full number) or {"pattern": "+336123"} (a prefix)."""
    from responder.app import HTTPError

    kind = _kind(request)
    pattern = (await _json(request, ctx)).get("pattern")
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
        hint = (f" (with its +: \"+{pattern}\"; short codes are not listed, "
                "senders.reply_to_short_codes decides them)" if isinstance(pattern, str)
                and re.fullmatch(r"[0-9]{1,15}", pattern) else "")
        raise HTTPError(400, "pattern must be an E.164 number or prefix starting with +, "
                        f"e.g. +336123{hint}")

    def apply() -> bool:
        added = ctx.core.store.add_number_rule(kind, pattern, now=ctx.clock())
        ctx.core.refresh(now=ctx.clock(), force=True)
        return added

    added = await ctx.db.call(apply)
    cancelled = 0
    while kind == "block":
        # Replies already queued to a number just blocked are not sent (and refunded): the
        # point of blocking a raid's numbers is to stop paying for them. In batches, each
        # its own transaction, so webhooks are answered between them however long the
        # backlog. (Those a sender has claimed are on their way; any left, or queued later
        # by a process that had not yet seen the block, are cancelled when claimed.)
        batch = await ctx.db.call(ctx.core.cancel_replies_to, [pattern], now=ctx.clock(),
                                  limit=CANCEL_BATCH)
        cancelled += len(batch)
        if len(batch) < CANCEL_BATCH:
            break
        await asyncio.sleep(0)  # SQLite's calls run on the event loop: let webhooks in
    if cancelled:
        ctx.sender.cancelled(cancelled, "blocked")
    event("admin_number_rule", kind=kind, action="add", length=len(pattern),
          cancelled=cancelled)
    return JSONResponse({"kind": kind, "pattern": pattern, "added": added,
                         "cancelled_replies": cancelled},
                        status_code=201 if added else 200)


async def remove_number(request: Request, ctx: Context) -> Response:
    from responder.app import HTTPError, _storable

    kind = _kind(request)
    pattern = str(request.path_params["pattern"])
    # Not refused by _PATTERN: a rule stored before that check must stay removable. A NUL
    # (``%00``) is no stored rule, and PostgreSQL refused the query: a 503, not a 400.
    if not _storable(pattern):
        raise HTTPError(400, "pattern holds a NUL or invalid character")

    def apply() -> bool:
        removed = ctx.core.store.remove_number_rule(kind, pattern)
        ctx.core.refresh(now=ctx.clock(), force=True)
        return removed

    removed = await ctx.db.call(apply)
    event("admin_number_rule", kind=kind, action="remove", length=len(pattern))
    return JSONResponse({"kind": kind, "pattern": pattern, "removed": removed},
                        status_code=200 if removed else 404)


async def get_outbox(request: Request, ctx: Context) -> Response:
    return JSONResponse({"counts": await ctx.db.call(ctx.core.store.outbox_counts)})


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE_NUMBER = re.compile(r"\+[0-9]{1,15}")


def _spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a raid text is written by the attacker, and
    one that starts with ``=``, ``+``, ``-`` or ``@`` would run as a formula when the
    evidence is opened (CSV injection). Such a cell gets a leading ``'``, which
    spreadsheets read as "text" and do not show; phone numbers are left as they are.
    The JSON export is always verbatim."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and (
        _PHONE_NUMBER.fullmatch(value) is None
    ):
        return "'" + value
    return value


async def evidence(request: Request, ctx: Context) -> Response:
    """?format=csv|json&since=EPOCH_SECONDS&rules=a,b&sender=+336...: messages the policy
    flagged as raid; with ``sender``, every message of that number (``rules`` narrows it),
    to answer "why did this person get no reply?"."""
    from responder.app import HTTPError

    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise HTTPError(400, "format must be json or csv")
    since_text = request.query_params.get("since")
    try:
        since = float(since_text) if since_text else None
    except ValueError as exc:
        raise HTTPError(400, "since must be seconds since the epoch") from exc
    if since is not None and not math.isfinite(since):
        raise HTTPError(400, "since must be seconds since the epoch, a finite number")
    sender = request.query_params.get("sender")
    if sender is not None and not _NUMBER.fullmatch(sender):
        raise HTTPError(400, "sender must be a full E.164 number with its + (in a URL, %2B), "
                        "e.g. sender=%2B33612345678")
    rules_text = request.query_params.get("rules")
    # None: every decision of that sender's messages
    rules: tuple[str, ...] | None = (
        tuple(r for r in rules_text.split(",") if r) if rules_text
        else None if sender is not None else RAID_RULES)
    if rules is not None and not rules:  # "rules=,": PostgreSQL refused the empty IN ()
        raise HTTPError(400, "rules names no rule; leave it out for every raid-evidence "
                        "rule, or name some: rules=raid_template,repeat_flood")
    unknown = [r for r in rules or () if r not in RULES]
    if unknown:  # a misspelt rule would export nothing, and look like "no evidence"
        raise HTTPError(400, f"unknown rule {unknown[0][:64]!r} in rules; rules: "
                        + ",".join(sorted(RULES)))
    rows = await ctx.db.call(ctx.core.store.evidence, rules, since, sender)
    for row in rows:
        row["received_at_utc"] = datetime.fromtimestamp(row["received_at"], UTC).isoformat()
    event("admin_evidence_export", rows=len(rows), format=fmt, level=30)
    if fmt == "json":
        return JSONResponse({"rules": sorted(RULES) if rules is None else list(rules),
                             "messages": rows})
    out = io.StringIO()
    columns = ["received_at_utc", "received_at", "message_sid", "sender", "recipient", "body",
               "action", "rule", "decided_at", "reply_status", "reply_provider_status",
               "reply_error"]
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: _spreadsheet_safe(value) for key, value in row.items()}
                     for row in rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=raid-evidence.csv"})
