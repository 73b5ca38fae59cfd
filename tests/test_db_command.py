"""`raidsim db upgrade|status`: the schema, as an operator's deploy script sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def db(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "RAIDSIM_DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "raidsim", "db", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**environ, **(env or {})}, timeout=120)


def test_status_then_upgrade_then_status_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    missing = db("status", "--database-url", url)
    assert missing.returncode == 2 and "no database at" in missing.stderr
    assert not (tmp_path / "r.db").exists()  # a status check creates nothing
    upgraded = db("upgrade", "--database-url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    first = json.loads(upgraded.stdout)
    assert first["applied"] and first["version"] >= 1
    again = json.loads(db("upgrade", "--database-url", url).stdout)
    assert again == {"applied": [], "version": first["version"]}  # idempotent
    status = db("status", env={"RAIDSIM_DATABASE_URL": url})
    assert status.returncode == 0
    assert json.loads(status.stdout) == {"version": first["version"],
                                         "latest": first["version"], "current": True}


def test_status_of_an_old_schema_exits_1(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # an existing file with no schema at all
    status = db("status", "--database-url", f"sqlite:///{path}")
    assert status.returncode == 1
    assert json.loads(status.stdout)["current"] is False


def test_upgrade_of_a_schema_newer_than_this_raidsim_says_so(tmp_path: Path) -> None:
    """A database a newer raidsim migrated: upgrade printed {"applied": []} and exit 0."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'new.db'}"
    latest = json.loads(db("upgrade", "--database-url", url).stdout)["version"]
    with sqlite3.connect(tmp_path / "new.db") as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES "
                     "(?, 'from_the_future', 0)", (latest + 1,))
    upgraded = db("upgrade", "--database-url", url)
    assert upgraded.returncode == 1
    assert f"schema version {latest + 1}, newer than this raidsim knows ({latest})" \
        in upgraded.stderr


def test_serve_on_a_schema_newer_than_this_raidsim_is_a_clear_usage_error(
    tmp_path: Path,
) -> None:
    """A deploy rolled back after a newer raidsim migrated the database: `serve` died in
    the worker's lifespan with a traceback and exit 3 ("a bug"), telling the operator to
    run `raidsim db upgrade`, which cannot help."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'new.db'}"
    latest = json.loads(db("upgrade", "--database-url", url).stdout)["version"]
    with sqlite3.connect(tmp_path / "new.db") as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES "
                     "(?, 'from_the_future', 0)", (latest + 1,))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RAIDSIM_")}
    served = subprocess.run(
        [sys.executable, "-m", "raidsim", "serve", "--port", "1"], capture_output=True,
        text=True, cwd=ROOT, timeout=120,
        env={**environ, "RAIDSIM_DATABASE_URL": url,
             "RAIDSIM_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "RAIDSIM_TWILIO_AUTH_TOKEN": "t"})
    assert served.returncode == 2, served.stderr
    assert "Traceback" not in served.stderr
    assert f"schema version {latest + 1}, newer than this raidsim knows ({latest})" \
        in served.stderr


def test_bad_urls_and_no_action_are_usage_errors() -> None:
    assert db("status", "--database-url", "mysql://x/y").returncode == 2
    assert db("status", "--database-url", "sqlite:/nope").returncode == 2
    assert db().returncode == 2


@pytest.mark.postgres
def test_upgrade_and_status_on_postgresql(postgres_url: str) -> None:
    before = db("status", "--database-url", postgres_url)  # a fresh, empty schema
    assert before.returncode == 1 and json.loads(before.stdout)["current"] is False
    upgraded = db("upgrade", "--database-url", postgres_url)
    assert upgraded.returncode == 0, upgraded.stderr
    status = db("status", "--database-url", postgres_url)
    assert status.returncode == 0 and json.loads(status.stdout)["current"] is True


def test_a_mistyped_url_is_named_without_its_password() -> None:
    """The error printed the whole URL, password included, to stderr (and the journal)."""
    url = "postgresq://app:S3cretPassw0rd@db.internal/raidsim"
    result = db("status", "--database-url", url)
    assert result.returncode == 2
    assert "postgresq://app:***@db.internal/raidsim" in result.stderr
    assert "S3cret" not in result.stderr + result.stdout


def test_serve_names_a_mistyped_database_url_without_its_password() -> None:
    from responder.config import load_settings
    from responder.policy.errors import ConfigError

    env = {"RAIDSIM_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "RAIDSIM_TWILIO_AUTH_TOKEN": "t",
           "RAIDSIM_DATABASE_URL": "mysql://root:hunter2@localhost/raidsim"}
    with pytest.raises(ConfigError) as error:
        load_settings(env)
    assert "mysql://root:***@localhost/raidsim" in str(error.value)
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:pw@db/x", "postgresql://app:***@db/x"),
    ("postgresql://app@db/x", "postgresql://app@db/x"),
    ("https://u:p:q@h/path?a=b@c", "https://u:***@h/path?a=b@c"),
    ("sqlite:///raidsim.db", "sqlite:///raidsim.db"),
    ("not a url", "not a url"),
])
def test_redact_url(url: str, shown: str) -> None:
    from responder.logs import redact_url

    assert redact_url(url) == shown
