"""PostgreSQL store (psycopg 3) for several instances sharing one ledger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from responder.store.base import SqlStore, StoreError

# Any constant works; it only has to be the same in every raidsim process.
_MIGRATION_LOCK = 0x7261696473696D  # "raidsim"


class PostgresStore(SqlStore):
    """One autocommit connection; explicit BEGIN/COMMIT; the ``spend`` row is the budget lock.

    Reservations lock ``spend`` ``FOR UPDATE`` first, so they run one at a time
    across all instances; at READ COMMITTED every later statement in the
    transaction then sees the reservations committed before the lock was granted.
    Outbox claims use ``FOR UPDATE SKIP LOCKED`` so instances share the queue.
    """

    dialect = "postgres"
    _skip_locked = " FOR UPDATE SKIP LOCKED"
    _for_update = " FOR UPDATE"

    def __init__(self, url: str, *, connect_timeout_s: int = 5) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StoreError(
                "the database URL is a PostgreSQL URL but psycopg is not installed; "
                "install the extra from the raidsim checkout: pip install '.[postgres]'"
            ) from exc
        self._psycopg = psycopg
        self.url = url
        self._connect_timeout_s = connect_timeout_s
        self._conn: Any = None
        self._connect()

    def _connect(self) -> None:
        try:
            self._conn = self._psycopg.connect(
                self.url, autocommit=True, connect_timeout=self._connect_timeout_s
            )
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._conn.closed and self._depth == 0:
            self._connect()  # reconnect between transactions, never inside one
        return self._conn.execute(sql.replace("?", "%s"), tuple(params) if params else None)

    def _begin(self) -> None:
        self._execute("BEGIN")

    def _rollback(self) -> None:
        if not self._conn.closed:
            self._conn.execute("ROLLBACK")

    def _lock_budget(self) -> None:
        self._execute("SELECT 1 FROM spend WHERE id = 1 FOR UPDATE")

    def _lock_migrations(self) -> None:
        self._execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def unavailable(self, exc: BaseException) -> bool:
        # a lost connection, a full disk, a server shutting down; not a deadlock or a
        # serialization failure, which fail one transaction and are retried message by
        # message
        state = getattr(exc, "sqlstate", None) or ""  # class 40: transaction rollback
        return isinstance(exc, self._psycopg.OperationalError) and not state.startswith("40")

    def _has_migrations_table(self) -> bool:
        row = self._one("SELECT to_regclass('schema_migrations') IS NOT NULL")
        return bool(row and row[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
