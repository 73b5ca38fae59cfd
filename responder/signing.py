"""Webhook signatures: Twilio's X-Twilio-Signature and the generic HMAC-SHA256 scheme.

Twilio signs the full URL it called (query included) followed by every POST
parameter, sorted by name, as name+value with no separator; a repeated name
contributes each distinct value, sorted. The digest is HMAC-SHA1 keyed with the
auth token (or HMAC-SHA256 with a webhook signing key when the request says so),
base64-encoded. Like the official library, a signature computed over the URL
without its port, or with the scheme's default port added, is accepted.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

_DIGESTS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}


def _params_payload(params: Iterable[tuple[str, str]]) -> str:
    """The signed text after the URL: names sorted, each with its distinct values sorted.

    Sorting the distinct (name, value) pairs orders by name, then by value within a name.
    """
    return "".join([name + value for name, value in sorted(set(params))])


def twilio_payload(url: str, params: Iterable[tuple[str, str]]) -> bytes:
    return (url + _params_payload(params)).encode("utf-8")


@functools.lru_cache(maxsize=16)
def _keyed(key: str, algorithm: str) -> hmac.HMAC:
    """A keyed HMAC to ``copy()`` per message: the key schedule is computed once."""
    return hmac.new(key.encode("utf-8"), digestmod=_DIGESTS[algorithm])


def _sign(key: str, algorithm: str, url: str, params_payload: bytes) -> bytes:
    mac = _keyed(key, algorithm).copy()
    mac.update(url.encode("utf-8"))
    mac.update(params_payload)
    return base64.b64encode(mac.digest())


def twilio_signature(
    key: str, url: str, params: Iterable[tuple[str, str]], algorithm: str = "HMAC_SHA1"
) -> str:
    """The X-Twilio-Signature Twilio would send for this URL and these POST parameters."""
    _DIGESTS[algorithm]  # KeyError for an unknown algorithm, as before
    return _sign(key, algorithm, url, _params_payload(params).encode("utf-8")).decode("ascii")


def _without_port(parts: SplitResult) -> str:
    if parts.port is None:
        return parts.geturl()
    host = parts.netloc.rsplit(":", 1)[0]
    return parts._replace(netloc=host).geturl()


def _with_port(parts: SplitResult) -> str:
    if parts.port is not None:
        return parts.geturl()
    port = 443 if parts.scheme == "https" else 80
    return parts._replace(netloc=f"{parts.netloc}:{port}").geturl()


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by X-Twilio-Webhooks-Signature-Settings; HMAC_SHA1 when absent."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def verify_twilio(
    key: str,
    url: str,
    params: list[tuple[str, str]],
    signature: str | None,
    algorithm: str = "HMAC_SHA1",
) -> bool:
    """True if ``signature`` matches the URL with its port removed or its default port added."""
    if not signature or algorithm not in _DIGESTS or not key:
        return False
    candidates = url_variants(url)
    if not candidates:
        return False
    given = signature.strip().encode("utf-8")
    payload = _params_payload(params).encode("utf-8")
    # Each comparison is constant-time; stopping at the first match reveals only that the
    # signature is valid, which the response says anyway.
    return any(hmac.compare_digest(_sign(key, algorithm, candidate, payload), given)
               for candidate in candidates)


@functools.lru_cache(maxsize=256)
def url_variants(url: str) -> tuple[str, ...]:
    """The URLs a valid signature may cover: ``url`` without its port and with it (the
    scheme's default port when it has none).

    The form the URL arrived in comes first (with its port if it has one), since that is
    the one Twilio most likely signed: ``verify_twilio`` stops at the first match, so a
    valid signature then costs one HMAC instead of two. The set accepted is the same.
    Cached: a deployment receives its webhooks on one or a few URLs.
    """
    try:
        parts = urlsplit(url)
        variants = (_without_port(parts), _with_port(parts))
        if parts.port is not None:
            variants = variants[::-1]
        return tuple(dict.fromkeys(variants))
    except ValueError:
        return ()


def generic_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``, the generic webhook's header value."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_generic(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    expected = generic_signature(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "replace"))
