"""``raidsim serve``: run the production responder on uvicorn."""

from __future__ import annotations

import argparse
import inspect
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the SMS auto-responder (Twilio webhooks, budgeted outbox, admin API)",
        description=(
            "Run the responder on uvicorn. Configuration comes from RAIDSIM_* environment "
            "variables, or a TOML file named by RAIDSIM_CONFIG that they override; only "
            "RAIDSIM_TWILIO_ACCOUNT_SID and RAIDSIM_TWILIO_AUTH_TOKEN are required. "
            "Database migrations are applied before the workers start. See docs/responder.md."
        ),
        epilog="Exit codes: after a graceful shutdown, 143 on SIGTERM (128 + 15, as process "
        "supervisors expect) and 0 on Ctrl-C; 2 for a bad setting or a busy port (named on "
        "stderr); 3 for an internal error.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes (default 1; for several, use PostgreSQL)")
    parser.add_argument(
        "--forwarded-allow-ips", default=None,
        help="trust X-Forwarded-* from these proxy IPs (comma-separated, or *)",
    )
    parser.add_argument(
        "--graceful-timeout", type=float, default=None,
        help="seconds to wait for in-flight requests at shutdown (default: no limit)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from responder.config import load_settings
    from responder.policy.errors import ConfigError
    from responder.store import StoreError, open_store

    if args.workers < 1 or not 0 < args.port < 65536:
        print("raidsim serve: error: --workers must be >= 1 and --port in 1..65535",
              file=sys.stderr)
        return 2
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"raidsim serve: configuration error: {exc}", file=sys.stderr)
        return 2
    try:  # migrate once, before any worker starts, and fail early with a clear message
        store = open_store(settings.database_url)
        try:
            store.migrate(now=time.time())
            problem = store.schema_problem()  # a newer raidsim's schema: no worker can run
        finally:
            store.close()
        if problem is not None:
            print(f"raidsim serve: database error: {problem}", file=sys.stderr)
            return 2
    except StoreError as exc:
        print(f"raidsim serve: database error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"raidsim serve: database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    if args.workers > 1 and settings.database_url.lower().startswith("sqlite:"):
        print(f"raidsim serve: warning: {args.workers} workers on one SQLite file take turns "
              "on its write lock, and a worker waiting for it answers nothing meanwhile "
              "(health checks included, up to the 10 s busy timeout); for several workers "
              "use PostgreSQL (RAIDSIM_DATABASE_URL=postgresql://...)", file=sys.stderr)
    problem = _bind_problem(args.host, args.port)
    if problem is not None:
        print(f"raidsim serve: error: cannot listen on {args.host}:{args.port}: {problem}",
              file=sys.stderr)
        return 2

    import uvicorn

    options: dict[str, object] = {}
    if args.forwarded_allow_ips:
        options.update(proxy_headers=True, forwarded_allow_ips=args.forwarded_allow_ips)
    config = dict(
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=args.graceful_timeout,
        **options,
    )
    if args.workers == 1:
        # uvicorn's server raises the signal it stopped on again once it has shut down:
        # a SIGTERM ends the process as SIGTERM (143), a Ctrl-C as KeyboardInterrupt.
        uvicorn.run("responder.asgi:app_from_env", **config)
        return 0
    # Its worker supervisor does not: after a SIGTERM it returned, and serve exited 0.
    if _supervise(uvicorn.Config("responder.asgi:app_from_env", **config)):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # 143, as with one worker
    return 0


def _supervise(config: uvicorn.Config) -> bool:
    """Run ``config.workers`` worker processes as ``uvicorn.run`` does; True if the
    supervisor stopped on SIGTERM (it stops them gracefully first)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        terminated = False

        def handle_term(self) -> None:
            self.terminated = True
            super().handle_term()

    options: dict[str, Any] = {}
    if "target" in inspect.signature(Multiprocess.__init__).parameters:
        # uvicorn 0.30 to 0.3x: the supervisor is given each worker's entry point, as
        # uvicorn.run gives it (later versions build the server in the worker themselves)
        options["target"] = uvicorn.Server(config=config).run
    supervisor = Supervisor(config, sockets=[config.bind_socket()], **options)
    supervisor.run()
    return supervisor.terminated


def _bind_problem(host: str, port: int) -> str | None:
    """Why uvicorn could not listen on host:port (port in use, no such address), or None.

    Checked before uvicorn starts: with one worker, uvicorn binds only after the
    application has started (migrated the database, replayed its traffic), then logs the
    error among its start-up lines and exits 3. Bound as uvicorn binds (IPv6 when the
    host has a colon, SO_REUSEADDR), so both agree on what is free.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except (OSError, UnicodeError) as exc:
            return getattr(exc, "strerror", None) or str(exc)
    return None
