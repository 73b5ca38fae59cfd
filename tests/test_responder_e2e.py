"""The responder end to end: `raidsim serve` processes, real HTTP, real databases."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import httpx
import pytest
from responder_support import (
    ACCOUNT_SID,
    ADMIN_TOKEN,
    AUTH_TOKEN,
    OUR_NUMBER,
    PLAIN_POLICY,
    base_env,
    children_of,
    fake_provider,
    fake_twilio,
    free_port,
    port_free,
    process_gone,
    serve,
    twilio_form,
    twilio_headers,
    wait_until,
)

from responder.policy import PolicyConfig
from responder.policy.money import from_micros
from responder.store import open_store

REPLY_COST = PolicyConfig().reply_cost_micros


def sqlite_count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_serve_starts_with_only_sid_and_token(tmp_path: Path) -> None:
    """With only the SID and token set, serve creates its SQLite database and is ready."""
    with serve(base_env(), tmp_path) as served:
        # replies would go to the real Twilio: /readyz says "remote", and no more
        assert httpx.get(served.url + "/readyz").json() == {"status": "ready",
                                                            "provider": "remote"}
        assert httpx.get(served.url + "/healthz").status_code == 200
        assert (tmp_path / "raidsim.db").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_ends_serve_as_sigterm_with_any_number_of_workers(
    tmp_path: Path, workers: str,
) -> None:
    """``serve --help`` promises 143 (128 + SIGTERM) after a graceful shutdown on
    SIGTERM. One worker did; with several, uvicorn's supervisor returned and serve
    exited 0, which a process supervisor reads as a clean exit it did not ask for."""
    import signal

    with serve(base_env(), tmp_path, args=("--workers", workers)) as served:
        served.process.send_signal(signal.SIGTERM)
        code = served.process.wait(timeout=30)
    assert code == -signal.SIGTERM, served.output()  # a shell shows 143


def test_a_websocket_upgrade_is_answered_and_sigterm_still_ends_serve_as_sigterm(
    tmp_path: Path,
) -> None:
    """The responder serves no websocket. With the websockets package installed, uvicorn
    held an "Upgrade: websocket" request's connection open, and a SIGTERM meanwhile
    crashed its shutdown (AssertionError in websockets): exit 3, an internal error."""
    import signal
    import socket

    with serve(base_env(), tmp_path) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                           b"Upgrade: websocket\r\nContent-Length: 3\r\n\r\na=b")
            client.settimeout(3)
            try:
                answer = client.recv(200)
            except TimeoutError:  # the connection was held, unanswered
                answer = b""
            served.process.send_signal(signal.SIGTERM)
            code = served.process.wait(timeout=30)
    assert code == -signal.SIGTERM, served.output()
    assert "AssertionError" not in served.output()
    assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_worker_that_cannot_start_fails_serve_with_exit_3(
    tmp_path: Path, workers: str,
) -> None:
    """A database that passes serve's own checks (migrated, right schema version) but that
    the app's start-up cannot read: a table is gone. Each worker's lifespan fails; with
    ``--workers N`` uvicorn's supervisor stopped, and serve exited 0, which systemd,
    Kubernetes or a CI script read as a clean shutdown: no restart, no alert."""
    import subprocess
    import sys

    db = tmp_path / "damaged.db"
    env = base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{db}")
    subprocess.run([sys.executable, "-m", "raidsim", "db", "upgrade"], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=60)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE number_rules")
    done = subprocess.run(
        [sys.executable, "-m", "raidsim", "serve", "--port", str(free_port()),
         "--workers", workers],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 3, done.stderr
    # The last line says what failed, in one line: no need to dig through the traceback.
    assert done.stderr.splitlines()[-1] == (
        "raidsim serve: error: the responder failed to start (exit 3): "
        "OperationalError: no such table: number_rules"), done.stderr
    # uvicorn's lines and the traceback above it are JSON (the traceback in "exc")
    import json

    logged = [json.loads(line) for line in done.stderr.splitlines()
              if not line.startswith("raidsim serve: ")]
    assert any("no such table" in record.get("exc", "") for record in logged), done.stderr


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of serve's supervisor left its workers running, re-parented to init:
    still answering and sending replies with the old settings, and holding the port, so
    a restart failed "Address already in use" (exit 2) and a process supervisor looped
    on it. Each worker now notices its parent is gone and shuts down gracefully."""
    import signal

    with serve(base_env(), tmp_path, args=("--workers", "2")) as served:
        parent = served.process.pid
        assert wait_until(lambda: len(children_of(parent, "spawn_main")) == 2), \
            served.output()
        workers = children_of(parent)  # multiprocessing's resource tracker too
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(timeout=10)
        port = int(served.url.rsplit(":", 1)[1])
        try:
            assert wait_until(lambda: all(process_gone(pid) for pid in workers), 15.0), \
                served.output()
            assert wait_until(lambda: port_free(port), 5.0)
        finally:
            for pid in workers:  # never leave them behind, whatever the outcome
                if not process_gone(pid):
                    os.kill(pid, signal.SIGKILL)
    assert '"event": "supervisor_gone"' in served.output()
    # the metrics directory the killed serve could not remove goes at the next start
    import glob
    import tempfile

    left = glob.glob(f"{tempfile.gettempdir()}/raidsim-serve-metrics-{parent}-*")
    assert len(left) == 1
    with serve(base_env(), tmp_path, args=("--workers", "2")):
        assert not any(os.path.exists(path) for path in left)


