"""Hostile or odd input the responder must answer with 4xx (or accept), never 500/503.

A 503 tells the provider to retry a request that can never succeed, so a message that
the database refuses (NUL in PostgreSQL text, lone surrogates from JSON escapes) or
a JSON document that breaks the parser is input error, answered 400, not an outage.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from responder_support import ADMIN_TOKEN, AUTH_TOKEN, base_env, twilio_form, twilio_headers
from test_responder_app import (
    HOOK,
    NOW,
    Clock,
    Provider,
    running,
    settings_for,
    statuses,
    until,
)

from responder.config import load_settings
from responder.logs import pseudonymise
from responder.policy.errors import ConfigError
from responder.policy.money import MAX_MICROS, MoneyError, to_micros
from responder.policy.retry import BACKOFF_CAP_S, backoff_s
from responder.service import Accepted, Responder
from responder.signing import generic_signature
from responder.store import Inbound, SqlStore, StoreError, open_store

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


async def test_nul_and_surrogates_are_input_errors(tmp_path: Path, store_url: str) -> None:
    """NUL in a number or id (PostgreSQL text refuses it) and lone surrogates (JSON
    ``\\ud800`` escapes) are 400; in a body they become U+FFFD and the message is kept.
    Both databases give the same answers."""
    settings = settings_for(tmp_path, RAIDSIM_DATABASE_URL=store_url)
    provider = Provider()
    async with running(settings, provider, Clock()) as client:
        form = twilio_form("SM1", "+33600000001", body="a\x00b")
        response = await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
        assert response.status_code == 200
        form = twilio_form("SM2", "+3360000\x000002")
        response = await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
        assert (response.status_code, response.text) == (400, "From holds a NUL or invalid "
                                                              "character")
        bodies = [
            b'{"id": "g1", "from": "+33600000003", "to": "+33644649021", "body": "x\\ud800y"}',
            b'{"id": "g2", "from": "+3360000\\ud8000004", "to": "+33644649021", "body": "x"}',
            b'{"id": "g\\u0000", "from": "+33600000005", "to": "+33644649021", "body": "x"}',
            b'{"id": "g4", "from": "+33600000006", "to": "+33644649021", "body": "a\\u0000"}',
        ]
        answers = []
        for body in bodies:
            response = await client.post(GENERIC, content=body, headers=signed_json(body))
            answers.append(response.status_code)
        callback = {"MessageSid": "SMout1", "MessageStatus": "failed", "ErrorCode": "3\x00"}
        status_url = "http://testserver/webhooks/twilio/status"
        response = await client.post(status_url, data=callback,
                                     headers=twilio_headers(status_url, callback))
        assert response.status_code == 400
        assert await until(lambda: len(provider.requests) == 3)
    assert answers == [200, 400, 400, 200]
    rows = stored(settings.database_url)
    assert rows == {
        "SM1": ("+33600000001", "a\ufffdb", "reply"),
        "generic:g1": ("+33600000003", "x\ufffdy", "reply"),
        "generic:g4": ("+33600000006", "a\ufffd", "reply"),
    }


async def test_deeply_nested_json_is_400(tmp_path: Path) -> None:
    """JSON nested past the parser's recursion limit is malformed input, not an outage."""
    nested = b"[" * 20_000
    async with running(settings_for(tmp_path), Provider(), Clock()) as client:
        generic = await client.post(GENERIC, content=nested, headers=signed_json(nested))
        budget = await client.put("/admin/budget", content=nested, headers=admin())
        kill = await client.put("/admin/kill-switch", content=b'{"on":' * 5000, headers=admin())
    assert [(r.status_code, r.text) for r in (generic, budget, kill)] == [
        (400, "malformed JSON")] * 3


async def test_removing_a_pattern_with_a_nul_is_400_on_both_databases(
        tmp_path: Path, store_url: str) -> None:
    """DELETE /admin/numbers/block/a%00b: PostgreSQL refused the NUL and the operator got
    503 "temporarily unavailable" for a typo; both databases answer 400."""
    settings = settings_for(tmp_path, RAIDSIM_DATABASE_URL=store_url)
    async with running(settings, Provider(), Clock()) as client:
        added = await client.post("/admin/numbers/block", json={"pattern": "+336"},
                                  headers=admin())
        bad = await client.delete("/admin/numbers/block/%2B336%00", headers=admin())
        numbers = (await client.get("/admin/numbers", headers=admin())).json()
    assert added.status_code == 201
    assert (bad.status_code, bad.text) == (400, "pattern holds a NUL or invalid character")
    assert numbers == {"block": ["+336"], "allow": []}


async def test_an_evidence_filter_that_names_no_rule_is_400_on_both_databases(
        tmp_path: Path, store_url: str) -> None:
    """GET /admin/evidence?rules=, made an empty SQL IN (): PostgreSQL refused it (503),
    SQLite exported nothing, which looks like "no evidence"; both answer 400."""
    settings = settings_for(tmp_path, RAIDSIM_DATABASE_URL=store_url)
    async with running(settings, Provider(), Clock()) as client:
        empty = await client.get("/admin/evidence?rules=,", headers=admin())
        default = await client.get("/admin/evidence?rules=", headers=admin())
    assert empty.status_code == 400 and empty.text.startswith("rules names no rule")
    assert default.status_code == 200 and default.json()["messages"] == []


async def test_an_error_quoting_a_lone_surrogate_is_400_not_500(tmp_path: Path) -> None:
    """An unknown admin field named "\\ud800" (a JSON escape, not UTF-8) is quoted in the
    400's reason; encoding that reason raised UnicodeEncodeError, a 500."""
    async with running(settings_for(tmp_path), Provider(), Clock()) as client:
        response = await client.put("/admin/budget", content=b'{"\\ud800x": 1}',
                                    headers=admin())
        budget = (await client.get("/admin/budget", headers=admin())).json()
    assert response.status_code == 400
    assert response.text.startswith("unknown field(s) \\ud800x: give total_eur")
    assert budget["total_eur"] is None


