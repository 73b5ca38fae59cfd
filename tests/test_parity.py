"""Parity: the simulator and the live responder decide every message of a trace alike.

The design rule: "On the same trace, replayed with the same configuration, the simulator and
the live service must reach the same decision for every message." The trace is a window
of the reference raid (a raid wave, organic traffic and the Monday lunchtime news surge).
The live side is the real service: uvicorn on loopback, Twilio webhooks signed by the
official library, SQLite in ``tmp_path``; its clock is injected and set to each message's
``t`` before its webhook, and held replies are released at the very deadlines the
simulator releases them (``responder.app.advance_policy_clock``).
"""

from __future__ import annotations

import asyncio
import random
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import uvicorn
from responder_support import ACCOUNT_SID, base_env, twilio_headers

from responder.app import advance_policy_clock, create_app
from responder.config import load_settings
from responder.policy import PolicyConfig
from sim.model import RaidModel
from sim.provider import ProviderModel
from sim.scenario import load_scenario
from sim.trace import TraceRecord, read_trace, write_trace
from sim.traffic import iter_generate

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "anti-relous-2017.toml"
DAY = 86400.0
# Monday 30 October 2017, 12:30 to 13:50: the raid's 12:40 wave, the 13:05 news surge.
WINDOW = (6 * DAY + 12.5 * 3600, 6 * DAY + 13 * 3600 + 50 * 60)
# A provider that accepts every reply: refunds would feed back into budget pacing, and
# the two drivers' providers are different models by design.
RELIABLE = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=0.0, reject_rate=0.0)


def window_trace(path: Path) -> list[TraceRecord]:
    """Write the window as a JSONL trace file and read it back, as both drivers would."""
    def window() -> Iterator[TraceRecord]:
        for record in iter_generate(load_scenario(SCENARIO)):  # sorted by t
            if record.t >= WINDOW[1]:
                return
            if record.t >= WINDOW[0]:
                yield record

    write_trace(window(), path)
    return list(read_trace(path))


def simulated(records: list[TraceRecord], policy: PolicyConfig | None = None
              ) -> tuple[dict[str, tuple[str, str]], Counter[tuple[str, str, str]]]:
    """Final decision per message id, and every decision after the first."""
    policy = policy or load_scenario(SCENARIO).policy
    outcome = RaidModel(policy, provider=RELIABLE, record_decisions=True).run(records)
    assert outcome.decisions is not None
    final: dict[str, tuple[str, str]] = {}
    later: Counter[tuple[str, str, str]] = Counter()
    for message_id, action, rule in outcome.decisions:
        if message_id in final:
            later[(message_id, action, rule)] += 1
        final[message_id] = (action, rule)
    return final, later


