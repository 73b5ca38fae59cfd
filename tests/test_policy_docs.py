"""docs/policy.md's Tuning block lists every key of every policy section, and no other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from responder.policy.config import PolicyConfig
from responder.policy.errors import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "policy.md"


def _documented() -> dict[str, set[str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index("## Tuning"):]
    (toml,) = re.findall(r"```toml\n(.*?)```", block, re.S)[:1]
    sections: dict[str, str] = {}
    current = ""
    for line in toml.splitlines():
        head = re.match(r"\[policy\.(\w+)\]\s*#(.*)", line)
        if head:
            current = head.group(1)
            sections[current] = head.group(2)
        elif line.strip().startswith("#") and current:
            sections[current] += "," + line.strip()[1:]
    return {name: {m.group(1) for part in comment.split(",")
                   if (m := re.match(r"\s*([a-z_]+)\b", part))}
            for name, comment in sections.items()}


def _known(section: str) -> set[str]:
    with pytest.raises(ConfigError) as caught:
        PolicyConfig.from_mapping({section: {"no_such_key": 1}})
    assert caught.value.hint is not None
    return set(caught.value.hint.removeprefix("known keys: ").split(", "))


def test_the_tuning_block_lists_every_key_of_every_section() -> None:
    documented = _documented()
    assert len(documented) >= 9
    for section, keys in documented.items():
        assert keys == _known(section), section


def test_the_budget_has_no_cap_by_default() -> None:
    """The Tuning block showed total_eur = "1500", per_hour_eur = "60" like defaults."""
    budget = PolicyConfig().budget
    assert budget.total_micros is None and budget.per_hour_micros is None
