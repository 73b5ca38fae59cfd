"""``raidsim serve``: run the production responder on uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import uvicorn

# uvicorn's exit status for an app that did not start (and gunicorn's for a worker that
# failed to boot)
STARTUP_FAILURE = 3
logger = logging.getLogger("uvicorn.error")


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
        "supervisors expect) and 0 on Ctrl-C; 2 for a bad setting, an unusable database or "
        "a busy port (named on stderr); 3 when the responder, or any of its --workers, "
        "could not start (the last line on stderr names the cause), or for an internal "
        "error. A worker that dies after it started is replaced.",
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
        "--graceful-timeout", default=None, metavar="D",
        help="how long to wait for in-flight requests at shutdown: 30, 30s, 2m "
        "(default: no limit)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from responder.config import is_loopback_host, load_settings
    from responder.policy.errors import ConfigError
    from responder.store import StoreError, open_store

    for wrong, flag in ((args.workers < 1, f"--workers {args.workers}: must be 1 or more"),
                        (not 0 < args.port < 65536, f"--port {args.port}: must be in 1..65535")):
        if wrong:
            print(f"raidsim serve: error: {flag}", file=sys.stderr)
            return 2
    if args.graceful_timeout is not None:
        from raidsim.cli import UsageError, duration_flag

        try:  # a negative one was accepted: uvicorn then cut every request off at once
            args.graceful_timeout = duration_flag("--graceful-timeout", args.graceful_timeout)
        except UsageError as exc:
            print(f"raidsim serve: error: {exc}", file=sys.stderr)
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
    if settings.metrics_token is None and not is_loopback_host(args.host):
        print(f"raidsim serve: warning: /metrics is readable by anyone who reaches "
              f"{args.host}:{args.port}, and it shows a raid when raid mode ends, the money "
              "left and which rule caught each text; set RAIDSIM_METRICS_TOKEN (Prometheus: "
              "authorization: credentials), or keep /metrics off the public route at your "
              "proxy", file=sys.stderr)
    problem = _bind_problem(args.host, args.port)
    if problem is not None:
        print(f"raidsim serve: error: cannot listen on {args.host}:{args.port}: {problem}",
              file=sys.stderr)
        return 2

    import uvicorn

    from responder.logs import server_log_config

    options: dict[str, object] = {}
    if args.forwarded_allow_ips:
        options.update(proxy_headers=True, forwarded_allow_ips=args.forwarded_allow_ips)
    config = dict(
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        lifespan="on",
        # No websockets here: with the websockets package installed, an "Upgrade: websocket"
        # request held its connection open, and a shutdown meanwhile crashed in it
        # (AssertionError, exit 3). Without a protocol, uvicorn answers it as plain HTTP.
        ws="none",
        log_level=settings.log_level.lower(),
        log_config=server_log_config(),  # JSON lines, as the responder's own
        access_log=False,
        timeout_graceful_shutdown=args.graceful_timeout,
        **options,
    )
    if args.workers == 1:
        # uvicorn's server raises the signal it stopped on again once it has shut down:
        # a SIGTERM ends the process as SIGTERM (143), a Ctrl-C as KeyboardInterrupt.
        from responder import asgi

        try:
            uvicorn.run("responder.asgi:app_from_env", **config)
        except SystemExit as exc:  # uvicorn exits 3 if the app did not start (older: 1 if
            # it did not load)
            if exc.code in (None, 0):
                return 0
            return _start_failed(asgi.start_errors[-1] if asgi.start_errors else None)
        return 0
    # Its worker supervisor does not: after a SIGTERM it returned, and serve exited 0; so
    # it did when it stopped because a worker could not start.
    stopped = _supervise(uvicorn.Config("responder.asgi:app_from_env", **config))
    if stopped.failed:
        return _start_failed(stopped.cause)
    if stopped.terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # 143, as with one worker
    return 0


def _start_failed(cause: str | None) -> int:
    """Say, as the last line on stderr, that the app could not start and why: uvicorn's
    traceback above it is long, and a process supervisor shows the last line."""
    because = f": {cause}" if cause else "; the errors above say why"
    print(f"raidsim serve: error: the responder failed to start (exit {STARTUP_FAILURE})"
          f"{because}", file=sys.stderr)
    return STARTUP_FAILURE


class Stopped(NamedTuple):
    """Why the worker supervisor stopped (it stops the workers gracefully first)."""

    terminated: bool  # on SIGTERM
    failed: bool = False  # a worker could not start (exited 3)
    cause: str | None = None  # what the worker said, if it could


def _supervise(config: uvicorn.Config) -> Stopped:
    """Run ``config.workers`` worker processes as ``uvicorn.run`` does, until a signal
    stops them or one of them cannot start."""
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        terminated = False
        failed = False
        metrics_dir: str | None = None
        known: frozenset[int] = frozenset()

        def handle_signals(self) -> None:
            super().handle_signals()  # SIGTTOU retires a worker, SIGHUP replaces them all
            self.forget_dead_workers()

        def forget_dead_workers(self) -> None:
            """Drop the live gauges (circuit open) of workers no longer running from
            ``/metrics``; their counters stay, or fleet totals would go backwards."""
            current = frozenset(p.pid for p in self.processes if p.pid is not None)
            if self.metrics_dir is not None:
                from prometheus_client import multiprocess

                for pid in self.known - current:
                    multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            self.known = current

        def handle_term(self) -> None:
            self.terminated = True
            super().handle_term()

        def keep_subprocess_alive(self) -> None:
            # Older uvicorn (0.40 among them) restarted a worker that could not start,
            # again and again; later ones stop, as here, then return as after a clean stop.
            for process in self.processes:
                if not self.should_exit.is_set() and _start_failure(process):
                    logger.error("Child process [%s] failed to start, stopping the parent "
                                 "process.", process.pid)
                    self.should_exit.set()
                    return
            super().keep_subprocess_alive()
            self.forget_dead_workers()

    options: dict[str, Any] = {}
    if "target" in inspect.signature(Multiprocess.__init__).parameters:
        # uvicorn 0.30 to 0.3x: the supervisor is given each worker's entry point, as
        # uvicorn.run gives it (later versions build the server in the worker themselves)
        options["target"] = _Worker(config).run
    from responder.asgi import SUPERVISOR_PID_ENV

    # the workers inherit it: one whose parent is no longer this process stops itself
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    supervisor = Supervisor(config, sockets=[config.bind_socket()], **options)
    with _start_error_file() as path, _metrics_dir() as metrics_dir:
        supervisor.metrics_dir = metrics_dir
        supervisor.run()
        if supervisor.terminated:
            return Stopped(terminated=True)
        if any(_start_failure(process) for process in supervisor.processes):
            return Stopped(terminated=False, failed=True, cause=_read_start_error(path))
    return Stopped(terminated=False)


def _start_failure(process: Any) -> bool:
    """Whether a worker (a uvicorn ``Process``) exited as one that could not start."""
    return bool(process.process.exitcode == STARTUP_FAILURE)


class _Worker:
    """A worker's entry point for the uvicorn versions whose supervisor takes one (0.30
    to 0.40 at least): a ``uvicorn.Server``'s run, but exit 3 when the app did not start,
    as later versions' workers do; these returned (exit 0) when the app's start-up
    failed, and exited 1 when it did not load."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.config = config

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        import uvicorn

        server = uvicorn.Server(config=self.config)
        try:
            server.run(sockets)
        except SystemExit:
            if server.started:
                raise
        if not server.started:
            sys.exit(STARTUP_FAILURE)


