"""The Twilio Messages API client and the one question that matters: was it sent?

Outcomes:
  SENT     2xx: Twilio accepted (and will bill) the message.
  RETRY    surely not sent: 429/20429 (honour Retry-After), 503, connect errors,
           401/403 (refused before processing). Safe to send again later.
  FAILED   a definitive refusal (other 4xx: opted out, bad number, geo permission):
           not sent, not billed, never retried.
  UNKNOWN  may have been sent and billed: read/write timeouts, a dropped
           connection after the request went out, 500/502/504. Never resent
           blindly: settled by a status callback, or by ``find_sent`` (the
           provider's Messages list), which alone may show it was never created.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import httpx


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    kind: str  # metric label: ok, connect, timeout, http_429, http_5xx, ...
    provider_sid: str | None = None
    status: str | None = None
    segments: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


def retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        data: Any = response.json()
    except (ValueError, json.JSONDecodeError):
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        code, message = data.get("code"), data.get("message")
        return f"HTTP {response.status_code} code {code}: {message}"
    return f"HTTP {response.status_code}"


class Lookup(StrEnum):
    FOUND = "found"      # the provider holds such a message: it was sent
    ABSENT = "absent"    # surely not: the provider's list answered and has none
    UNCLEAR = "unclear"  # the list could not be read, or could not rule it out


@dataclass(frozen=True, slots=True)
class LookupResult:
    lookup: Lookup
    provider_sid: str | None = None
    status: str | None = None
    error: str | None = None


LOOKUP_PAGE_SIZE = 50


def _created_at(value: Any) -> float | None:
    """A Twilio ``date_created`` (RFC 2822) as Unix time, or None."""
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class TwilioClient:
    """Sends one SMS through ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``."""

    def __init__(self, client: httpx.AsyncClient, *, api_base: str, account_sid: str,
                 auth_token: str, status_callback: str | None = None) -> None:
        self._client = client
        self._url = httpx.URL(
            f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        )
        # Built once: the Basic credentials (what httpx.BasicAuth would compute per call)
        # and the form's content type; each call then only encodes its own form.
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
        self._auth = {"Authorization": f"Basic {credentials}"}
        self._headers = {**self._auth, "Content-Type": "application/x-www-form-urlencoded"}
        self._status_callback = status_callback

    async def send(self, *, to: str, from_: str, body: str, now: float,
                   reply_to: str | None = None) -> SendResult:
        """Send one SMS. ``reply_to`` (the inbound message id the reply answers) goes into
        the status callback URL as ``?reply=``, so a callback names the reply even when
        this call never learns the provider's sid (a read timeout: ``UNKNOWN``)."""
        form = [("To", to), ("From", from_), ("Body", body)]
        if self._status_callback:
            callback = self._status_callback
            if reply_to is not None:
                joiner = "&" if "?" in callback else "?"
                callback = f"{callback}{joiner}{urlencode([('reply', reply_to)])}"
            form.append(("StatusCallback", callback))
        try:
            response = await self._client.post(self._url, content=urlencode(form).encode(),
                                               headers=self._headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return SendResult(Outcome.RETRY, "connect", error=f"{type(exc).__name__}: {exc}")
        except httpx.TimeoutException as exc:  # read/write timeout: it may have gone through
            return SendResult(Outcome.UNKNOWN, "timeout", error=f"{type(exc).__name__}: {exc}")
        except httpx.TransportError as exc:  # dropped after sending: it may have gone through
            return SendResult(Outcome.UNKNOWN, "transport", error=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = response.json()
            except (ValueError, json.JSONDecodeError):
                data = {}
            if not isinstance(data, dict):
                data = {}
            segments = data.get("num_segments")
            return SendResult(
                Outcome.SENT, "ok",
                provider_sid=str(data["sid"]) if data.get("sid") else None,
                status=str(data.get("status") or "queued"),
                segments=(int(str(segments)) if str(segments or "").isdigit()
                          and str(segments).isascii() else None),
            )
        wait = retry_after(response.headers.get("retry-after"), now=now)
        error = _error_text(response)
        if status == 429:
            return SendResult(Outcome.RETRY, "http_429", error=error, retry_after_s=wait)
        if status == 503:
            return SendResult(Outcome.RETRY, "http_503", error=error, retry_after_s=wait)
        if status in (401, 403):
            return SendResult(Outcome.RETRY, "auth", error=error)
        if status >= 500:
            return SendResult(Outcome.UNKNOWN, "http_5xx", error=error)
        return SendResult(Outcome.FAILED, f"http_{status}", error=error)

    async def find_sent(self, *, to: str, from_: str, since: float,
                        taken: frozenset[str] = frozenset()) -> LookupResult:
        """Whether the provider holds a message to ``to`` from ``from_`` created at
        ``since`` (Unix time) or later: ``GET .../Messages.json?To=&From=``, newest first.

        Only a list that answered, parsed, and shows no such message among fewer than a
        full page is ABSENT; anything else that is not a clear match is UNCLEAR, so a
        reply is sent again only when the provider itself says it never created it.

        ``taken``: the sids of our other replies to ``to``; one provider message is one
        reply, so those are not matches. Of the others, the oldest is the match: a later
        one may be a later reply's, whose own look-up would then find nothing (it starts
        later) and send it again. A listed message without a sid cannot be told from
        another reply's: UNCLEAR.
        """
        params = {"To": to, "From": from_, "PageSize": str(LOOKUP_PAGE_SIZE)}
        try:
            response = await self._client.get(self._url, params=params, headers=self._auth)
        except httpx.HTTPError as exc:
            return LookupResult(Lookup.UNCLEAR, error=f"{type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return LookupResult(Lookup.UNCLEAR, error=_error_text(response))
        try:
            data: Any = response.json()
        except (ValueError, json.JSONDecodeError):
            return LookupResult(Lookup.UNCLEAR, error="the message list is not JSON")
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list):
            return LookupResult(Lookup.UNCLEAR, error="no message list in the answer")
        match: tuple[float, str, str | None] | None = None
        for message in messages:
            if not isinstance(message, dict):
                return LookupResult(Lookup.UNCLEAR, error="a listed message is not an object")
            if message.get("to") != to or message.get("from") not in (from_, None):
                continue  # the filter is the provider's; it is checked again here
            created = _created_at(message.get("date_created"))
            if created is None:
                return LookupResult(Lookup.UNCLEAR, error="a listed message has no date")
            if created >= since:
                sid = message.get("sid")
                if not sid:
                    return LookupResult(Lookup.UNCLEAR, error="a listed message has no sid")
                if str(sid) in taken:
                    continue  # another reply to this number already is that message
                status = message.get("status")
                if match is None or created <= match[0]:
                    match = (created, str(sid), str(status) if status else None)
        if match is not None:
            return LookupResult(Lookup.FOUND, provider_sid=match[1], status=match[2])
        if len(messages) >= LOOKUP_PAGE_SIZE:
            return LookupResult(Lookup.UNCLEAR, error="a full page: older ones not listed")
        return LookupResult(Lookup.ABSENT)
