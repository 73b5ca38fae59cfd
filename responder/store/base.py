"""The durable store: the ledger's atomic promises plus everything the service persists.

Theory of operation
-------------------
One ``SqlStore`` holds one database connection and is driven from one thread at
a time (the service runs every store call on a single worker thread per
process). Cross-process safety comes from the database itself:

* every write runs in a transaction; SQLite starts it with ``BEGIN IMMEDIATE``
  (the database write lock), PostgreSQL locks the single ``spend`` row
  ``FOR UPDATE`` before any reservation, so reservations are serialised across
  every process and instance, with no check-then-write window;
* a reply is reserved at most once per message id (primary key on
  ``reservations``) and queued at most once per inbound message (unique
  ``outbox.message_sid``); an inbound message is stored at most once (unique
  ``message_sid`` and unique ``idempotency_token``).

Transactions nest: an inner ``transaction()`` joins the outer one, so the
webhook stores the message, reserves the reply and queues it in one commit.

SQL is written once with ``?`` placeholders; the PostgreSQL subclass rewrites
them. Times are seconds since the epoch, money is integer micro-euros.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from responder.policy.engine import RAID_RULES
from responder.policy.ledger import HOUR_S, Caps, ReserveRequest, ReserveStatus, hour_bucket
from responder.policy.model import Action, Decision, Message

Row = tuple[Any, ...]


class StoreError(RuntimeError):
    """The database is unreachable, misconfigured or at an unexpected schema version."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound SMS as received from a provider webhook."""

    message_sid: str
    sender: str
    recipient: str
    body: str
    received_at: float
    source: str = "twilio"
    idempotency_token: str | None = None

    def message(self) -> Message:
        return Message(self.message_sid, self.sender, self.recipient, self.body, self.received_at)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    message_sid: str
    recipient: str
    from_number: str
    body: str
    cost_micros: int
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class HeldRow:
    message: Message
    until: float
    priority: int
    rule: str = "restored"  # why it is held (the stored decision's rule)


@dataclass(frozen=True, slots=True)
class ControlsRow:
    kill_switch: bool
    blocked: frozenset[str]
    allowed: frozenset[str]
    version: int