@contextlib.contextmanager
def _start_error_file() -> Iterator[str]:
    """A fresh empty file, named to the workers (they inherit the environment), where
    one that cannot start writes why; removed afterwards."""
    from responder.asgi import START_ERROR_FILE_ENV

    handle, path = tempfile.mkstemp(prefix="raidsim-serve-", suffix=".start-error")
    os.close(handle)
    os.environ[START_ERROR_FILE_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(START_ERROR_FILE_ENV, None)
        with contextlib.suppress(OSError):
            os.remove(path)


METRICS_DIR_PREFIX = "raidsim-serve-metrics-"


def _remove_orphaned_metrics_dirs() -> None:
    """Remove the metrics directories of serve processes that are gone without removing
    theirs (killed with SIGKILL): each is named after its serve's pid."""
    import glob
    import shutil

    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{METRICS_DIR_PREFIX}*-*")):
        pid = os.path.basename(path)[len(METRICS_DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive, another user's


@contextlib.contextmanager
def _metrics_dir() -> Iterator[str]:
    """A fresh private directory where the workers (they inherit the environment) keep
    their Prometheus values, so that ``/metrics`` adds up every worker's (prometheus_client's
    multiprocess mode); removed afterwards, so a restart never counts a past run's."""
    import shutil

    from responder.metrics import MULTIPROC_DIR_ENV

    _remove_orphaned_metrics_dirs()
    path = tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-")
    previous = os.environ.get(MULTIPROC_DIR_ENV)
    os.environ[MULTIPROC_DIR_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR_ENV, None)
        else:
            os.environ[MULTIPROC_DIR_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def _read_start_error(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.readline().strip() or None
    except OSError:
        return None


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