class Clock:
    """The live service's injected clock: the driver sets it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def accept_all(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"sid": "SM" + "0" * 32, "status": "queued",
                                     "num_segments": "1", "price": None})


async def served_live(records: list[TraceRecord], tmp_path: Path,
                      policy: PolicyConfig | None = None) -> Path:
    """Replay ``records`` through the live responder (the reference scenario's policy
    unless ``policy``); returns its SQLite file."""
    database = tmp_path / "parity.db"
    settings = load_settings(base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{database}",
                                      RAIDSIM_LOG_LEVEL="WARNING"))
    settings = replace(settings, policy=policy or load_scenario(SCENARIO).policy)
    clock = Clock(records[0].t)
    app = create_app(settings, clock=clock, transport=httpx.MockTransport(accept_all),
                     rng=random.Random(7))
    sock = socket.socket()
    # Accepted connections inherit it: without it every webhook waits ~40 ms for a delayed
    # ACK (asyncio servers started on a given socket do not set it themselves).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning",
                                           access_log=False, ws="none"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 20.0
        while not server.started:
            assert not serving.done(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start in 20 s"
            await asyncio.sleep(0.01)
        ctx = app.state.ctx
        url = f"http://127.0.0.1:{port}/webhooks/twilio/sms"
        async with httpx.AsyncClient(timeout=10.0) as client:
            for record in records:
                await advance_policy_clock(ctx, record.t)  # releases due before this t
                clock.now = record.t
                form = {
                    "MessageSid": record.message_id, "SmsSid": record.message_id,
                    "AccountSid": ACCOUNT_SID, "From": record.sender, "To": record.to,
                    "Body": record.body, "NumMedia": "0", "NumSegments": "1",
                    "SmsStatus": "received", "ApiVersion": "2010-04-01",
                }
                response = await client.post(url, data=form, headers=twilio_headers(url, form))
                assert response.status_code == 200, (record, response.text)
        # After the last message the simulator keeps releasing until nothing is held.
        await advance_policy_clock(ctx, float("inf"))
        assert ctx.core.next_deadline() is None
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=30.0)
    return database


def live_decisions(database: Path) -> tuple[dict[str, tuple[str, str]],
                                            Counter[tuple[str, str, str]]]:
    with sqlite3.connect(database) as db:
        final = {sid: (action, rule) for sid, action, rule in
                 db.execute("SELECT message_sid, action, rule FROM inbound")}
        later = Counter(db.execute("SELECT message_sid, action, rule FROM decisions"))
    return final, later


async def test_simulator_and_live_service_decide_every_message_alike(tmp_path: Path) -> None:
    """Same trace, same policy: the same final decision (action and rule) per message id."""
    records = window_trace(tmp_path / "window.jsonl")
    labels = Counter(r.label for r in records)
    assert len(records) > 2000 and labels["raid"] > 1000 and labels["legit"] > 800

    sim_final, sim_later = simulated(records)
    database = await served_live(records, tmp_path)
    live_final, live_later = live_decisions(database)

    assert set(live_final) == {r.message_id for r in records} == set(sim_final)
    mismatches = [
        (r.t, r.message_id, r.label, sim_final[r.message_id], live_final[r.message_id])
        for r in records if sim_final[r.message_id] != live_final[r.message_id]
    ]
    assert not mismatches, f"{len(mismatches)} decisions differ, first: {mismatches[:5]}"
    assert live_later == sim_later  # releases: same messages, same outcomes
    # The window exercises the interesting paths, not only first contacts.
    rules = Counter(rule for _action, rule in sim_final.values())
    for rule in ("released", "raid_template", "flagged_sender", "already_held",
                 "first_contact"):
        assert rules[rule] > 0, rules


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the hourly cap: both drivers release a held reply when the ledger has room ---------

HOURLY = {"budget": {"per_hour_eur": "0.48"},  # three replies in any 60 minutes
          **{rule: {"enabled": False} for rule in ("surge", "templates", "number_blocks",
                                                   "repeats", "fragments", "evasion")}}


def _hourly_trace() -> list[TraceRecord]:
    times = (0, 600, 1200, 1800, 3700, 3800)
    return [TraceRecord(float(t), f"+3361234{i:04d}", "+33644649021",
                        f"Bonjour, message numero {i}", "legit", f"SMh{i}")
            for i, t in enumerate(times)]


class _Timed(RaidModel):
    """The simulator, with the time of each decision kept (the parity check compares it)."""

    timed: list[tuple[str, str, str, float]]

    def _apply(self, msg, label, decision, now):  # type: ignore[no-untyped-def]
        self.timed.append((msg.message_id, decision.action.value, decision.rule, now))
        super()._apply(msg, label, decision, now)


async def test_hourly_cap_releases_alike_live_with_the_policy_clock_ticking(
        tmp_path: Path) -> None:
    """Under an hourly cap a held reply is released when the oldest reservation leaves
    the 60-minute window. The live policy clock re-reads the ledger every second; it used
    to count the whole last hour's spend as spent at that second, so each held reply
    waited a further hour (3,599 s instead of 1,800 s) and a later sender was answered at
    once, ahead of those waiting (SMh4 below)."""
    from responder.store import Inbound

    policy = PolicyConfig.from_mapping(HOURLY)
    records = _hourly_trace()
    model = _Timed(policy, provider=RELIABLE)
    model.timed = []
    model.run(records)
    simulated = sorted(model.timed, key=lambda d: (d[3], d[0]))

    database = tmp_path / "hourly.db"
    settings = replace(load_settings(base_env(RAIDSIM_DATABASE_URL=f"sqlite:///{database}",
                                              RAIDSIM_LOG_LEVEL="WARNING")), policy=policy)
    clock = Clock(0.0)
    app = create_app(settings, clock=clock, transport=httpx.MockTransport(accept_all),
                     rng=random.Random(7))
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx

        async def second(t: float) -> None:  # what the policy clock does each second
            clock.now = t
            await ctx.db.call(ctx.core.tick, now=t)
            await advance_policy_clock(ctx, t)
            await ctx.db.call(ctx.core.refresh, now=t)

        t = 0.0
        for record in records:
            while t < record.t:
                await second(t)
                t += 1.0
            clock.now = record.t
            await ctx.batcher.accept(Inbound(record.message_id, record.sender, record.to,
                                             record.body, record.t))
        for _ in range(4 * 3600):
            if await ctx.db.call(ctx.core.next_deadline) is None:
                break
            await second(t)
            t += 1.0
    with sqlite3.connect(database) as db:
        live_final = {sid: (action, rule) for sid, action, rule in
                      db.execute("SELECT message_sid, action, rule FROM inbound")}
        live_later = sorted(db.execute(
            "SELECT message_sid, action, rule, decided_at FROM decisions"))
    sim_final = {message_id: (action, rule) for message_id, action, rule, _ in simulated}
    seen: set[str] = set()
    sim_later = []
    for decision in simulated:  # every decision after a message's first, with its time
        if decision[0] in seen:
            sim_later.append(decision)
        seen.add(decision[0])
    assert [d[:3] for d in simulated[:4]] == [
        ("SMh0", "reply", "first_contact"), ("SMh1", "reply", "first_contact"),
        ("SMh2", "reply", "first_contact"), ("SMh3", "defer", "budget_hour")]
    assert sorted(sim_later) == [("SMh3", "reply", "released", 3600.0),
                                 ("SMh4", "reply", "released", 4200.0),
                                 ("SMh5", "reply", "released", 4800.0)]
    assert live_final == sim_final
    assert live_later == sorted(sim_later)


async def test_a_message_at_a_hold_deadline_comes_after_the_release_in_both(
        tmp_path: Path) -> None:
    """A message whose time is exactly a held reply's deadline: the live driver releases
    the replies due at or before a message's time first (``advance_policy_clock``). The
    simulator decided the message first when its arrival was queued before the timer's
    wake-up at the same time, so the two disagreed on traces with whole-second times
    (here: `already_held` in the simulator, `sender_limit` live)."""
    policy = PolicyConfig.from_mapping({"surge": {"floor_new_senders": 5}})
    records = [TraceRecord(float(10 + i), f"+336120000{i:02d}", "+33644649021",
                           f"Bonjour, ici la personne numero {i}", "legit", f"SMh{i:02d}")
               for i in range(12)]
    records.append(TraceRecord(1800.0, "+33612000005", "+33644649021", "Vous etes qui ?",
                               "legit", "SMagain"))
    sim_final, sim_later = simulated(records, policy)
    assert ("SMh05", "reply", "released") in sim_later  # held, released at t = 1800
    assert sim_final["SMagain"] == ("drop", "sender_limit")
    live_final, live_later = live_decisions(await served_live(records, tmp_path, policy))
    assert live_final == sim_final
    assert live_later == sim_later