def _inbound_total(metrics: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("raidsim_inbound_messages_total{"))


def _folded(metrics: str) -> float:
    prefix = 'raidsim_folded_total{kind="message"} '
    return sum(float(line[len(prefix):]) for line in metrics.splitlines()
               if line.startswith(prefix))


def test_metrics_under_workers_are_fleet_totals(tmp_path: Path) -> None:
    """With ``--workers N`` each scrape showed the numbers of whichever worker answered
    it: counters went back and forth (10, 17, 10...). Every scrape now adds up every
    worker's, and the database-derived gauges agree whoever answers. The workers share
    one memory: each folds the messages the other decided."""
    count = 24
    with fake_twilio() as fake, serve(_budget_env(tmp_path, fake.url,
                                                  RAIDSIM_ADMIN_TOKEN=ADMIN_TOKEN),
                                      tmp_path, args=("--workers", "2")) as s:
        # Both workers up before the first webhook: one that starts after a message was
        # stored replays it into its memory at start ("replayed": 1) rather than folding
        # it, and the fold count below came out one short now and then.
        assert wait_until(lambda: s.output().count('"event": "started"') == 2, 30.0), \
            s.output()
        url = s.url + "/webhooks/twilio/sms"
        for k in range(count):  # a connection each: the workers take turns accepting
            form = twilio_form(f"SM{k:032d}", f"+3361{k:07d}")
            assert httpx.post(url, data=form, headers=twilio_headers(url, form)).is_success
        assert wait_until(lambda: fake.count() >= count, 30.0), s.output()
        # each worker folds the other's messages into its policy's memory (its clock
        # ticks every second): each message is folded once, by the worker that did not
        # decide it
        assert wait_until(lambda: _folded(httpx.get(s.url + "/metrics").text) == count,
                          15.0), s.output()
        scrapes = [httpx.get(s.url + "/metrics").text for _ in range(12)]
        budgets = [httpx.get(s.url + "/admin/budget", headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}"}).json() for _ in range(4)]
    assert [_inbound_total(text) for text in scrapes] == [count] * len(scrapes)
    for text in scrapes:
        assert "raidsim_webhook_latency_seconds_count " + f"{count}.0" in text, text
        assert "raidsim_held_replies 0.0" in text, text
        assert "raidsim_provider_circuit_open 0.0" in text, text
    assert all(budget["held"] == 0 for budget in budgets)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_log_line_is_json(tmp_path: Path, workers: str) -> None:
    """uvicorn's own lines (``INFO:     Started server process``, ``WARNING:  Invalid
    HTTP request received.``, tracebacks) came out as plain text among the responder's
    JSON lines. All are JSON now; only serve's own lines, which begin with ``raidsim
    serve:`` (the SQLite warning with --workers, a start failure's last line), are not."""
    import json
    import signal
    import socket

    with serve(base_env(), tmp_path, args=("--workers", workers)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GARBAGE \x01 nonsense\r\n\r\n")
            sock.recv(1024)
        assert wait_until(lambda: "Invalid HTTP request" in served.output(), 10.0), \
            served.output()
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=30)
    lines = served.output().splitlines()
    assert any("Started server process" in line for line in lines)
    for line in lines:
        if line.startswith("raidsim serve: "):
            continue
        record = json.loads(line)  # fails on a plain-text line
        assert {"ts", "level", "logger", "event"} <= record.keys(), line


def test_bad_config_stops_at_start(tmp_path: Path) -> None:
    """Missing or wrong configuration exits 2 with a message naming the setting."""
    import subprocess
    import sys

    env = base_env(RAIDSIM_TWILIO_ACCOUNT_SID="not-a-sid")
    done = subprocess.run([sys.executable, "-m", "raidsim", "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "RAIDSIM_TWILIO_ACCOUNT_SID" in done.stderr
    env = base_env(RAIDSIM_BUDGET_EUR="lots")
    done = subprocess.run([sys.executable, "-m", "raidsim", "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "RAIDSIM_BUDGET_EUR" in done.stderr


def test_signed_webhook_reply_reaches_provider(tmp_path: Path) -> None:
    """A webhook signed by the official twilio library gets the reply sent with Basic auth."""
    with fake_twilio() as fake, serve(base_env(RAIDSIM_TWILIO_API_BASE=fake.url), tmp_path) as s:
        url = s.url + "/webhooks/twilio/sms"
        form = twilio_form("SM" + "a" * 32, "+33612345678")
        response = httpx.post(url, data=form, headers=twilio_headers(url, form))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert "<Response></Response>" in response.text
        assert wait_until(lambda: fake.count() == 1)
        [sms] = fake.sent
        assert sms.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        assert sms.auth == (ACCOUNT_SID, AUTH_TOKEN)
        assert sms.form["To"] == "+33612345678"
        assert sms.form["From"] == OUR_NUMBER
        assert sms.form["Body"] == PolicyConfig().reply_text
        assert wait_until(
            lambda: "raidsim_replies_total{outcome=\"sent\"} 1.0"
            in httpx.get(s.url + "/metrics").text
        )
        logs = s.output()
    assert "+33612345678" not in logs  # numbers are pseudonymised in logs


def test_status_callback_settles_a_reply_whose_send_timed_out(tmp_path: Path) -> None:
    """The provider bills the reply but answers after our read timeout: the outbox cannot
    know it was sent (``unknown``, never resent). Its signed status callback, which names
    the reply in the URL we gave, settles it as ``sent`` with the provider's sid."""
    env = base_env()
    with fake_provider(tmp_path, env, "--timeout-rate", "1", "--timeout-delay", "4s") as api:
        port = free_port()
        db = tmp_path / "r.db"
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=api, RAIDSIM_SEND_READ_TIMEOUT_S="0.5",
                          RAIDSIM_PUBLIC_URL=f"http://127.0.0.1:{port}",
                          RAIDSIM_DATABASE_URL=f"sqlite:///{db}")
        with serve(served_env, tmp_path, port=port) as s:
            url = s.url + "/webhooks/twilio/sms"
            form = twilio_form("SM" + "c" * 32, "+33612345678")
            assert httpx.post(url, data=form, headers=twilio_headers(url, form)).is_success

            def settled() -> bool:
                with sqlite3.connect(db) as conn:
                    row = conn.execute("SELECT status FROM outbox").fetchone()
                return row is not None and row[0] not in ("pending", "sending")

            assert wait_until(settled, 20.0), s.output()
            bill = httpx.get(api + "/_fake/bill").json()
        with sqlite3.connect(db) as conn:
            status, sid, provider_status, error = conn.execute(
                "SELECT status, provider_sid, provider_status, error FROM outbox").fetchone()
    assert bill["count"] == 1 and bill["requests"] == {"timeouts": 1}
    assert bill["callbacks"] == {"delivered": 2}
    assert "Timeout" in (error or "")  # our call never saw the answer
    assert (status, provider_status) == ("sent", "delivered")
    assert sid is not None and sid.startswith("SM") and sid != "SM" + "c" * 32


def test_tampered_signature_is_refused_and_leaves_no_trace(tmp_path: Path) -> None:
    """A tampered or missing signature gets 403 and nothing is stored."""
    with fake_twilio() as fake, serve(base_env(RAIDSIM_TWILIO_API_BASE=fake.url), tmp_path) as s:
        url = s.url + "/webhooks/twilio/sms"
        form = twilio_form("SM" + "b" * 32, "+33612345678")
        headers = twilio_headers(url, form)
        tampered = dict(form, Body="something else")
        assert httpx.post(url, data=tampered, headers=headers).status_code == 403
        no_signature = {"Content-Type": headers["Content-Type"]}
        assert httpx.post(url, data=form, headers=no_signature).status_code == 403
        wrong_token = twilio_headers(url, form, token="not-the-token")
        assert httpx.post(url, data=form, headers=wrong_token).status_code == 403
        db = tmp_path / "raidsim.db"
        for table in ("inbound", "reservations", "outbox", "decisions"):
            assert sqlite_count(db, table) == 0
    assert fake.count() == 0


def test_ten_concurrent_deliveries_give_one_reply(tmp_path: Path) -> None:
    """Ten concurrent deliveries of one MessageSid give one decision and one reply."""
    with fake_twilio() as fake, serve(base_env(RAIDSIM_TWILIO_API_BASE=fake.url), tmp_path) as s:
        url = s.url + "/webhooks/twilio/sms"
        form = twilio_form("SM" + "c" * 32, "+33612345679")
        headers = twilio_headers(url, form)

        async def deliver() -> list[int]:
            async with httpx.AsyncClient() as client:
                responses = await asyncio.gather(
                    *(client.post(url, data=form, headers=dict(headers,
                      **{"I-Twilio-Idempotency-Token": f"tok-{k % 3}"})) for k in range(10))
                )
            return [r.status_code for r in responses]

        assert asyncio.run(deliver()) == [200] * 10
        assert wait_until(lambda: fake.count() >= 1)
        db = tmp_path / "raidsim.db"
        assert wait_until(lambda: _outbox_settled(db))
        assert fake.count() == 1
        assert sqlite_count(db, "inbound") == 1
        with sqlite3.connect(db) as conn:
            decided = conn.execute("SELECT COUNT(*) FROM inbound WHERE action IS NOT NULL")
            assert decided.fetchone()[0] == 1
        assert sqlite_count(db, "decisions") == 0  # no second decision


def _outbox_settled(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
        ).fetchone()
    return int(row[0]) == 0


async def _flood(urls: list[str], count: int) -> list[int]:
    """``count`` first-contact webhooks from distinct senders, all at once, spread over urls."""
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def one(k: int) -> int:
            url = urls[k % len(urls)] + "/webhooks/twilio/sms"
            form = twilio_form(f"SM{k:032d}", f"+3361{k:07d}")
            response = await client.post(url, data=form, headers=twilio_headers(url, form))
            return response.status_code

        return list(await asyncio.gather(*(one(k) for k in range(count))))


def _budget_env(tmp_path: Path, fake_url: str, **extra: str) -> dict[str, str]:
    policy = tmp_path / "plain.toml"
    policy.write_text(PLAIN_POLICY)
    return base_env(
        RAIDSIM_TWILIO_API_BASE=fake_url,
        RAIDSIM_POLICY_FILE=str(policy),
        RAIDSIM_BUDGET_EUR=str(from_micros(50 * REPLY_COST)),
        **extra,
    )


def test_budget_holds_under_200_parallel_webhooks_sqlite(tmp_path: Path) -> None:
    """200 parallel first contacts against a budget for 50 replies reserve exactly 50."""
    with fake_twilio() as fake, serve(_budget_env(tmp_path, fake.url), tmp_path) as s:
        assert _run(_flood([s.url], 200)) == [200] * 200
        db = tmp_path / "raidsim.db"
        assert wait_until(lambda: fake.count() >= 50 and _outbox_settled(db), timeout=60)
        store = open_store(f"sqlite:///{db}")
        try:
            assert store.reservation_count() == 50
            assert store.spent_micros() == 50 * REPLY_COST
            assert store.inbound_count() == 200
        finally:
            store.close()
    assert fake.count() == 50
    assert len({sms.form["To"] for sms in fake.sent}) == 50


@pytest.mark.postgres
def test_budget_holds_across_two_serve_processes_postgres(tmp_path: Path,
                                                          postgres_url: str) -> None:
    """The same cap holds with PostgreSQL shared by two `raidsim serve` processes."""
    env = _budget_env(tmp_path, "", RAIDSIM_DATABASE_URL=postgres_url)
    with fake_twilio() as fake:
        env["RAIDSIM_TWILIO_API_BASE"] = fake.url
        first_dir, second_dir = tmp_path / "a", tmp_path / "b"
        first_dir.mkdir()
        second_dir.mkdir()
        with serve(env, first_dir) as a, serve(env, second_dir) as b:
            assert _run(_flood([a.url, b.url], 200)) == [200] * 200
            store = open_store(postgres_url)
            try:
                assert wait_until(lambda: fake.count() >= 50
                                  and store.outbox_counts()["pending"] == 0
                                  and store.outbox_counts()["sending"] == 0, timeout=60)
                assert store.reservation_count() == 50
                assert store.spent_micros() == 50 * REPLY_COST
                assert store.inbound_count() == 200
            finally:
                store.close()
    assert fake.count() == 50


def _run(coro: object) -> list[int]:
    return asyncio.run(coro)  # type: ignore[arg-type]
