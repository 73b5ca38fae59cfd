"""The uvicorn entry point: ``uvicorn --factory responder.asgi:app_from_env``."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from responder.app import create_app
from responder.config import load_settings
from responder.logs import configure


def app_from_env() -> Starlette:
    """Build the app from RAIDSIM_* environment variables (each uvicorn worker calls this)."""
    settings = load_settings(os.environ)
    configure(settings.log_level)
    return create_app(settings, tune_gc=True)