async def test_ambiguous_or_mistyped_generic_webhooks_are_400_or_415(tmp_path: Path) -> None:
    """A generic webhook was accepted with an id given twice (the last one won: the
    trace reader refuses the same), NaN, a text/plain body; ``"id": 7`` answered "missing
    id". Each is now a clear 400 or 415, nothing is stored, and a well-formed one still
    passes, with or without its Content-Type."""
    settings = settings_for(tmp_path)
    good = b'{"id": "g1", "from": "+33600000001", "to": "+33644649021", "body": "Salut"}'
    cases = [
        (b'{"id": "g2", "id": "g3", "from": "+33600000002", "to": "+33644649021"}',
         "application/json", 400, "malformed JSON: the key 'id' is given twice"),
        (b'{"id": "g4", "from": "+33600000003", "to": "+33644649021", "n": NaN}',
         "application/json", 400, "malformed JSON: NaN is not a JSON number"),
        (b'{"id": 7, "from": "+33600000004", "to": "+33644649021"}',
         "application/json", 400, "id must be a string, not a JSON number"),
        (b'{"id": "g5", "from": null, "to": "+33644649021"}',
         "application/json", 400, "from must be a string, not a JSON null"),
        (b'{"id": "g6", "from": "+33600000005", "to": "+33644649021", "body": ["x"]}',
         "application/json", 400, "body must be a string, not a JSON array"),
        (good.replace(b"g1", b"g7"), "text/plain", 415, "expected application/json"),
    ]
    async with running(settings, Provider(), Clock()) as client:
        answers = []
        for body, kind, _, _ in cases:
            headers = dict(signed_json(body), **{"Content-Type": kind})
            response = await client.post(GENERIC, content=body, headers=headers)
            answers.append((response.status_code, response.text))
        headers = {"X-Raidsim-Signature": generic_signature(SECRET, good)}  # no type: JSON
        plain = await client.post(GENERIC, content=good, headers=headers)
        typed = good.replace(b"g1", b"g8").replace(b"01", b"08")
        charset = await client.post(GENERIC, content=typed, headers=dict(
            signed_json(typed), **{"Content-Type": "application/json; charset=utf-8"}))
    assert answers == [(status, text) for _, _, status, text in cases]
    assert plain.status_code == 200 == charset.status_code
    assert set(stored(settings.database_url)) == {"generic:g1", "generic:g8"}


async def test_rejection_metrics_never_quote_the_request(tmp_path: Path) -> None:
    """A generic webhook giving a key twice was counted under a reason quoting that key:
    a phone number (or any text) a provider sent as a key became a label of
    raidsim_webhook_rejected_total in /metrics, one new series per key. The answer may
    name the key (it is the caller's own input); the metric's reason is fixed."""
    body = b'{"id": "g1", "+33612345678": "a", "+33612345678": "b", "from": "+33600000001"}'
    async with running(settings_for(tmp_path), Provider(), Clock()) as client:
        response = await client.post(GENERIC, content=body, headers=signed_json(body))
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 400
    assert "12345678" not in metrics
    assert ('raidsim_webhook_rejected_total{reason="malformed JSON: a key is given twice"} 1.0'
            in metrics)


async def test_admin_budget_too_large_is_400(tmp_path: Path, store_url: str) -> None:
    """An amount no 64-bit column holds is refused with 400 and the caps stay as they were."""
    settings = settings_for(tmp_path, RAIDSIM_DATABASE_URL=store_url, RAIDSIM_BUDGET_EUR="5")
    async with running(settings, Provider(), Clock()) as client:
        answers = []
        for amount in ("1e20", "9223372036855", "1e999999999"):
            response = await client.put("/admin/budget", json={"total_eur": amount},
                                        headers=admin())
            answers.append((response.status_code, "too large" in response.text
                            or "write plain digits" in response.text))  # 1e20: exponent
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
        settings_for(tmp_path, RAIDSIM_BUDGET_EUR="100000000000000000000")
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
        to_micros(Decimal("1e-999999999"))
    with pytest.raises(MoneyError, match="too large"):
        to_micros(Decimal("1e999999999"))
    assert to_micros("9223372036854.775807") == MAX_MICROS
    assert to_micros("1." + "0" * 40) == 1_000_000
    assert to_micros(Decimal("0E+999999999")) == 0
    assert to_micros("-0.16") == -160_000
    assert to_micros(Decimal("1e2")) == 100_000_000
    assert to_micros(7) == 7_000_000
    # A typed amount is plain ASCII digits: Decimal would also read an exponent, digit
    # separators and other scripts' digits ("1e3" as a budget of EUR 1,000)
    for typed in ("1e2", "1E+3", "1_000", "\u0661\u0662", "0x10", "nan"):
        with pytest.raises(MoneyError, match="write plain digits"):
            to_micros(typed)


async def test_block_pattern_with_trailing_newline_is_refused(tmp_path: Path) -> None:
    """``re.match(r"...$")`` accepts a trailing newline: "+336\\n" was stored as a block rule
    that matches no sender, while the operator believed +336 blocked."""
    async with running(settings_for(tmp_path), Provider(), Clock()) as client:
        response = await client.post("/admin/numbers/block", content=json.dumps(
            {"pattern": "+336\n"}).encode(), headers=admin())
        numbers = (await client.get("/admin/numbers", headers=admin())).json()
    assert response.status_code == 400
    assert numbers == {"block": [], "allow": []}