# Outbox statuses. ``unknown`` means "may have been sent and billed": never resent unless
# the provider's own list shows it never created the message (``record_check``).
PENDING, SENDING, SENT, FAILED, UNKNOWN = "pending", "sending", "sent", "failed", "unknown"
# Twilio's MessageStatus for a message it could not send (and does not bill)
PROVIDER_FAILED = "failed"
# ``error`` of a reply whose provider sid a look-up matched (a guess among alike messages
# to one number: see ``record_status``), and of one a status callback then corrected
LOOKUP_MATCH = "found at the provider"
CALLBACK_MATCH = "matched by its status callback"
# SQL for the status of a reply whose outcome is unknown: ``sent`` once a status callback
# named its message (and did not say it failed), else ``unknown``
_UNKNOWN_UNLESS_CONFIRMED = (
    f"CASE WHEN provider_sid IS NOT NULL AND COALESCE(provider_status, '') <> "
    f"'{PROVIDER_FAILED}' THEN '{SENT}' ELSE '{UNKNOWN}' END"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The versioned ``NNNN_name.sql`` files shipped for ``dialect``, in order."""
    folder = importlib.resources.files("responder.store") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations put no ';' inside literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


T = TypeVar("T")
IN_CHUNK = 500  # values bound in one ``IN (...)``: under SQLite's and PostgreSQL's limits


def in_chunks(values: Sequence[T]) -> Iterator[tuple[list[T], str]]:
    """``values`` in parts of at most ``IN_CHUNK``, each with its ``?, ?, ...`` markers."""
    for start in range(0, len(values), IN_CHUNK):
        part = list(values[start : start + IN_CHUNK])
        yield part, ", ".join("?" for _ in part)


class SqlStore:
    """Shared SQL for the SQLite and PostgreSQL stores; see the module docstring."""

    dialect = "sql"

    def __init__(self) -> None:
        self._depth = 0
        self._migrations = load_migrations(self.dialect)

    # -- dialect hooks -------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        self._execute("COMMIT")

    def _rollback(self) -> None:
        self._execute("ROLLBACK")

    def _lock_budget(self) -> None:
        """Serialise reservations across processes (no-op where BEGIN already locks)."""

    def _lock_migrations(self) -> None:
        """Serialise concurrent migrators (no-op where BEGIN already locks)."""

    def close(self) -> None:
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Background housekeeping that must stay off the write path (SQLite: WAL checkpoint)."""

    # -- plumbing ------------------------------------------------------------

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._execute(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = self._execute(sql, params).fetchall()
        return rows

    def _rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        count: int = self._execute(sql, params).rowcount
        return count

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside a transaction that can fail alone (group commit)."""
        assert self._depth, "savepoint() needs an open transaction"
        self._execute("SAVEPOINT item")
        try:
            yield
        except BaseException:
            self._execute("ROLLBACK TO SAVEPOINT item")
            self._execute("RELEASE SAVEPOINT item")
            raise
        self._execute("RELEASE SAVEPOINT item")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction; nested calls join the outermost one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        self._commit()

    # -- migrations ----------------------------------------------------------

    @property
    def latest_version(self) -> int:
        return self._migrations[-1].version if self._migrations else 0

    def schema_version(self) -> int:
        """The applied schema version; 0 for an empty database."""
        if not self._has_migrations_table():
            return 0
        row = self._one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    def schema_problem(self) -> str | None:
        """Why this raidsim cannot run on the database's schema, with the fix, or None."""
        version, latest = self.schema_version(), self.latest_version
        if version < latest:
            return (f"database schema is at version {version}, this raidsim needs "
                    f"{latest}: run `raidsim db upgrade`")
        if version > latest:  # migrated by a newer raidsim (a rolled-back deploy)
            return (f"the database is at schema version {version}, newer than this raidsim "
                    f"knows ({latest}): run the raidsim that upgraded it, or a newer one")
        return None

    def _has_migrations_table(self) -> bool:
        raise NotImplementedError

    def migrate(self, *, now: float) -> list[int]:
        """Apply pending migrations, each in its own transaction; return the versions applied."""
        applied: list[int] = []
        with self.transaction():
            self._lock_migrations()
            self._execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION"
                " NOT NULL)"
            )
            current = self.schema_version()
            for migration in self._migrations:
                if migration.version <= current:
                    continue
                for statement in split_statements(migration.sql):
                    self._execute(statement)
                self._execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, now),
                )
                applied.append(migration.version)
        return applied

    def ready(self) -> bool:
        """Reachable and fully migrated."""
        try:
            return self.schema_version() == self.latest_version
        except Exception:
            return False

    # -- Ledger protocol -----------------------------------------------------

    def reserve(self, request: ReserveRequest) -> ReserveStatus:
        bucket = hour_bucket(request.now)
        with self.transaction():
            self._lock_budget()
            # One round trip reads everything the checks need (under the budget lock). The
            # sliding hour's sum reads every reservation of the last hour: only with a cap
            # (then there are at most cap/cost of them); without one, CASE skips it.
            row = self._one(
                "SELECT (SELECT COUNT(*) FROM reservations WHERE message_id = ?),"
                " (SELECT COUNT(*) FROM reservations WHERE sender = ? AND reserved_at > ?"
                " AND refunded = 0),"
                " spent_micros, total_cap_micros, hour_cap_micros,"
                " CASE WHEN hour_cap_micros IS NULL THEN 0 ELSE"
                " (SELECT COALESCE(SUM(cost_micros), 0) FROM reservations WHERE reserved_at > ?)"
                " END FROM spend",
                (request.message_id, request.sender, request.now - request.sender_window_s,
                 request.now - HOUR_S),
            )
            assert row is not None, "spend row missing: run migrations"
            duplicate, sender_replies, spent, total_cap, hour_cap, hour_spent = row
            if int(duplicate):
                return ReserveStatus.DUPLICATE
            if request.sender_limit is not None and int(sender_replies) >= request.sender_limit:
                return ReserveStatus.SENDER_LIMIT
            cost = request.cost_micros
            if total_cap is not None and int(spent) + cost > int(total_cap):
                return ReserveStatus.BUDGET_TOTAL
            if hour_cap is not None and int(hour_spent or 0) + cost > int(hour_cap):
                return ReserveStatus.BUDGET_HOUR
            self._execute(
                "INSERT INTO reservations (message_id, sender, cost_micros, hour, reserved_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (request.message_id, request.sender, cost, bucket, request.now),
            )
            self._add_spend(bucket, cost)
            return ReserveStatus.OK

    def _hour_spent(self, bucket: int) -> int:
        row = self._one("SELECT spent_micros FROM spend_hour WHERE hour = ?", (bucket,))
        return int(row[0]) if row else 0

    def _add_spend(self, bucket: int, delta: int) -> None:
        self._execute("UPDATE spend SET spent_micros = spent_micros + ?", (delta,))
        self._execute(
            "INSERT INTO spend_hour (hour, spent_micros) VALUES (?, ?) ON CONFLICT (hour)"
            " DO UPDATE SET spent_micros = spend_hour.spent_micros + excluded.spent_micros",
            (bucket, delta),
        )

    def settle(self, message_id: str, *, billed: bool, now: float | None = None) -> None:
        if billed:
            return
        with self.transaction():
            self._lock_budget()
            row = self._one(
                "SELECT cost_micros, hour, refunded FROM reservations WHERE message_id = ?",
                (message_id,),
            )
            if row is None or int(row[2]):
                return
            cost, bucket = int(row[0]), int(row[1])
            # Keep the id reserved (never reply twice) but give the money back, and stop
            # counting it for the sender limit (``refunded``): the reply never reached them.
            self._execute(
                "UPDATE reservations SET cost_micros = 0, refunded = 1, refunded_at = ?,"
                " refund_seq = ? WHERE message_id = ?",
                (now, self._next_refund_seq(), message_id),
            )
            if cost:
                self._add_spend(bucket, -cost)

    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the database failing (a full disk, a lock held too long, a
        lost connection), not one statement or message: every write would fail alike."""
        return False

    def spent_micros(self) -> int:
        row = self._one("SELECT spent_micros FROM spend")
        return int(row[0]) if row else 0

    def spent_in_hour_micros(self, now: float) -> int:
        """Spend reserved in the last 60 minutes, (now - 3600, now]: the hourly cap's window."""
        row = self._one(
            "SELECT COALESCE(SUM(cost_micros), 0) FROM reservations WHERE reserved_at > ?"
            " AND reserved_at <= ?",
            (now - HOUR_S, now),
        )
        return int(row[0]) if row else 0

    def spend_in_hour(self, now: float) -> list[tuple[float, str, int]]:
        """The reservations that make up ``spent_in_hour_micros``, (reserved_at,
        message_id, cost_micros), oldest first: when each leaves the hourly window is what
        paces held replies. At most cap / reply cost rows under an hourly cap."""
        rows = self._all(
            "SELECT reserved_at, message_id, cost_micros FROM reservations"
            " WHERE reserved_at > ? AND reserved_at <= ? AND cost_micros > 0"
            " ORDER BY reserved_at, message_id",
            (now - HOUR_S, now),
        )
        return [(float(row[0]), str(row[1]), int(row[2])) for row in rows]

    def caps(self) -> Caps:
        row = self._one("SELECT total_cap_micros, hour_cap_micros FROM spend")
        if row is None:
            return Caps()
        return Caps(
            total_micros=None if row[0] is None else int(row[0]),
            per_hour_micros=None if row[1] is None else int(row[1]),
        )

    def set_caps(self, caps: Caps) -> None:
        """Operator caps: they stick across restarts (see ``apply_config_caps``)."""
        self._write_caps(caps, "admin")

    def apply_config_caps(self, caps: Caps) -> bool:
        """Install the configured caps unless an operator has set caps; True if installed."""
        with self.transaction():
            row = self._one("SELECT caps_source FROM spend")
            if row is not None and row[0] == "admin":
                return False
            self._write_caps(caps, "config")
            return True

    def caps_source(self) -> str:
        row = self._one("SELECT caps_source FROM spend")
        return str(row[0]) if row else "config"

    def _write_caps(self, caps: Caps, source: str) -> None:
        with self.transaction():
            self._lock_budget()
            self._execute(
                "UPDATE spend SET total_cap_micros = ?, hour_cap_micros = ?, caps_source = ?",
                (caps.total_micros, caps.per_hour_micros, source),
            )
            self._execute("UPDATE controls SET version = version + 1")

    def has_reservations(self) -> bool:
        """Whether any reply was ever reserved (cheap: one row at most)."""
        return self._one("SELECT 1 FROM reservations LIMIT 1") is not None

    def reservation_count(self) -> int:
        """Reservations that stand: every reserved reply not refunded."""
        row = self._one("SELECT COUNT(*) FROM reservations WHERE refunded = 0")
        return int(row[0]) if row else 0

    def refunds_after(self, seq: int, *, limit: int = 1000) -> list[tuple[int, str, str]]:
        """(number, message id, sender) of the first ``limit`` refunds numbered after
        ``seq``, in number order. Numbers are given under the budget lock, which is held
        until the refund commits: once a number is read, every lower one has been too, so
        reading past the last one read skips none and reads none twice, whatever the
        refunding processes' clocks say."""
        rows = self._all(
            "SELECT refund_seq, message_id, sender FROM reservations"
            f" WHERE refund_seq > ? ORDER BY refund_seq LIMIT {int(limit)}",
            (seq,),
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def number_refunds(self, *, limit: int = 1000) -> int:
        """Number the refunds written without a number, by a process still running code
        older than migration 0007 (a rolling upgrade), so that ``refunds_after`` lists
        them for every process; how many. Numbers are taken under the budget lock, as
        ``settle`` takes them. Finding none reads a partial index that holds only them."""
        if self._one("SELECT 1 FROM reservations WHERE refunded = 1 AND refund_seq IS NULL"
                     " LIMIT 1") is None:
            return 0
        with self.transaction():
            self._lock_budget()
            rows = self._all(
                "SELECT message_id FROM reservations WHERE refunded = 1 AND refund_seq IS NULL"
                f" ORDER BY COALESCE(refunded_at, reserved_at), message_id LIMIT {int(limit)}")
            for (message_id,) in rows:
                self._execute("UPDATE reservations SET refund_seq = ? WHERE message_id = ?"
                              " AND refund_seq IS NULL", (self._next_refund_seq(), message_id))
            return len(rows)

    def _next_refund_seq(self) -> int:
        """The next refund's number (``refunds_after``), taken in the caller's transaction,
        which holds the budget lock: kept until it commits, so refunds commit in the
        order of their numbers."""
        self._execute("UPDATE spend SET refund_seq = refund_seq + 1")
        row = self._one("SELECT refund_seq FROM spend")
        assert row is not None  # the one spend row, created by the first migration
        return int(row[0])

    def last_refund_seq(self) -> int:
        """The number of the latest refund committed; 0 if there is none."""
        row = self._one("SELECT refund_seq FROM spend")
        return int(row[0]) if row else 0

    def refunds(self, message_ids: Sequence[str]) -> list[tuple[str, str, float]]:
        """(message id, sender, when) of each of ``message_ids`` whose reservation was
        refunded, in refund order; a refund of unknown time counts as at its reservation."""
        found: list[tuple[str, str, float]] = []
        for part, marks in in_chunks(message_ids):
            for row in self._all(
                "SELECT message_id, sender, COALESCE(refunded_at, reserved_at) FROM reservations"
                f" WHERE refunded = 1 AND message_id IN ({marks})",
                part,
            ):
                found.append((str(row[0]), str(row[1]), float(row[2])))
        found.sort(key=lambda r: (r[2], r[0]))
        return found

    # -- inbound messages and decisions --------------------------------------

    def insert_inbound(self, inbound: Inbound) -> bool:
        """Store an inbound message; False when its sid or idempotency token is already known."""
        count = self._rowcount(
            "INSERT INTO inbound (message_sid, idempotency_token, source, sender, recipient,"
            " body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                inbound.message_sid,
                inbound.idempotency_token,
                inbound.source,
                inbound.sender,
                inbound.recipient,
                inbound.body,
                inbound.received_at,
            ),
        )
        return count == 1

    def record_decision(
        self, message_sid: str, decision: Decision, *, now: float, first: bool = False
    ) -> None:
        """Record a decision on the message; later ones (releases) are also kept in a log."""
        held = 1 if decision.action is Action.DEFER else 0
        self._execute(
            "UPDATE inbound SET action = ?, rule = ?, decided_at = ?, held = ?, hold_until = ?,"
            " hold_priority = ? WHERE message_sid = ?",
            (
                str(decision.action),
                decision.rule,
                now,
                held,
                decision.until,
                decision.priority if held else None,
                message_sid,
            ),
        )
        if first:
            return
        self._execute(
            "INSERT INTO decisions (message_sid, action, rule, hold_until, decided_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_sid, str(decision.action), decision.rule, decision.until, now),
        )

    def lock_held(self, message_sids: Sequence[str]) -> set[str]:
        """Which of ``message_sids`` are still held, their rows locked until the transaction
        ends (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers): several
        processes may hold one message, and the first to release it settles it."""
        found: set[str] = set()
        ordered = sorted(set(message_sids))  # one lock order for every process
        for part, marks in in_chunks(ordered):
            for row in self._all(
                f"SELECT message_sid FROM inbound WHERE message_sid IN ({marks}) AND held = 1"
                f" ORDER BY message_sid{self._for_update}", part
            ):
                found.add(str(row[0]))
        return found

    def decision_of(self, message_sid: str) -> tuple[str, str] | None:
        row = self._one("SELECT action, rule FROM inbound WHERE message_sid = ?", (message_sid,))
        if row is None or row[0] is None:
            return None
        return str(row[0]), str(row[1])

    def inbound_count(self) -> int:
        row = self._one("SELECT COUNT(*) FROM inbound")
        return int(row[0]) if row else 0

    def first_received_at(self) -> float | None:
        """When the first message the store holds was received (None when it holds none)."""
        row = self._one("SELECT MIN(received_at) FROM inbound")
        return float(row[0]) if row is not None and row[0] is not None else None

    def held_count(self) -> int:
        """How many messages are held, by every process (their replies not yet decided)."""
        row = self._one("SELECT COUNT(*) FROM inbound WHERE held = 1")
        return int(row[0]) if row else 0

    def held(self) -> list[HeldRow]:
        rows = self._all(
            "SELECT message_sid, sender, recipient, body, received_at, hold_until, hold_priority,"
            " rule FROM inbound WHERE held = 1 ORDER BY received_at, id"
        )
        return [
            HeldRow(
                Message(str(r[0]), str(r[1]), str(r[2]), str(r[3] or ""), float(r[4])),
                float(r[5]) if r[5] is not None else float(r[4]),
                int(r[6] or 0),
                str(r[7]) if r[7] else "restored",
            )
            for r in rows
        ]

    def replay_messages(self, since: float) -> list[tuple[Message, str | None]]:
        """Messages to rebuild the policy's memory from, oldest first, with their rule.

        Everything received since ``since``, plus older opt-outs/opt-ins (which the
        policy must remember for good) and everything still held.
        """
        rows = self._all(
            "SELECT message_sid, sender, recipient, body, received_at, rule FROM inbound"
            " WHERE received_at >= ? OR held = 1 OR rule IN ('opt_out', 'opt_in')"
            " ORDER BY received_at, id",
            (since,),
        )
        return [
            (
                Message(str(r[0]), str(r[1]), str(r[2]), str(r[3] or ""), float(r[4])),
                None if r[5] is None else str(r[5]),
            )
            for r in rows
        ]

    def _rows_after(self, select: str, id_column: str, after: int, also: Sequence[int],
                    limit: int) -> list[Any]:
        """The rows of ``select`` numbered (``id_column``, selected first) after ``after``
        (the first ``limit``), and those of ``also`` that exist by now; in id order."""
        rows = list(self._all(f"{select} WHERE {id_column} > ? ORDER BY {id_column} LIMIT ?",
                              (after, limit)))
        for part, marks in in_chunks(sorted(set(also))):
            rows.extend(self._all(f"{select} WHERE {id_column} IN ({marks})", part))
        rows.sort(key=lambda row: int(row[0]))
        return rows

    def _last_id(self, table: str) -> int:
        """The highest row id of ``table`` (0 with none)."""
        row = self._one(f"SELECT MAX(id) FROM {table}")
        return int(row[0]) if row is not None and row[0] is not None else 0

    def inbound_ids_after(self, after: int, also: Sequence[int] = (), *,
                          limit: int = 5000) -> list[tuple[int, str]]:
        """(row id, message sid) of the inbound rows numbered after ``after`` (the first
        ``limit``), and of those of ``also`` that exist by now; in id order. What
        ``Responder._fold_others`` reads to see the messages other processes stored."""
        return [(int(r[0]), str(r[1])) for r in self._rows_after(
            "SELECT id, message_sid FROM inbound", "id", after, also, limit)]

    def decisions_after(self, after: int, also: Sequence[int] = (), *,
                        limit: int = 5000) -> list[tuple[int, str, str, Decision]]:
        """(row id, message sid, sender, decision) of the later decisions (releases of held
        replies) logged after row ``after`` (the first ``limit``), and of those of
        ``also`` that exist by now; in id order."""
        return [(int(r[0]), str(r[1]), str(r[2]),
                 Decision(Action(str(r[3])), str(r[4]), None if r[5] is None else float(r[5])))
                for r in self._rows_after(
                    "SELECT d.id, d.message_sid, i.sender, d.action, d.rule, d.hold_until"
                    " FROM decisions d JOIN inbound i ON i.message_sid = d.message_sid",
                    "d.id", after, also, limit)]

    def last_decision_id(self) -> int:
        """The highest row id of the decisions log (0 with none)."""
        return self._last_id("decisions")

    def inbound_by_ids(self, ids: Sequence[int]) -> list[Message]:
        """The stored messages of these inbound row ids, in id order (an erased body is
        an empty text)."""
        found: list[tuple[int, Message]] = []
        for part, marks in in_chunks(sorted(set(ids))):
            found.extend((int(r[0]), Message(str(r[1]), str(r[2]), str(r[3]), str(r[4] or ""),
                                             float(r[5])))
                         for r in self._all(
                "SELECT id, message_sid, sender, recipient, body, received_at FROM inbound"
                f" WHERE id IN ({marks})", part))
        found.sort(key=lambda row: row[0])
        return [message for _, message in found]

    def last_inbound_id(self) -> int:
        """The highest inbound row id stored so far (0 with none)."""
        return self._last_id("inbound")

    def flagged_among(self, senders: Sequence[str]) -> list[tuple[str, float]]:
        """Which of ``senders`` a raid rule judged (any process's decision), with the time
        of the first such message (index ``inbound_sender``)."""
        found: list[tuple[str, float]] = []
        rules = ", ".join("?" for _ in RAID_RULES)
        for part, marks in in_chunks(senders):
            found.extend((str(r[0]), float(r[1])) for r in self._all(
                "SELECT sender, MIN(received_at) FROM inbound"
                f" WHERE sender IN ({marks}) AND rule IN ({rules})"
                " GROUP BY sender ORDER BY 2, 1",
                (*part, *RAID_RULES),
            ))
        return found

    def reserved_ids(self, message_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for part, marks in in_chunks(message_ids):
            for row in self._all(
                f"SELECT message_id FROM reservations WHERE message_id IN ({marks})", part
            ):
                found.add(str(row[0]))
        return found

    def opted_out_among(self, numbers: Iterable[str]) -> set[str]:
        """Those of ``numbers`` whose latest opt-out or opt-in message is an opt-out: a reply
        to them must not leave, whichever process queued it and whatever state it was in
        when the opt-out came (a claimed reply whose process died is not cancelled then,
        and comes back to ``pending`` when the look-up finds it never left)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return set()
        rows = self._all(
            "SELECT sender, rule FROM inbound WHERE sender IN ("
            + ", ".join("?" for _ in wanted) + ") AND rule IN ('opt_out', 'opt_in')"
            " ORDER BY received_at, id", wanted)
        latest = {str(row[0]): str(row[1]) for row in rows}
        return {number for number, rule in latest.items() if rule == "opt_out"}

    def purge_bodies(self, before: float) -> int:
        """Retention: forget message bodies received before ``before``, held ones too (a
        held reply is decided on its sender's evidence; after a restart, without a text)."""
        with self.transaction():
            return self._rowcount(
                "UPDATE inbound SET body = NULL WHERE received_at < ? AND body IS NOT NULL",
                (before,),
            )

    def evidence(self, rules: Sequence[str] | None, since: float | None = None,
                 sender: str | None = None) -> list[dict[str, Any]]:
        """Messages whose decision names one of ``rules`` (every decided one with None),
        of one ``sender`` if given: the raid evidence, or what became of one number's
        messages, with raw numbers and the status of the reply to each, if any."""
        params: list[Any] = []
        where = ["i.rule IS NOT NULL"]
        if rules is not None:
            where = [f"i.rule IN ({', '.join('?' for _ in rules)})"]
            params.extend(rules)
        if since is not None:
            where.append("i.received_at >= ?")
            params.append(since)
        if sender is not None:
            where.append("i.sender = ?")
            params.append(sender)
        rows = self._all(
            "SELECT i.message_sid, i.received_at, i.sender, i.recipient, i.body, i.action,"
            " i.rule, i.decided_at, o.status, o.provider_status, o.error FROM inbound i"
            " LEFT JOIN outbox o ON o.message_sid = i.message_sid"
            f" WHERE {' AND '.join(where)} ORDER BY i.received_at, i.id",
            params,
        )
        keys = ("message_sid", "received_at", "sender", "recipient", "body", "action", "rule",
                "decided_at", "reply_status", "reply_provider_status", "reply_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- outbox ----------------------------------------------------------------

    def enqueue_reply(
        self, message_sid: str, recipient: str, from_number: str, body: str, cost_micros: int,
        *, now: float,
    ) -> bool:
        """Queue the one reply to ``message_sid``; False if it was already queued."""
        count = self._rowcount(
            "INSERT INTO outbox (message_sid, recipient, from_number, body, cost_micros, status,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (message_sid, recipient, from_number, body, cost_micros, PENDING, now, now, now),
        )
        return count == 1

    def claim_outbox(
        self, *, now: float, limit: int, owner: str, lease_s: float
    ) -> list[OutboxItem]:
        """Lease due pending replies to this worker and mark them ``sending``.

        The ``sending`` mark is committed before any HTTP request goes out: a crash
        after it can only make the reply ``unknown``, never send it twice.
        """
        with self.transaction():
            self._lock_outbox()
            rows = self._all(
                "SELECT id, message_sid, recipient, from_number, body, cost_micros, attempts,"
                " created_at FROM outbox WHERE status = ? AND next_attempt_at <= ?"
                f" ORDER BY next_attempt_at, id LIMIT {int(limit)}{self._skip_locked}",
                (PENDING, now),
            )
            items = [
                OutboxItem(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]),
                           int(r[6]) + 1, float(r[7]))
                for r in rows
            ]
            for item in items:
                self._execute(
                    "UPDATE outbox SET status = ?, attempts = ?, lease_owner = ?, lease_until = ?,"
                    " updated_at = ? WHERE id = ?",
                    (SENDING, item.attempts, owner, now + lease_s, now, item.id),
                )
            return items

    def cancel_pending_to(self, patterns: Sequence[str], *, now: float, error: str,
                          exact: bool = False, limit: int | None = None) -> list[OutboxItem]:
        """Mark ``failed`` (with ``error``) the queued replies no sender has claimed whose
        recipient one of ``patterns`` matches (as a prefix, or ``exact``ly), the ``limit``
        oldest if given, and refund them in the ledger (``settle``); the items, for the
        caller's policy memory. A reply already being sent is left to its send."""
        if not patterns:
            return []
        # prefixes are "+" and digits (the admin API checks), never LIKE's wildcards
        test = "recipient = ?" if exact else "recipient LIKE ?"
        matches = " OR ".join(test for _ in patterns)
        with self.transaction():
            rows = self._all(
                "SELECT id, message_sid, recipient, from_number, body, cost_micros, attempts,"
                f" created_at FROM outbox WHERE status = ? AND ({matches}) ORDER BY id"
                # SKIP LOCKED: a row a sender is claiming is on its way (and the claim
                # cancels it if blocked); waiting for it could deadlock a webhook batch,
                # which holds the budget lock, against a claim that refunds (settle)
                f"{'' if limit is None else f' LIMIT {int(limit)}'}{self._skip_locked}",
                (PENDING, *(p if exact else p + "%" for p in patterns)),
            )
            items = [
                OutboxItem(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]),
                           int(r[6]), float(r[7]))
                for r in rows
            ]
            for item in items:
                self._execute(
                    "UPDATE outbox SET status = ?, error = ?, lease_owner = NULL,"
                    " lease_until = NULL, updated_at = ? WHERE id = ?",
                    (FAILED, error, now, item.id),
                )
                self.settle(item.message_sid, billed=False, now=now)
            return items

    _skip_locked = ""
    _for_update = ""

    def _lock_outbox(self) -> None:
        """Hook for row locking; SQLite's BEGIN IMMEDIATE already serialises claims."""

    def next_outbox_due(self) -> float | None:
        row = self._one("SELECT MIN(next_attempt_at) FROM outbox WHERE status = ?", (PENDING,))
        return None if row is None or row[0] is None else float(row[0])

    def finish_outbox(
        self, item_id: int, status: str, *, now: float, provider_sid: str | None = None,
        provider_status: str | None = None, segments: int | None = None, error: str | None = None,
    ) -> str:
        """Record a final outcome (sent, failed or unknown) of a claimed reply; the status
        written.

        ``unknown`` becomes ``sent`` when a status callback has already named the reply's
        message (see ``record_status``): the provider created it, whatever our call saw.
        """
        unknown = status == UNKNOWN
        with self.transaction():
            self._execute(
                f"UPDATE outbox SET status = {_UNKNOWN_UNLESS_CONFIRMED if unknown else '?'},"
                " provider_sid = COALESCE(?, provider_sid),"
                # A status callback that came while the call was waiting already recorded
                # a later status (sent, delivered, failed) for this very message: keep it,
                # not the "queued" of the call's own answer.
                " provider_status = CASE WHEN provider_status IS NOT NULL AND provider_sid = ?"
                " THEN provider_status ELSE COALESCE(?, provider_status) END,"
                " segments = COALESCE(?, segments), error = ?, lease_owner = NULL,"
                " lease_until = NULL, updated_at = ? WHERE id = ?",
                (*(() if unknown else (status,)), provider_sid, provider_sid, provider_status,
                 segments, error, now, item_id),
            )
            if unknown:
                row = self._one("SELECT status FROM outbox WHERE id = ?", (item_id,))
                return str(row[0]) if row is not None else UNKNOWN
        return status

    def retry_outbox(self, item_id: int, *, at: float, now: float, error: str) -> None:
        """Put a reply that surely was not sent back in the queue, due at ``at``."""
        with self.transaction():
            self._execute(
                "UPDATE outbox SET status = ?, next_attempt_at = ?, error = ?, lease_owner = NULL,"
                " lease_until = NULL, updated_at = ? WHERE id = ?",
                (PENDING, at, error, now, item_id),
            )

    def expire_leases(self, *, now: float) -> list[tuple[str, str]]:
        """Claimed replies whose worker died mid-send become ``unknown`` (``sent`` when a
        status callback already named them); their sids and new statuses."""
        with self.transaction():
            rows = self._all(
                "SELECT id, message_sid FROM outbox WHERE status = ? AND lease_until < ?",
                (SENDING, now),
            )
            for row in rows:
                self._execute(
                    f"UPDATE outbox SET status = {_UNKNOWN_UNLESS_CONFIRMED}, error = ?,"
                    " lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
                    ("worker stopped while sending", now, row[0]),
                )
            if not rows:
                return []
            settled: list[tuple[str, str]] = []
            for part, marks in in_chunks([r[0] for r in rows]):  # the statuses the CASE gave
                settled.extend((str(r[0]), str(r[1])) for r in self._all(
                    f"SELECT message_sid, status FROM outbox WHERE id IN ({marks}) ORDER BY id",
                    part,
                ))
            return settled

    def unknown_to_check(self, *, now: float, limit: int, grace_s: float,
                         max_checks: int) -> list[tuple[OutboxItem, int]]:
        """``unknown`` replies due for a look-up at the provider, with their count of
        look-ups so far: no status callback named them (no provider sid), fewer than
        ``max_checks`` look-ups, and ``grace_s`` gone since they became unknown (a
        callback may settle them first) or their next look-up time come."""
        rows = self._all(
            "SELECT id, message_sid, recipient, from_number, body, cost_micros, attempts,"
            " created_at, checks FROM outbox WHERE status = ? AND provider_sid IS NULL"
            " AND checks < ? AND COALESCE(check_at, updated_at + ?) <= ?"
            f" ORDER BY id LIMIT {int(limit)}",
            (UNKNOWN, max_checks, grace_s, now),
        )
        return [
            (OutboxItem(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]),
                        int(r[6]), float(r[7])), int(r[8]))
            for r in rows
        ]

    def provider_sids_to(self, recipient: str, item_id: int) -> frozenset[str] | None:
        """The provider sids of our other replies to ``recipient`` (a look-up must not take
        one of those messages for reply ``item_id``); None while another reply to that
        number is queued or being sent: its message may be listed before its sid is
        recorded, and must not be taken for this one either."""
        rows = self._all(
            "SELECT provider_sid, status FROM outbox WHERE recipient = ? AND id <> ?",
            (recipient, item_id),
        )
        if any(str(r[1]) in (PENDING, SENDING) for r in rows):
            return None
        return frozenset(str(r[0]) for r in rows if r[0] is not None)

    def postpone_check(self, item_id: int, checks: int, *, at: float, now: float) -> bool:
        """Look an ``unknown`` reply up at ``at`` instead, without counting a look-up (one
        could not be made yet); False when it changed meanwhile."""
        with self.transaction():
            return self._rowcount(
                "UPDATE outbox SET check_at = ?, updated_at = ? WHERE id = ? AND status = ?"
                " AND provider_sid IS NULL AND checks = ?",
                (at, now, item_id, UNKNOWN, checks),
            ) > 0

    def record_check(
        self, item_id: int, checks: int, *, found: bool | None, now: float,
        provider_sid: str | None = None, provider_status: str | None = None,
        next_check_at: float | None = None,
    ) -> str | None:
        """What a look-up at the provider showed for an ``unknown`` reply, which had had
        ``checks`` look-ups when it was read. Found: ``sent``, with the provider's sid.
        Surely absent: queued again, due now (the provider never created it, so sending
        it cannot make a second SMS). Unclear (``found`` None): looked up again at
        ``next_check_at``. Each counts one look-up. Returns the reply's new status, or None
        when it changed meanwhile (a callback settled it, or another instance looked it up
        first): ``checks`` in the condition makes a stale look-up change nothing."""
        with self.transaction():
            where = (" WHERE id = ? AND status = ? AND provider_sid IS NULL AND checks = ?",
                     (item_id, UNKNOWN, checks))
            if found is True and provider_sid is not None and self._sid_taken(
                item_id, provider_sid
            ):
                found = None  # another reply to this number was matched to it meanwhile
            if found is True:
                # as a status callback: a message the provider says failed stays unknown
                # (counted as spent) for an operator, and is not looked up again
                status = UNKNOWN if provider_status == PROVIDER_FAILED else SENT
                changed = self._rowcount(
                    "UPDATE outbox SET status = ?, provider_sid = ?, provider_status = ?,"
                    " checks = checks + 1, check_at = NULL, error = ?, updated_at = ?" + where[0],
                    (status, provider_sid or "(listed without a sid)", provider_status,
                     LOOKUP_MATCH, now, *where[1]),
                )
                return status if changed else None
            if found is False:
                changed = self._rowcount(
                    "UPDATE outbox SET status = ?, next_attempt_at = ?, checks = checks + 1,"
                    " check_at = NULL, error = ?, updated_at = ?" + where[0]
                    + " AND provider_status IS NULL",
                    (PENDING, now, "not at the provider: sent again", now, *where[1]),
                )
                return PENDING if changed else None
            changed = self._rowcount(
                "UPDATE outbox SET checks = checks + 1, check_at = ?, updated_at = ?" + where[0],
                (next_check_at if next_check_at is not None else now, now, *where[1]),
            )
            return UNKNOWN if changed else None

    def _sid_taken(self, item_id: int, provider_sid: str) -> bool:
        """Whether another reply to the same number already has ``provider_sid``. That
        number's replies are locked first (PostgreSQL), so two look-ups recording the same
        message for two replies (two instances) run one after the other."""
        self._all(
            "SELECT id FROM outbox WHERE recipient = (SELECT recipient FROM outbox WHERE id = ?)"
            f" ORDER BY id{self._for_update}",
            (item_id,),
        )
        return self._one(
            "SELECT 1 FROM outbox WHERE provider_sid = ? AND id <> ?", (provider_sid, item_id)
        ) is not None

    def release_own_leases(self, owner: str, *, now: float) -> int:
        """At shutdown: replies we claimed but never started sending go back to pending."""
        with self.transaction():
            return self._rowcount(
                "UPDATE outbox SET status = ?, lease_owner = NULL, lease_until = NULL,"
                " attempts = attempts - 1, updated_at = ? WHERE status = ? AND lease_owner = ?",
                (PENDING, now, SENDING, owner),
            )

    def outbox_counts(self) -> dict[str, int]:
        rows = self._all("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        counts = {s: 0 for s in (PENDING, SENDING, SENT, FAILED, UNKNOWN)}
        counts.update({str(r[0]): int(r[1]) for r in rows})
        return counts

    def outbox_rows(self) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT id, message_sid, recipient, from_number, body, status, attempts,"
            " provider_sid, provider_status, error FROM outbox ORDER BY id"
        )
        keys = ("id", "message_sid", "recipient", "from_number", "body", "status", "attempts",
                "provider_sid", "provider_status", "error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def record_status(
        self, provider_sid: str, status: str, error_code: str | None, *, now: float,
        reply_to: str | None = None,
    ) -> bool:
        """A provider status callback; True if it matched a reply we sent.

        ``reply_to`` is the inbound message id the outbox put in the callback URL
        (``?reply=``; Twilio signs the URL, so it is ours). It names the reply even when
        our call never learnt the provider's sid: a read timeout or a worker that died
        mid-send leaves the reply ``unknown`` (maybe sent, never resent), and a callback
        for it proves the provider created the message, so it becomes ``sent`` (``failed``
        excepted: the provider says it never left, yet it stays ``unknown`` and counted
        as spent, for an operator to look at). A reply still ``sending`` keeps the sid,
        and ``finish_outbox`` turns its ``unknown`` into ``sent``.
        """
        with self.transaction():
            self._execute(
                "INSERT INTO status_events (provider_sid, status, error_code, received_at)"
                " VALUES (?, ?, ?, ?)",
                (provider_sid, status, error_code, now),
            )
            if reply_to is not None:
                self._correct_lookup_match(provider_sid, reply_to, now=now)
            if self._rowcount(
                "UPDATE outbox SET provider_status = ?, updated_at = ? WHERE provider_sid = ?",
                (status, now, provider_sid),
            ):
                return True
            if reply_to is None:
                return False
            return (
                self._rowcount(
                    "UPDATE outbox SET provider_sid = ?, provider_status = ?, updated_at = ?,"
                    " status = CASE WHEN status = ? AND ? <> ? THEN ? ELSE status END"
                    " WHERE message_sid = ? AND provider_sid IS NULL AND status IN (?, ?, ?)",
                    (provider_sid, status, now, UNKNOWN, status, PROVIDER_FAILED, SENT,
                     reply_to, UNKNOWN, SENDING, SENT),
                )
                > 0
            )

    def _correct_lookup_match(self, provider_sid: str, reply_to: str, *, now: float) -> None:
        """A status callback says ``provider_sid`` is reply ``reply_to``'s message: exact,
        where a look-up's match is a guess. The Messages list tells two of our messages
        to one number apart only by sid and creation time, and the 5 minutes of clock
        skew a look-up allows for let a later reply take an earlier one's message: two
        replies could get each other's sid (both sent, so the money was right, but every
        later callback updated the other reply's row). If another reply holds that sid
        from a look-up, the callback's reply takes it: when its own sid came from a
        look-up too, the two swap what the provider said of them (sid, its status, and
        sent or unknown); when it had none, the other one is ``unknown`` again (counted
        as spent, as before) and looked up anew. A sid from a send's answer or an earlier
        callback is never moved. The number's replies are locked first, in id order."""
        row = self._one("SELECT recipient FROM outbox WHERE message_sid = ?", (reply_to,))
        if row is None:
            return
        replies = self._all(
            "SELECT id, message_sid, provider_sid, provider_status, status, error FROM outbox"
            f" WHERE recipient = ? ORDER BY id{self._for_update}",
            (row[0],),
        )
        ours = next(r for r in replies if r[1] == reply_to)
        holder = next((r for r in replies if r[2] == provider_sid and r[0] != ours[0]), None)
        if holder is None or holder[5] != LOOKUP_MATCH:
            return
        if ours[2] is None:
            self._execute(
                "UPDATE outbox SET provider_sid = NULL, provider_status = NULL, status = ?,"
                " check_at = ?, error = ?, updated_at = ? WHERE id = ?",
                (UNKNOWN, now, "its look-up match was another reply's message (status "
                 "callback): looked up again", now, holder[0]),
            )
        elif ours[5] == LOOKUP_MATCH:
            self._execute(
                "UPDATE outbox SET provider_sid = ?, provider_status = ?, status = ?,"
                " updated_at = ? WHERE id = ?",
                (ours[2], ours[3], ours[4], now, holder[0]),
            )
            self._execute(
                "UPDATE outbox SET provider_sid = ?, provider_status = ?, status = ?,"
                " error = ?, updated_at = ? WHERE id = ?",
                (provider_sid, holder[3], holder[4], CALLBACK_MATCH, now, ours[0]),
            )

    # -- operator controls -----------------------------------------------------

    def controls(self) -> ControlsRow:
        row = self._one("SELECT kill_switch, version FROM controls")
        kill, version = (bool(row[0]), int(row[1])) if row else (False, 0)
        rules = self._all("SELECT kind, pattern FROM number_rules")
        return ControlsRow(
            kill_switch=kill,
            blocked=frozenset(str(p) for k, p in rules if k == "block"),
            allowed=frozenset(str(p) for k, p in rules if k == "allow"),
            version=version,
        )

    def controls_version(self) -> int:
        row = self._one("SELECT version FROM controls")
        return int(row[0]) if row else 0

    def kill_switch(self) -> bool:
        row = self._one("SELECT kill_switch FROM controls")
        return bool(row[0]) if row else False

    def set_kill_switch(self, on: bool) -> None:
        with self.transaction():
            self._execute(
                "UPDATE controls SET kill_switch = ?, version = version + 1", (1 if on else 0,)
            )

    def add_number_rule(self, kind: str, pattern: str, *, now: float) -> bool:
        with self.transaction():
            added = self._rowcount(
                "INSERT INTO number_rules (kind, pattern, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (kind, pattern, now),
            )
            self._execute("UPDATE controls SET version = version + 1")
            return added == 1

    def remove_number_rule(self, kind: str, pattern: str) -> bool:
        with self.transaction():
            removed = self._rowcount(
                "DELETE FROM number_rules WHERE kind = ? AND pattern = ?", (kind, pattern)
            )
            self._execute("UPDATE controls SET version = version + 1")
            return removed == 1
