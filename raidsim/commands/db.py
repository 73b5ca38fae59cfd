"""``raidsim db upgrade|status``: the responder's database schema."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "db",
        help="apply or inspect the responder's database migrations",
        description=(
            "Manage the responder's database at --database-url (default: "
            "RAIDSIM_DATABASE_URL, else sqlite:///raidsim.db)."
        ),
    )
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION")
    for name, text, codes in (
            ("upgrade", "apply pending migrations",
             "exit codes: 0 done, 2 no usable database (a bad URL, a server that refuses), "
             "3 internal error (a bug; its traceback is printed)"),
            ("status", "print the schema version as JSON; exit 1 if not current",
             "exit codes: 0 current, 1 migrations pending (run raidsim db upgrade), 2 no "
             "database there or none reachable, 3 internal error (a bug; its traceback is "
             "printed)")):
        action = actions.add_parser(name, help=text, description=text, epilog=codes)
        action.add_argument("--database-url", default=None, help="database URL")
        action.set_defaults(func=run)
    def no_action(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=no_action)


def run(args: argparse.Namespace) -> int:
    from responder.store import StoreError, open_store, sqlite_path

    url = args.database_url or os.environ.get("RAIDSIM_DATABASE_URL") or "sqlite:///raidsim.db"
    try:
        if args.db_command == "status" and url.lower().startswith("sqlite:"):
            # opening a SQLite file creates it: a mistyped path would leave an empty one
            path = sqlite_path(url)
            if path != ":memory:" and not Path(path).exists():
                print(f"raidsim db: error: no database at {path} (hint: check "
                      "--database-url or RAIDSIM_DATABASE_URL; `raidsim db upgrade` "
                      "creates it)", file=sys.stderr)
                return 2
        store = open_store(url)
    except StoreError as exc:
        print(f"raidsim db: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.db_command == "upgrade":
            applied = store.migrate(now=time.time())
            print(json.dumps({"applied": applied, "version": store.schema_version()}))
            problem = store.schema_problem()  # after migrating: only a newer raidsim's schema
            if problem is not None:
                print(f"raidsim db: error: {problem}", file=sys.stderr)
                return 1
            return 0
        version = store.schema_version()
        print(json.dumps({"version": version, "latest": store.latest_version,
                          "current": version == store.latest_version}))
        return 0 if version == store.latest_version else 1
    except Exception as exc:
        print(f"raidsim db: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
