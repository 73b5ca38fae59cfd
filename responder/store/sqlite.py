"""SQLite store: the embedded default (WAL, synchronous=NORMAL, BEGIN IMMEDIATE)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from responder.store.base import SqlStore, StoreError


def _create_private(path: Path) -> None:
    """Create a new database file readable by its owner only (0600): it holds raw phone
    numbers and message bodies, and SQLite gives its ``-wal`` and ``-shm`` files the
    database file's permissions. An existing file keeps the ones its operator set."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:  # SQLite's own open reports it, with the hint below
        pass


class SqliteStore(SqlStore):
    """One connection, autocommit mode, explicit ``BEGIN IMMEDIATE`` transactions.

    ``BEGIN IMMEDIATE`` takes the database write lock at the start of every write
    transaction, so concurrent writers in other processes queue (``busy_timeout``)
    instead of racing. WAL lets readers (``/readyz``, metrics) proceed meanwhile.
    """

    dialect = "sqlite"

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000) -> None:
        super().__init__()
        self.path = path
        self._checkpointer: sqlite3.Connection | None = None
        parent = None if path == ":memory:" else Path(path).expanduser().resolve().parent
        if parent is not None:
            if not parent.is_dir():
                raise StoreError(f"cannot create SQLite database {path!r}: {parent} does not "
                                 "exist")
            _create_private(Path(path).expanduser())
        try:
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # Retention erases bodies: overwrite the space they held, or the file keeps
            # them (SQLite's default; Debian's build, not most others, turns this on).
            self._conn.execute("PRAGMA secure_delete = ON")
            # Checkpoints (which fsync) run off the write path: see ``checkpoint``. This
            # high automatic threshold is only a safety net when nobody calls it.
            self._conn.execute("PRAGMA wal_autocheckpoint = 20000")
        except sqlite3.Error as exc:
            hint = ""
            if parent is not None and ("readonly" in str(exc) or "unable to open" in str(exc)):
                # the file may be writable and its directory not: WAL mode creates the
                # -wal and -shm files beside it
                hint = (f" (hint: this user must be able to write the file and, beside it,"
                        f" its -wal and -shm files in {parent}; or set RAIDSIM_DATABASE_URL"
                        " to a file in a writable directory)")
            raise StoreError(f"cannot open SQLite database {path!r}: {exc}{hint}") from exc

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, tuple(params))

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def checkpoint(self) -> None:
        """Copy the WAL into the database without blocking writers (own connection/thread)."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, isolation_level=None,
                                                 check_same_thread=False)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def purge_bodies(self, before: float) -> int:
        """Retention, and then the write-ahead log emptied: the frames written before the
        erasure still hold the bodies, readable in the ``-wal`` file until traffic happens
        to overwrite them. A TRUNCATE checkpoint copies the erasure into the database file
        (where ``secure_delete`` overwrites the old cells) and empties the log; if a reader
        in another process keeps it from finishing, the next purge tries again."""
        erased = super().purge_bodies(before)
        if erased and self.path != ":memory:":
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return erased

    def unavailable(self, exc: BaseException) -> bool:
        # disk full, database locked past the busy timeout, read-only file, I/O error
        return isinstance(exc, sqlite3.OperationalError)

    def _has_migrations_table(self) -> bool:
        row = self._one(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        return row is not None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._conn.close()
