"""The design rule: dependencies run one way. ``sim``, ``scenarios`` and ``reports`` may import
``responder.policy`` and ``responder.sms`` only; the responder never imports them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED_FROM_RESPONDER = ("responder.policy", "responder.sms")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, node.module)]
            if node.module == "responder":  # from responder import money
                found += [(node.lineno, f"responder.{a.name}") for a in node.names]
    return found


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["sim", "scenarios", "reports"])
def test_harness_imports_only_the_policy_and_sms_from_the_responder(package: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in _sources(package)
        for line, name in _imports(path)
        if (name == "responder" or name.startswith("responder."))
        and not name.startswith(ALLOWED_FROM_RESPONDER)
    ]
    assert bad == []


def test_the_responder_never_imports_the_harness() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in _sources("responder")
        for line, name in _imports(path)
        if name.split(".")[0] in {"sim", "scenarios", "reports", "raidsim", "simpy", "locust",
                                  "matplotlib"}
    ]
    assert bad == []
