"""Hostile or odd input the responder must answer with 4xx (or accept), never 500/503.

A 503 tells the provider to retry a request that can never succeed, so a message that
the database refuses (NUL in PostgreSQL text, lone surrogates from JSON escapes) or
a JSON document that breaks the parser is input error, answered 400, not an outage.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from responder_support import ADMIN_TOKEN
from test_responder_app import Clock, Provider, running, settings_for

from responder.money import MAX_MICROS, MoneyError, to_micros
from responder.policy.errors import ConfigError
from responder.signing import generic_signature
from responder.store import open_store

pytestmark = pytest.mark.anyio
GENERIC = "/webhooks/generic/sms"
SECRET = "generic-secret-0123456789"


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def signed_json(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Raidsim-Signature": generic_signature(SECRET, body)}


def stored(url: str) -> dict[str, tuple[str, str, str]]:
    store = open_store(url)
    try:
        rows = store._all("SELECT message_sid, sender, body, action FROM inbound")
        return {str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}
    finally:
        store.close()


async def test_admin_budget_too_large_is_400(tmp_path: Path, store_url: str) -> None:
    """An amount no 64-bit column holds is refused with 400 and the caps stay as they were."""
    settings = settings_for(tmp_path, RAIDSIM_DATABASE_URL=store_url, RAIDSIM_BUDGET_EUR="5")
    async with running(settings, Provider(), Clock()) as client:
        answers = []
        for amount in ("1e20", "9223372036855", "1e999999999"):
            response = await client.put("/admin/budget", json={"total_eur": amount},
                                        headers=admin())
            answers.append((response.status_code, "too large" in response.text))
        edge = await client.put("/admin/budget", json={"per_hour_eur": "9223372036854.775807"},
                                headers=admin())
        budget = (await client.get("/admin/budget", headers=admin())).json()
    assert answers == [(400, True)] * 3
    assert edge.status_code == 200
    assert (budget["total_eur"], budget["per_hour_eur"]) == ("5", "9223372036854.775807")


def test_config_budget_too_large_is_a_config_error(tmp_path: Path) -> None:
    """RAIDSIM_BUDGET_EUR past what the ledger holds stops the service at start (exit 2),
    instead of failing inside the application's start-up with a traceback."""
    with pytest.raises(ConfigError, match=r"RAIDSIM_BUDGET_EUR.*too large"):
        settings_for(tmp_path, RAIDSIM_BUDGET_EUR="1e20")
    with pytest.raises(ConfigError, match=r"RAIDSIM_BUDGET_HOUR_EUR.*not an amount"):
        settings_for(tmp_path, RAIDSIM_BUDGET_HOUR_EUR="abc")


def test_to_micros_never_rounds() -> None:
    """Amounts with more digits than Decimal's 28-digit context used to be rounded to a
    whole number of micros; now they are exact or refused, and huge exponents are cheap."""
    with pytest.raises(MoneyError, match="decimal places"):
        to_micros("1234567.1234567")
    with pytest.raises(MoneyError, match="too large"):
        to_micros("1234567890123456789012.1234567")
    with pytest.raises(MoneyError, match="decimal places"):
        to_micros("1e-999999999")
    with pytest.raises(MoneyError, match="too large"):
        to_micros("1e999999999")
    assert to_micros("9223372036854.775807") == MAX_MICROS
    assert to_micros("1." + "0" * 40) == 1_000_000
    assert to_micros(Decimal("0E+999999999")) == 0
    assert to_micros("-0.16") == -160_000
    assert to_micros("1e2") == 100_000_000
    assert to_micros(7) == 7_000_000