async def test_provider_error_text_is_pseudonymised_in_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Twilio's error messages name the number ("The 'To' number +33... is not a valid
    phone number.", 21211); the reply_failed log line carried it raw."""
    caplog.set_level("INFO", logger="raidsim.responder")
    number = "+33600000042"
    refusal = {"code": 21211, "message": f"The 'To' number {number} is not a valid phone number.",
               "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
    provider = Provider([lambda request: httpx.Response(400, json=refusal)])
    settings = settings_for(tmp_path)
    async with running(settings, provider, Clock()) as client:
        form = twilio_form("SM1", number)
        assert (await client.post(HOOK, data=form,
                                  headers=twilio_headers(HOOK, form))).status_code == 200
        assert await until(lambda: any(r.getMessage() == "reply_failed"
                                       for r in caplog.records))
    failed = [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "reply_failed"]
    pseudonym = pseudonymise(settings.pseudonym_secret, number)
    assert failed[0]["error"] == (f"HTTP 400 code 21211: The 'To' number {pseudonym} is not a "
                                  "valid phone number.")
    logged = " ".join(json.dumps(getattr(r, "fields", {})) for r in caplog.records)
    assert number not in logged and number[1:] not in logged


async def test_a_number_used_as_a_generic_webhook_id_is_pseudonymised_in_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A generic webhook's ``id`` is whatever the integration sends; one that is the
    sender's number was logged raw as ``message_sid`` ("generic:+336..."), while ``sender``
    was pseudonymised. Ids holding no number standing alone are logged as they are."""
    caplog.set_level("INFO", logger="raidsim.responder")
    settings = settings_for(tmp_path)
    secret = settings.webhook_secret or ""
    provider = Provider()
    number, plain = "+33612349999", "0A00000012345678F"
    async with running(settings, provider, Clock()) as client:
        for message_id, sender in ((number, number), (plain, "+33612340000")):
            body = json.dumps({"id": message_id, "from": sender, "to": "+33644649021",
                               "body": "Bonjour"}).encode()
            for _ in range(2):  # the second is a duplicate
                response = await client.post("/webhooks/generic/sms", content=body, headers={
                    "X-Raidsim-Signature": generic_signature(secret, body)})
                assert response.status_code == 200
        assert await until(lambda: sum(r.getMessage() == "reply_sent"
                                       for r in caplog.records) == 2)
    logged = " ".join(json.dumps(getattr(r, "fields", {})) for r in caplog.records)
    assert number not in logged and number[1:] not in logged
    pseudonym = pseudonymise(settings.pseudonym_secret, number)
    sids = {getattr(r, "fields", {})["message_sid"] for r in caplog.records
            if r.getMessage() in ("inbound", "inbound_duplicate", "reply_sent")}
    assert sids == {f"generic:{pseudonym}", f"generic:{plain}"}


def test_serve_on_a_busy_port_exits_2(tmp_path: Path) -> None:
    """A port already in use is a usage error (exit 2, one clear line), found before the
    app starts; uvicorn alone started the app, then exited 3 among its log lines."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'busy.db'}")
        done = subprocess.run([sys.executable, "-m", "raidsim", "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"raidsim serve: error: cannot listen on 127.0.0.1:{port}: "
                                   "Address already in use")


def test_serve_names_the_one_flag_out_of_range(tmp_path: Path) -> None:
    """`--port 70000` and `--workers 0` both said "--workers must be >= 1 and --port in
    1..65535"; each now names its own flag and value."""
    env = base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'f.db'}")
    for flags, problem in ((["--port", "70000"], "--port 70000: must be in 1..65535"),
                           (["--port=-1"], "--port -1: must be in 1..65535"),
                           (["--workers", "0"], "--workers 0: must be 1 or more")):
        done = subprocess.run([sys.executable, "-m", "raidsim", "serve", *flags], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (2, f"raidsim serve: error: {problem}\n")


def test_serve_refuses_a_graceful_timeout_it_cannot_use(tmp_path: Path) -> None:
    """`--graceful-timeout -5` started the service (uvicorn would then cut every request
    off at shutdown); it reads durations as the other flags do (30, 30s, 2m)."""
    env = base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}")
    for value, why in (("-5", "a duration cannot be negative"),
                       ("soon", "cannot read duration 'soon'")):
        done = subprocess.run([sys.executable, "-m", "raidsim", "serve",
                               f"--graceful-timeout={value}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert done.stderr.startswith(f"raidsim serve: error: --graceful-timeout '{value}': ")
        assert why in done.stderr


def test_serve_warns_about_several_workers_on_one_sqlite_file(tmp_path: Path) -> None:
    """SQLite runs on the event loop: several workers would stall each other's loops."""
    with socket.socket() as busy:  # a busy port: serve stops right after its checks
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}")
        done = subprocess.run([sys.executable, "-m", "raidsim", "serve", "--port", str(port),
                               "--workers", "2"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2
    assert "warning: 2 workers on one SQLite file" in done.stderr
    assert "use PostgreSQL" in done.stderr


def test_serve_supervises_workers_with_a_supervisor_that_takes_a_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn 0.30 to 0.3x (pyproject allows them) builds its supervisor with each
    worker's entry point, ``Multiprocess(config, target, sockets)``: ``serve --workers N``
    called it without one and died with a TypeError (exit 3) before any worker started."""
    import uvicorn.supervisors

    from raidsim.commands import serve

    seen: dict[str, Any] = {}

    class OldMultiprocess:  # the 0.30-0.34 signature, and its SIGTERM handler
        def __init__(self, config: Any, target: Any, sockets: list[Any]) -> None:
            seen.update(config=config, target=target, sockets=sockets)

        def handle_term(self) -> None:
            seen["handled"] = True

        def run(self) -> None:
            self.handle_term()  # as if a SIGTERM came

    class Config:
        def bind_socket(self) -> str:
            return "socket"

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", OldMultiprocess)
    config = Config()
    assert serve._supervise(config).terminated  # type: ignore[arg-type]
    assert seen["handled"] and seen["sockets"] == ["socket"]
    # a uvicorn.Server's run, which exits 3 when the app does not start
    assert seen["target"].__self__.config is config



def test_a_worker_that_cannot_load_its_settings_says_why_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``serve --workers N`` checks the settings before the workers start, but each worker
    reads them again (a RAIDSIM_CONFIG file edited in between, a restarted worker): the
    worker writes why it stopped where the supervisor reads it for its last line."""
    from responder import asgi

    report = tmp_path / "start-error"
    for name, value in base_env(RAIDSIM_BUDGET_EUR="lots").items():
        if name.startswith("RAIDSIM_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv(asgi.START_ERROR_FILE_ENV, str(report))
    monkeypatch.setattr(asgi, "start_errors", [])
    with pytest.raises(ConfigError):
        asgi.app_from_env()
    [line] = report.read_text().splitlines()
    assert line.startswith("ConfigError: ") and "RAIDSIM_BUDGET_EUR" in line
    assert asgi.start_errors == [line]

# -- a failed webhook transaction must not leave the policy's memory ahead of the store --


def failing(monkeypatch: pytest.MonkeyPatch, sid: str, times: int = 1) -> None:
    """The first ``times`` ``enqueue_reply`` for ``sid`` raise (a database hiccup)."""
    original = SqlStore.enqueue_reply
    failed: list[str] = []

    def enqueue_reply(self: SqlStore, message_sid: str, *args: Any, **kwargs: Any) -> bool:
        if message_sid == sid and len(failed) < times:
            failed.append(sid)
            raise RuntimeError("database hiccup")
        return original(self, message_sid, *args, **kwargs)

    monkeypatch.setattr(SqlStore, "enqueue_reply", enqueue_reply)


async def test_retried_webhook_after_failed_commit_gets_its_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first delivery fails after the policy reserved its reply (503, rolled back);
    Twilio's retry used to be dropped as 'duplicate_id' from the policy's memory of the
    rolled-back reservation, so the sender never got an answer."""
    failing(monkeypatch, "SM1")
    settings = settings_for(tmp_path)
    provider = Provider()
    clock = Clock()
    async with running(settings, provider, clock) as client:
        form = twilio_form("SM1", "+33600000001")
        first = await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
        clock.now += 5
        retry = await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
        assert await until(lambda: len(provider.requests) == 1)
    assert (first.status_code, retry.status_code) == (503, 200)
    store = open_store(settings.database_url)
    try:
        assert store.decision_of("SM1") == ("reply", "first_contact")
    finally:
        store.close()


def test_failed_batch_does_not_poison_its_other_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: one message failing rolls the batch back and each message is tried
    alone. The others used to be decided a second time by a policy that remembered their
    rolled-back reservations: dropped as 'duplicate_id', never answered."""
    settings = settings_for(tmp_path)
    store = open_store(settings.database_url)
    core = Responder(settings, store)
    try:
        core.start(now=NOW)
        failing(monkeypatch, "SM2", times=2)  # in the batch, then alone
        batch = [Inbound(f"SM{k}", f"+3360000000{k}", "+33644649021", "Salut", NOW + k)
                 for k in (1, 2, 3)]
        results = core.accept_many(batch)
        assert isinstance(results[1], RuntimeError)
        again = core.accept_many([batch[1]])
        decisions = [store.decision_of(f"SM{k}") for k in (1, 2, 3)]
        assert [row["message_sid"] for row in store.outbox_rows()] == ["SM1", "SM3", "SM2"]
    finally:
        store.close()
    assert decisions == [("reply", "first_contact")] * 3
    assert isinstance(again[0], Accepted) and not again[0].duplicate


def test_a_failing_database_gets_503s_not_a_rebuild_per_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk failed every write: each failing webhook rebuilt the policy's whole
    memory (a second for 40,000 stored messages), and a failed batch was retried message
    by message, so a batch of 8 held the worker's thread for 9.5 s. Now a failure of the
    database itself fails the batch at once, and the memory is rebuilt at most once per
    wait (0.5 s, doubling up to a minute while it keeps failing), with 503s in between."""
    import sqlite3

    from responder import service

    settings = settings_for(tmp_path)
    store = open_store(settings.database_url)
    core = Responder(settings, store)
    clock = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    rebuilds: list[float] = []
    rebuild = core._rebuild

    def counted(*, now: float) -> None:
        rebuilds.append(clock[0])
        rebuild(now=now)

    monkeypatch.setattr(core, "_rebuild", counted)
    full = {"on": True}
    insert = SqlStore.insert_inbound

    def insert_inbound(self: SqlStore, inbound: Inbound) -> bool:
        if full["on"]:
            raise sqlite3.OperationalError("database or disk is full")
        return insert(self, inbound)

    monkeypatch.setattr(SqlStore, "insert_inbound", insert_inbound)

    def batch(first: int) -> list[Inbound]:
        return [Inbound(f"SM{k}", f"+336000000{k:02d}", "+33644649021", "Salut", NOW + k)
                for k in range(first, first + 8)]

    try:
        core.start(now=NOW)
        rebuilds.clear()
        results = core.accept_many(batch(0))  # no message-by-message retry
        assert [type(r) for r in results] == [sqlite3.OperationalError] * 8
        assert rebuilds == []
        with pytest.raises(StoreError, match=r"next try in 0\.5 s"):
            core.accept_many(batch(10))  # 503 at once, no rebuild
        clock[0] += 0.6
        assert [type(r) for r in core.accept_many(batch(20))] == [sqlite3.OperationalError] * 8
        assert rebuilds == [1000.6]  # one rebuild, then the wait doubles
        clock[0] += 0.6
        with pytest.raises(StoreError, match=r"next try in 0\.4 s"):
            core.accept_many(batch(30))
        full["on"] = False  # space freed
        clock[0] += 0.5
        accepted = core.accept_many(batch(40))
        assert all(isinstance(a, Accepted) and a.decision is not None for a in accepted)
        assert rebuilds == [1000.6, 1001.7] and not core.stale
        assert core._rebuild_wait == service.REBUILD_WAIT_S  # started over
    finally:
        store.close()


async def test_outbox_sender_outlives_a_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One failed claim (a PostgreSQL connection dropped) ended the sender task for good:
    webhooks were still accepted and replies reserved, but none left until a restart."""
    original = SqlStore.claim_outbox
    failures: list[int] = []

    def claim_outbox(self: SqlStore, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise RuntimeError("connection lost")
        return original(self, **kwargs)

    monkeypatch.setattr(SqlStore, "claim_outbox", claim_outbox)
    settings = settings_for(tmp_path)
    provider = Provider()
    async with running(settings, provider, Clock()) as client:
        form = twilio_form("SM1", "+33600000001")
        assert (await client.post(HOOK, data=form,
                                  headers=twilio_headers(HOOK, form))).status_code == 200
        assert await until(lambda: len(provider.requests) == 1)
    assert failures == [1]
    assert any(r.getMessage() == "outbox_error" for r in caplog.records)


async def test_unexpected_send_error_is_unknown_not_fatal(tmp_path: Path) -> None:
    """An exception out of the provider call (not an HTTP outcome) makes that reply
    'unknown' (it may have left) and the sender goes on with the next one."""

    def explode(request: httpx.Request) -> httpx.Response:
        raise ValueError("odd answer")

    provider = Provider([explode])
    settings = settings_for(tmp_path)
    async with running(settings, provider, Clock()) as client:
        for count, (sid, number) in enumerate((("SM1", "+33600000001"),
                                               ("SM2", "+33600000002")), start=1):
            form = twilio_form(sid, number)
            await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
            assert await until(lambda n=count: len(provider.requests) == n)
        assert await until(lambda: sorted(statuses(settings)) == ["sent", "unknown"])


def test_backoff_never_overflows() -> None:
    """With RAIDSIM_SEND_MAX_ATTEMPTS above 1024, the 1025th retry's 2.0 ** 1024 raised
    OverflowError in the outcome transaction; the delay is capped like any other."""
    rng = random.Random(7)
    delays = [backoff_s(attempt, rng) for attempt in (1, 2, 10, 1025, 10**9)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0
    assert all(BACKOFF_CAP_S / 2 <= d <= BACKOFF_CAP_S for d in delays[2:])


@pytest.mark.parametrize("number", ["+\u0663\u0663\u0666\u0661\u0662\u0663\u0664\u0665\u0666",
                                    "+\uff13\uff13\uff16\uff11\uff12\uff13\uff14\uff15\uff16",
                                    "\uff0b33612345678"])
async def test_a_number_in_other_digits_gets_no_reply_and_never_reaches_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, number: str
) -> None:
    """Arabic-Indic or full-width digits pass str.isdigit(): the policy took such a sender
    for a phone number and paid for a reply, and the provider's 21211 error, which names
    the number, reached the logs raw (the redaction matched ASCII digits only)."""
    from responder.logs import redact_numbers

    caplog.set_level("INFO", logger="raidsim.responder")
    provider = Provider()
    settings = settings_for(tmp_path)
    async with running(settings, provider, Clock()) as client:
        form = twilio_form("SM1", number)
        response = await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
    assert response.status_code == 200
    await asyncio.sleep(0.2)  # an outbox send would have started by now
    assert provider.requests == []  # no reply paid for
    logged = " ".join(json.dumps(getattr(r, "fields", {}), ensure_ascii=False)
                      for r in caplog.records)
    assert number not in logged and number[1:] not in logged
    error = f"The 'To' number {number} is not a valid phone number."
    assert number[1:] not in (redact_numbers(b"k", error) or "")


@pytest.mark.parametrize("number", ["+33 6 12 34 56 78", "+33 (0)6.12.34.56.78",
                                    "06-12-34-56-78"])
async def test_a_number_written_with_separators_never_reaches_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, number: str
) -> None:
    """With ``senders.reply_to_alphanumeric`` on, a sender written "+33 6 12 34 56 78" is
    answered, and the provider's 21211 error names it as written: the redaction matched
    runs of 7+ digits only, so the number reached the logs raw. A run of digits broken by
    spaces, dots, dashes or brackets is a number too, and it gets the pseudonym the
    ``to`` field of the same line has."""

    def invalid(request: httpx.Request) -> httpx.Response:
        to = dict(httpx.QueryParams(request.content.decode()))["To"]
        return httpx.Response(400, json={
            "code": 21211, "message": f"The 'To' number {to} is not a valid phone number."})

    caplog.set_level("INFO", logger="raidsim.responder")
    policy = tmp_path / "alphanumeric.toml"
    policy.write_text("[surge]\nenabled = false\n[senders]\nreply_to_alphanumeric = true\n")
    provider = Provider([invalid])
    settings = settings_for(tmp_path, RAIDSIM_POLICY_FILE=str(policy))
    async with running(settings, provider, Clock()) as client:
        form = twilio_form("SM1", number)
        await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
        assert await until(lambda: statuses(settings) == ["failed"])
    [failed] = [getattr(r, "fields", {}) for r in caplog.records
                if r.getMessage() == "reply_failed"]
    logged = " ".join(json.dumps(getattr(r, "fields", {}), ensure_ascii=False)
                      for r in caplog.records)
    assert number[-8:] not in logged  # not even its last digits
    assert failed["error"] == (f"HTTP 400 code 21211: The 'To' number {failed['to']} is not "
                               "a valid phone number.")


@pytest.mark.parametrize(("env", "match"), [
    ({"RAIDSIM_PUBLIC_URL": "http://[::1"}, r"RAIDSIM_PUBLIC_URL is not a valid URL"),
    ({"RAIDSIM_TWILIO_API_BASE": "http://127.0.0.1:99999"},
     r"RAIDSIM_TWILIO_API_BASE is not a valid URL"),
    ({"RAIDSIM_SEND_CONCURRENCY": "99999999999999999999"}, r"too large"),
    ({"RAIDSIM_SEND_CONCURRENCY": "5000"}, r"RAIDSIM_SEND_CONCURRENCY must be from 1"),
    ({"RAIDSIM_SEND_READ_TIMEOUT_S": "0"}, r"RAIDSIM_SEND_READ_TIMEOUT_S must be above 0"),
    ({"RAIDSIM_SEND_READ_TIMEOUT_S": "inf"}, r"finite"),
    ({"RAIDSIM_RETENTION_DAYS": "inf"}, r"finite"),
])
def test_settings_that_would_break_the_service_stop_it_at_start(
        tmp_path: Path, env: dict[str, str], match: str) -> None:
    """Each was accepted at start and then broke the service: a traceback (exit 3) for a
    malformed IPv6 URL, an outbox failing on every row for a concurrency past 64 bits,
    every reply billed but marked unknown for a read timeout of 0."""
    with pytest.raises(ConfigError, match=match):
        settings_for(tmp_path, **env)


def test_a_budget_cap_with_a_free_reply_is_refused(tmp_path: Path) -> None:
    """At eur_per_segment = 0 no reply counts against the cap: the provider billed 20
    replies against a 3-reply budget."""
    config = tmp_path / "raidsim.toml"
    config.write_text('budget_eur = "0.48"\n[policy]\neur_per_segment = "0"\n')
    with pytest.raises(ConfigError, match="eur_per_segment is 0"):
        load_settings(base_env(RAIDSIM_CONFIG=str(config)))
    config.write_text('[policy]\nreply_text = " "\n')
    with pytest.raises(ConfigError, match=r"raidsim\.toml:2: policy\.reply_text is empty"):
        load_settings(base_env(RAIDSIM_CONFIG=str(config)))


@pytest.mark.parametrize(("toml_value", "match"), [
    ('"' + "x" * 1601 + '"', r"reply_text is 1,601 characters long; the provider refuses a "
                             r"body over 1,600 \(Twilio error 21617\)"),
    ('"Bonjour\\u0000"', r"reply_text holds the control character U\+0000 at character 8"),
    ('"Bonjour\\u001b[31m"', r"reply_text holds the control character U\+001B"),
    ('"Bonjour\\u0085"', r"reply_text holds the control character U\+0085"),
])
def test_a_reply_text_the_provider_would_refuse_stops_the_service_at_start(
        tmp_path: Path, toml_value: str, match: str) -> None:
    """Over 1,600 characters every reply is refused (Twilio 21617); a NUL or an escape is a
    typo. Both were accepted from the config file's [policy] and from a policy file."""
    config = tmp_path / "raidsim.toml"
    config.write_text(f"[policy]\nreply_text = {toml_value}\n")
    with pytest.raises(ConfigError, match=r"raidsim\.toml:2: policy\." + match):
        load_settings(base_env(RAIDSIM_CONFIG=str(config)))
    policy = tmp_path / "policy.toml"
    policy.write_text(f"reply_text = {toml_value}\n")
    with pytest.raises(ConfigError, match=r"policy\.toml:1: " + match):
        load_settings(base_env(RAIDSIM_POLICY_FILE=str(policy)))


def test_a_reply_text_with_line_breaks_and_of_1600_characters_is_taken(tmp_path: Path) -> None:
    config = tmp_path / "raidsim.toml"
    text = "Bonjour.\r\nMerci.\n" + "x" * (1600 - 17)
    config.write_text('[policy]\nreply_text = ' + json.dumps(text) + "\n")
    assert load_settings(base_env(RAIDSIM_CONFIG=str(config))).policy.reply_text == text


async def test_bad_utf8_in_a_number_is_400_not_a_stored_replacement(tmp_path: Path) -> None:
    """``From=%ED%A0%80`` decodes to U+FFFD characters; a number never holds one, so the
    webhook is malformed (400), as docs/responder.md says, not stored as '���'."""
    from urllib.parse import parse_qsl

    raw = b"MessageSid=SM9&From=%2B3360%ED%A0%800001&To=%2B33644649021&Body=x"
    decoded = dict(parse_qsl(raw.decode("latin-1"), encoding="utf-8", errors="replace"))
    assert "\ufffd" in decoded["From"]
    url = "http://testserver/webhooks/twilio/sms"
    async with running(settings_for(tmp_path), Provider(), Clock()) as client:
        response = await client.post(HOOK, content=raw, headers=twilio_headers(url, decoded))
    assert (response.status_code, response.text) == (400, "From holds a NUL or invalid "
                                                          "character")


async def test_a_twilio_form_with_an_id_given_twice_or_blank_is_400(tmp_path: Path) -> None:
    """A signed form with ``MessageSid`` (or ``From``) given twice was taken with the last
    value, and ``MessageSid=%20%20`` was stored as a blank id; the JSON webhook already
    refused both. Each is now a 400, and nothing is stored."""
    from urllib.parse import urlencode

    from responder.signing import twilio_signature

    url = "http://testserver/webhooks/twilio/sms"
    base = [("From", "+33600000001"), ("To", "+33644649021"), ("Body", "Salut")]
    cases = [
        ([("MessageSid", "SM1"), ("MessageSid", "SM2"), *base], "MessageSid is given twice"),
        ([("MessageSid", "SM3"), ("From", "+33600000009"), *base], "From is given twice"),
        ([("MessageSid", "   "), *base], "MessageSid is blank"),
        ([("MessageSid", "SM4"), ("From", " "), *base[1:]], "From is blank"),
    ]
    settings = settings_for(tmp_path)
    async with running(settings, Provider(), Clock()) as client:
        answers = []
        for pairs, _ in cases:
            headers = {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, pairs),
                       "Content-Type": "application/x-www-form-urlencoded"}
            response = await client.post(HOOK, content=urlencode(pairs).encode(),
                                         headers=headers)
            answers.append((response.status_code, response.text))
        blank = json.dumps({"id": " ", "from": "+33600000002", "to": "+33644649021"}).encode()
        generic = await client.post(GENERIC, content=blank, headers=signed_json(blank))
    assert answers == [(400, why) for _, why in cases]
    assert (generic.status_code, generic.text) == (400, "id is blank")
    assert stored(settings.database_url) == {}


class _Trickle:
    """An ASGI request whose body never finishes (one empty chunk, then nothing), or
    whose client hangs up."""

    def __init__(self, hang_up: bool) -> None:
        self.hang_up = hang_up
        self.scope = {"type": "http", "headers": []}

    async def receive(self) -> dict[str, Any]:
        if self.hang_up:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)
        return {"type": "http.request", "body": b"", "more_body": False}


async def test_a_body_that_never_arrives_is_408_and_a_hang_up_is_not_an_outage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A client trickling its body held the connection as long as it liked; a client that
    hung up was logged as an error and counted as 'unavailable', the database-down signal."""
    from starlette.requests import ClientDisconnect

    from responder import app as app_module

    monkeypatch.setattr(app_module, "BODY_READ_TIMEOUT_S", 0.05)
    with pytest.raises(app_module.HTTPError) as slow:
        await app_module.read_body(_Trickle(hang_up=False), 1024, {})  # type: ignore[arg-type]
    assert (slow.value.status, slow.value.reason) == (408, "body too slow")
    with pytest.raises(ClientDisconnect):
        await app_module.read_body(_Trickle(hang_up=True), 1024, {})  # type: ignore[arg-type]


async def test_a_client_that_hangs_up_is_counted_as_such(tmp_path: Path) -> None:
    from responder.app import create_app

    app = create_app(settings_for(tmp_path), clock=Clock(),
                     transport=httpx.MockTransport(Provider()), rng=random.Random(1))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/webhooks/twilio/sms",
             "raw_path": b"/webhooks/twilio/sms", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-length", b"100"),
                         (b"content-type", b"application/x-www-form-urlencoded")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            metrics = (await client.get("/metrics")).text
    assert sent[0]["status"] == 400
    assert 'raidsim_webhook_rejected_total{reason="client disconnected"} 1.0' in metrics
    assert 'reason="unavailable"' not in metrics


async def test_admin_errors_stay_out_of_the_webhook_metrics_and_a_misspelt_cap_is_400(
        tmp_path: Path) -> None:
    """An admin error quoted the operator's input in a metric label (a raw number, and one
    series per bad value); a misspelt cap key was a 200 that changed nothing."""
    async with running(settings_for(tmp_path), Provider(), Clock()) as client:
        bad = await client.put("/admin/budget", json={"total_eur": "tel:+33612345678"},
                               headers=admin())
        typo = await client.put("/admin/budget", json={"totl_eur": "3"}, headers=admin())
        empty = await client.put("/admin/budget", json={}, headers=admin())
        caps = (await client.get("/admin/budget", headers=admin())).json()
        metrics = (await client.get("/metrics")).text
    assert bad.status_code == 400
    assert (typo.status_code, empty.status_code) == (400, 400)
    assert "unknown field(s) totl_eur" in typo.text
    assert caps["total_eur"] is None  # unchanged
    assert "33612345678" not in metrics and "tel:" not in metrics


async def test_each_process_leases_under_its_own_name(tmp_path: Path) -> None:
    """`--workers 2` (or one RAIDSIM_INSTANCE_ID for several processes) shared a lease
    owner: a worker stopping released its sibling's lease mid-call, and the reply went
    twice. Two apps on one database now claim under different names."""
    from responder.app import create_app

    settings = settings_for(tmp_path, RAIDSIM_INSTANCE_ID="B")
    names = []
    for _ in range(2):
        app = create_app(settings, clock=Clock(), transport=httpx.MockTransport(Provider()),
                         rng=random.Random(1))
        async with app.router.lifespan_context(app):
            names.append(app.state.ctx.sender.owner)
    assert names[0] != names[1] and all(name.startswith("B-") for name in names)


def test_a_misspelt_environment_setting_stops_the_service_naming_its_likely_name() -> None:
    """RAIDSIM_BUDGT_EUR=500 sets no cap: the service refuses to start (as for an unknown
    key in the file), naming the setting it probably meant; the load tool's and the
    tests' own variables are not settings and pass."""
    from responder.config import unknown_env

    env = base_env(RAIDSIM_BUDGT_EUR="500", RAIDSIM_LOAD_SPEED="2",
                   RAIDSIM_TEST_POSTGRES_URL="postgresql://x", RAIDSIM_WHATEVER="1",
                   RAIDSIM_CONFIG="")
    assert unknown_env(env) == [
        "RAIDSIM_BUDGT_EUR is not a raidsim setting; did you mean RAIDSIM_BUDGET_EUR?",
        "RAIDSIM_WHATEVER is not a raidsim setting; see docs/responder.md",
    ]
    with pytest.raises(ConfigError, match=r"RAIDSIM_BUDGT_EUR is not a raidsim setting; "
                                          r"did you mean RAIDSIM_BUDGET_EUR\?"):
        load_settings(env)
    load_settings(base_env(RAIDSIM_LOAD_SPEED="2", RAIDSIM_TEST_POSTGRES_URL="x"))


@pytest.mark.postgres
def test_two_instances_given_one_batch_in_opposite_orders_do_not_deadlock(
    tmp_path: Path, postgres_url: str,
) -> None:
    """Twilio retrying a webhook against another instance gives two instances the same
    messages in other orders. Each batch locked its inbound rows in arrival order, so
    each waited for the other's rows: PostgreSQL broke the deadlock by failing a batch
    (its messages retried one by one, the policy memory rebuilt). Rows are now locked in
    message-id order: no batch fails, and each message is decided once."""
    import threading
    from dataclasses import replace

    settings = replace(settings_for(tmp_path), database_url=postgres_url)
    cores = []
    for _ in range(2):
        store = open_store(postgres_url)
        store.migrate(now=NOW)
        core = Responder(settings, store)
        core.start(now=NOW)
        cores.append(core)
    retried: list[str] = []  # messages tried alone after their batch failed

    def alone(core: Responder) -> Any:
        accept = core.accept

        def counted(inbound: Inbound, **kwargs: Any) -> Any:
            retried.append(inbound.message_sid)
            return accept(inbound, **kwargs)
        return counted

    for core in cores:
        core.accept = alone(core)  # type: ignore[method-assign]
    failures: list[BaseException] = []
    try:
        for round_ in range(8):
            batch = [Inbound(f"SM{round_}x{k:02d}", f"+336{round_:02d}0000{k:02d}",
                             "+33644649021", "Salut", NOW + round_ * 60 + k / 100)
                     for k in range(20)]
            barrier = threading.Barrier(2)

            def feed(core: Responder, messages: list[Inbound],
                     barrier: threading.Barrier = barrier) -> None:
                try:
                    barrier.wait(timeout=10)
                    for result in core.accept_many(messages):
                        if isinstance(result, Exception):
                            failures.append(result)
                except BaseException as exc:  # reported below, not lost in the thread
                    failures.append(exc)

            threads = [threading.Thread(target=feed, args=(cores[0], batch)),
                       threading.Thread(target=feed, args=(cores[1], batch[::-1]))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert not failures, failures
            assert not retried, f"a batch failed (deadlock) and was retried: {retried}"
        decided = cores[0].store.decision_of
        assert all(decided(f"SM{r}x{k:02d}") is not None for r in range(8) for k in range(20))
    finally:
        for core in cores:
            core.store.close()


def test_an_instance_decides_on_the_controls_another_instance_just_changed(
    tmp_path: Path,
) -> None:
    """Drops for the kill switch or the total cap are final. An instance read the switch
    and caps only on its policy tick, so for up to a second after an operator changed them
    through another instance it dropped messages for good on the old values (a cap just
    raised, a kill switch just turned off). Each batch now checks the controls' version."""
    from responder.policy import Caps

    settings = settings_for(tmp_path)
    a_store, b_store = open_store(settings.database_url), open_store(settings.database_url)
    a, b = Responder(settings, a_store), Responder(settings, b_store)
    try:
        a.start(now=NOW)
        b.start(now=NOW)
        a_store.set_kill_switch(True)  # the operator, through instance A
        first = b.accept(Inbound("SM1", "+33600000001", "+33644649021", "Salut", NOW + 1),
                         now=NOW + 1)
        a_store.set_kill_switch(False)
        second = b.accept(Inbound("SM2", "+33600000002", "+33644649021", "Salut", NOW + 2),
                          now=NOW + 2)
        a_store.set_caps(Caps(total_micros=0))
        third = b.accept(Inbound("SM3", "+33600000003", "+33644649021", "Salut", NOW + 3),
                         now=NOW + 3)
        a_store.set_caps(Caps(total_micros=10_000_000))
        fourth = b.accept_many([Inbound("SM4", "+33600000004", "+33644649021", "Salut",
                                        NOW + 4)])[0]
    finally:
        a_store.close()
        b_store.close()
    rules = [r.decision.rule for r in (first, second, third, fourth)
             if isinstance(r, Accepted) and r.decision is not None]
    assert rules == ["kill_switch", "first_contact", "budget_total", "first_contact"]


def test_a_held_message_another_instance_released_keeps_its_decision(
    tmp_path: Path, store_url: str,
) -> None:
    """Every instance that starts reloads every held message, so two may release one.
    The second one's ledger refused the reservation and it recorded ``drop duplicate_id``
    over the first one's ``reply released``: the reply went out, the row said dropped.
    The first to release a held message now settles it; the others forget it."""
    from dataclasses import replace

    from responder.policy import Caps, PolicyConfig

    settings = replace(settings_for(tmp_path), database_url=store_url)
    a_store, b_store = open_store(store_url), open_store(store_url)
    a, b = Responder(settings, a_store), Responder(settings, b_store)
    try:
        a.start(now=NOW)
        a_store.set_caps(Caps(per_hour_micros=PolicyConfig().reply_cost_micros))
        a.refresh(now=NOW, force=True)
        for k in (1, 2):
            a.accept(Inbound(f"SM{k}", f"+3360000000{k}", "+33644649021", "Salut", NOW + k),
                     now=NOW + k)
        assert a_store.decision_of("SM2") == ("defer", "budget_hour")
        b.start(now=NOW + 10)  # reloads SM2, held by A
        assert b.state.held_count == 1
        due = NOW + 3700
        released_a, queued_a = a.release_due(now=due)
        released_b, queued_b = b.release_due(now=due)
        assert [(r.message.message_id, r.decision.rule) for r in released_a] == [
            ("SM2", "released")]
        assert (released_b, queued_a, queued_b) == ([], 1, 0)
        assert b.state.held_count == 0 and b.next_deadline() is None
        assert a_store.decision_of("SM2") == ("reply", "released")
        assert len(a_store.outbox_rows()) == 2
    finally:
        a_store.close()
        b_store.close()


def test_a_cap_raised_through_another_instance_wakes_the_replies_held_here(
    tmp_path: Path, store_url: str,
) -> None:
    """Replies held for the hourly cap by instance B are due at B's next policy tick
    after an operator raises the cap through instance A, not an hour later."""
    from dataclasses import replace

    from responder.policy import Caps, PolicyConfig

    cost = PolicyConfig().reply_cost_micros
    settings = replace(settings_for(tmp_path), database_url=store_url)
    a_store, b_store = open_store(store_url), open_store(store_url)
    a, b = Responder(settings, a_store), Responder(settings, b_store)
    try:
        a.start(now=NOW)
        b.start(now=NOW)
        a_store.set_caps(Caps(per_hour_micros=cost))
        b.refresh(now=NOW, force=True)
        for k in (1, 2):
            b.accept(Inbound(f"SM{k}", f"+3360000000{k}", "+33644649021", "Salut", NOW + k),
                     now=NOW + k)
        deadline = b.next_deadline()
        assert deadline is not None and deadline > NOW + 3600  # room in an hour
        a_store.set_caps(Caps(per_hour_micros=2 * cost))  # the operator, through A
        b.refresh(now=NOW + 10)  # B's policy tick
        assert b.next_deadline() == NOW + 10
        released, queued = b.release_due(now=NOW + 10)
        assert [(r.message.message_id, r.decision.rule) for r in released] == [
            ("SM2", "released")]
        assert queued == 1
    finally:
        a_store.close()
        b_store.close()


def test_a_traceback_logged_as_a_message_becomes_the_exc_field() -> None:
    """uvicorn's lifespan logs a failed start-up's traceback as the message itself: the
    JSON line then carries it as ``exc``, as for ``exc_info``, and the exception's line
    as the event."""
    import json
    import logging

    from responder.logs import JsonFormatter, server_log_config

    text = ('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
            "sqlite3.OperationalError: no such table: number_rules\n")
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, text, None, None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["event"] == "sqlite3.OperationalError: no such table: number_rules"
    assert out["exc"] == text.rstrip("\n")
    assert out["logger"] == "uvicorn.error" and out["level"] == "error"
    config = server_log_config()
    assert set(config["loggers"]) == {"uvicorn", "uvicorn.error", "uvicorn.access"}


def test_redact_id_keeps_provider_ids_and_pseudonymises_numbers_standing_alone() -> None:
    """The fast path for ids of letters and digits (a Twilio sid) must not let a bare
    number, or one beside a non-ASCII letter, through."""
    from responder.logs import redact_id

    key = b"k" * 32
    sid = "SM0123456789abcdef0123456789abcdef"
    assert redact_id(key, sid) == sid
    assert redact_id(key, "0A00000012345678F") == "0A00000012345678F"
    for raw, number in (("33612349999", "33612349999"), ("é33612349999", "33612349999"),
                        ("generic:+33612349999", "+33612349999")):
        assert redact_id(key, raw) == raw.replace(number, pseudonymise(key, number))


@pytest.mark.parametrize("token", ["mot-de-passe-été-2026-long", "sixteen chars ok here",
                                   "tab\tinside-the-token-0123"])
def test_an_admin_token_no_header_can_carry_is_refused_at_start(token: str) -> None:
    """A non-ASCII token was accepted at start and then matched no Authorization header
    (Starlette reads headers as latin-1, httpx refuses to send it): the operator was locked
    out of the admin API. A space is trimmed or splits the header the same way."""
    from responder.config import load_settings
    from responder.policy.errors import ConfigError

    with pytest.raises(ConfigError, match="printable ASCII without spaces") as error:
        load_settings(base_env(RAIDSIM_ADMIN_TOKEN=token))
    assert error.value.hint and "secrets.token_urlsafe" in error.value.hint
    assert load_settings(base_env(RAIDSIM_ADMIN_TOKEN="A-b_c.d~e!0123456789")).admin_token


@pytest.mark.parametrize(("host", "token", "warned"), [
    ("0.0.0.0", None, True), ("0.0.0.0", "m" * 20, False), ("127.0.0.1", None, False),
])
def test_serve_warns_when_metrics_are_public(tmp_path: Path, host: str, token: str | None,
                                             warned: bool) -> None:
    """/metrics shows raid mode, the money left and which rule caught each text: read from
    the internet, it tells a raid when to send and which variant gets through."""
    with socket.socket() as busy:  # a busy port: serve stops right after its checks
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        extra = {"RAIDSIM_METRICS_TOKEN": token} if token else {}
        env = base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", **extra)
        done = subprocess.run([sys.executable, "-m", "raidsim", "serve", "--host", host,
                               "--port", str(port)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
    assert ("warning: /metrics is readable by anyone" in done.stderr) is warned, done.stderr
    if warned:
        assert "RAIDSIM_METRICS_TOKEN" in done.stderr


@pytest.mark.parametrize("name", ["RAIDSIM_ADMIN_TOKEN", "RAIDSIM_METRICS_TOKEN"])
def test_bearer_tokens_are_checked_alike(name: str) -> None:
    from responder.config import load_settings
    from responder.policy.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{name} must be at least 16 characters"):
        load_settings(base_env(**{name: "short"}))
    with pytest.raises(ConfigError, match=f"{name} must be printable ASCII"):
        load_settings(base_env(**{name: "é" * 20}))


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.1.10", False),
    ("sms.example.org", False),
])
def test_which_bind_addresses_are_loopback(host: str, loopback: bool) -> None:
    from responder.config import is_loopback_host

    assert is_loopback_host(host) is loopback
