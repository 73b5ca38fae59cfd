"""The uvicorn entry point: ``uvicorn --factory responder.asgi:app_from_env``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette

from responder.app import create_app
from responder.config import load_settings
from responder.logs import configure, event

# Set by `raidsim serve --workers N`: the file where a worker that cannot start writes why,
# so that the supervisor's last line names the cause (the worker's own stderr holds it
# among uvicorn's log lines and traceback).
START_ERROR_FILE_ENV = "RAIDSIM_SERVE_START_ERROR_FILE"

# Set by `raidsim serve --workers N` to its own pid before it spawns the workers: a worker
# whose parent is no longer that process (the supervisor was killed, even with SIGKILL,
# and the worker re-parented to init or a subreaper) stops itself, gracefully, as on
# SIGTERM. Without it, orphaned workers kept the port and kept sending replies.
SUPERVISOR_PID_ENV = "RAIDSIM_SERVE_SUPERVISOR_PID"
PARENT_CHECK_S = 1.0  # how often a worker checks that its supervisor is still there

# Why this process's app could not start, one line each (``raidsim serve`` with one worker
# runs the app in its own process and reads them here).
start_errors: list[str] = []


def app_from_env() -> Starlette:
    """Build the app from RAIDSIM_* environment variables (each uvicorn worker calls this)."""
    try:
        settings = load_settings(os.environ)
        configure(settings.log_level)
        app = create_app(settings, tune_gc=True)
    except Exception as exc:
        report_start_error(exc)
        raise
    app.router.lifespan_context = _reporting(app.router.lifespan_context)
    return app


def _reporting(lifespan: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``lifespan``, reporting an exception out of its start-up (not its shutdown)."""

    @contextlib.asynccontextmanager
    async def reporting(app: Any) -> AsyncIterator[Any]:
        started = False
        try:
            async with lifespan(app) as state:
                started = True
                watchdog = _watch_supervisor()
                try:
                    yield state
                finally:
                    if watchdog is not None:
                        watchdog.cancel()
        except Exception as exc:
            if not started:
                report_start_error(exc)
            raise

    return reporting


def _watch_supervisor() -> asyncio.Task[None] | None:
    """In a ``raidsim serve --workers N`` worker, a task that stops this worker (SIGTERM
    to itself: uvicorn's graceful shutdown, in-flight requests and the outbox's drain
    finished) once its parent is no longer the supervisor; None elsewhere."""
    supervisor = os.environ.get(SUPERVISOR_PID_ENV, "")
    if not supervisor.isdigit() or int(supervisor) == os.getpid():
        return None
    return asyncio.create_task(_orphan_check(int(supervisor)), name="supervisor-watch")


async def _orphan_check(supervisor: int, every: float = PARENT_CHECK_S) -> None:
    while os.getppid() == supervisor:
        await asyncio.sleep(every)
    event("supervisor_gone", level=30, supervisor=supervisor, parent=os.getppid(),
          pid=os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)


def report_start_error(exc: BaseException) -> None:
    """Record why the app cannot start: in ``start_errors``, and in the file named by
    ``RAIDSIM_SERVE_START_ERROR_FILE`` if set (a worker's supervisor reads it)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
    start_errors.append(text)
    path = os.environ.get(START_ERROR_FILE_ENV)
    if path:
        with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as file:
            file.write(text + "\n")
