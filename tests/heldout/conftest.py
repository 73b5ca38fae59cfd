"""Registers the ``heldout`` marker: ``pytest -m heldout`` runs the held-out benchmark alone."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "heldout: the default policy judged on worlds from independent generators"
    )
