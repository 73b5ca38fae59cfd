"""Backends for the ledger/store contract suite: memory, SQLite, PostgreSQL.

Imported by ``tests/test_store_*.py`` and ``tests/test_responder_*.py``. PostgreSQL
runs against ``RAIDSIM_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), each test in a fresh schema that
is dropped afterwards. An unreachable server skips those tests locally and fails
them when ``CI=true``: in CI they must run.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from responder.policy.ledger import Ledger, MemoryLedger
from responder.store import SqlStore, open_store

POSTGRES_URL = os.environ.get(
    "RAIDSIM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
NOW = 1_800_000_000.0  # a fixed instant: tests never read the wall clock for ledger time

LedgerFactory = Callable[[], Ledger]
StoreFactory = Callable[[], SqlStore]


def _postgres_or_skip() -> None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        message = f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)


def with_search_path(url: str, schema: str) -> str:
    """``url`` with libpq ``options`` selecting ``schema`` first."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, empty schema, dropped after the test."""
    _postgres_or_skip()
    import psycopg

    schema = f"raidsim_t_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each SQL backend, fresh per test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'raidsim.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store_factory(store_url: str) -> Iterator[StoreFactory]:
    """Open migrated stores on one database: each call is a new connection (a new 'process')."""
    opened: list[SqlStore] = []

    def make() -> SqlStore:
        store = open_store(store_url)
        store.migrate(now=time.time())
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> SqlStore:
    return store_factory()


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def ledger_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerFactory]:
    """Every Ledger implementation. SQL factories share one database across calls."""
    if request.param == "memory":
        shared = MemoryLedger()
        yield lambda: shared
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened: list[SqlStore] = []

    def make() -> Ledger:
        store = open_store(url)
        store.migrate(now=NOW)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
