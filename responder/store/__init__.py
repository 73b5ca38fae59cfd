"""Durable storage for the responder: ledger, inbound log, outbox, controls.

``open_store(url)`` picks the backend from the URL: ``sqlite:///relative.db``,
``sqlite:////absolute/path.db``, ``sqlite:///:memory:``, or ``postgresql://...``.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from responder.logs import redact_url
from responder.store.base import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    UNKNOWN,
    ControlsRow,
    HeldRow,
    Inbound,
    OutboxItem,
    SqlStore,
    StoreError,
)

__all__ = [
    "FAILED",
    "PENDING",
    "SENDING",
    "SENT",
    "UNKNOWN",
    "ControlsRow",
    "HeldRow",
    "Inbound",
    "OutboxItem",
    "SqlStore",
    "StoreError",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url: str) -> str:
    """The file path in a ``sqlite:///`` URL (three slashes: relative, four: absolute)."""
    rest = url[len("sqlite://"):]
    if not rest.startswith("/"):
        raise StoreError(f"bad SQLite URL {redact_url(url)!r}; write sqlite:///relative.db or sqlite:////abs.db")
    path = unquote(rest[1:])
    if not path:
        raise StoreError(f"bad SQLite URL {redact_url(url)!r}: no file name")
    return path


def open_store(url: str) -> SqlStore:
    """Open (not migrate) the store at ``url``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from responder.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        from responder.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(
        f"unsupported database URL {redact_url(url)!r}; use sqlite:///FILE.db or postgresql://..."
    )
