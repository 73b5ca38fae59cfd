"""The fake Twilio provider: real HTTP on loopback, exact bill, seeded faults, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from responder_support import ACCOUNT_SID, AUTH_TOKEN

from raidsim.cli import build_parser, main
from raidsim.commands.fake_provider import config_from_args
from responder.provider import Outcome, TwilioClient
from scenarios.fake_provider import FakeProvider, FakeProviderConfig, serving
from sim.provider import Fault, ProviderModel

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
UCS2_TEXT = "Réponse : « merci » 🙂"
LONG_TEXT = "Bonjour. " * 30  # 270 GSM-7 characters: 2 segments


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def config(**extra: Any) -> FakeProviderConfig:
    return FakeProviderConfig(auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, **extra)


def messages_url(base: str, sid: str = ACCOUNT_SID) -> str:
    return f"{base}/2010-04-01/Accounts/{sid}/Messages.json"


async def post(client: httpx.AsyncClient, base: str, body: str = "Salut",
               auth: tuple[str, str] = (ACCOUNT_SID, AUTH_TOKEN)) -> httpx.Response:
    return await client.post(messages_url(base, auth[0]), auth=auth,
                             data={"To": "+33612345678", "From": "+33644649021", "Body": body,
                                   "StatusCallback": "http://127.0.0.1:1/status"})


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> bool:
    """Poll an async predicate (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_bills_every_segment_exactly() -> None:
    """201 with Twilio's fields; the bill counts segments by GSM-7/UCS-2 and sums exactly."""
    provider = FakeProvider(config(eur_per_segment=Decimal("0.0725")))
    async with serving(provider) as base, httpx.AsyncClient() as client:
        first = await post(client, base, "Salut")
        assert first.status_code == 201
        data = first.json()
        assert data["sid"].startswith("SM") and len(data["sid"]) == 34
        assert (data["status"], data["num_segments"], data["price"], data["price_unit"]) == (
            "queued", "1", "-0.0725", "EUR")
        assert data["to"] == "+33612345678" and data["account_sid"] == ACCOUNT_SID
        assert (await post(client, base, LONG_TEXT)).json()["num_segments"] == "2"
        assert (await post(client, base, UCS2_TEXT)).json()["num_segments"] == "1"
        bill = (await client.get(base + "/_fake/bill")).json()
    assert bill["count"] == 3 and bill["segments"] == 4
    assert bill["amount_eur"] == "0.29" and bill["amount_micros"] == 290_000
    assert bill["requests"] == {"accepted": 3}
    assert provider.bill.messages[0].status_callback == "http://127.0.0.1:1/status"


async def test_checks_basic_auth_and_required_fields() -> None:
    """Wrong token or SID: 401/20003, nothing billed; missing Body: 400/21602."""
    provider = FakeProvider(config())
    async with serving(provider) as base, httpx.AsyncClient() as client:
        wrong = await post(client, base, auth=(ACCOUNT_SID, "not-the-token"))
        assert (wrong.status_code, wrong.json()["code"]) == (401, 20003)
        other = "AC" + "f" * 32
        assert (await post(client, base, auth=(other, AUTH_TOKEN))).status_code == 401
        mismatch = await client.post(messages_url(base, other), auth=(ACCOUNT_SID, AUTH_TOKEN),
                                     data={"To": "+33612345678", "From": "+3361", "Body": "x"})
        assert mismatch.status_code == 401
        empty = await client.post(messages_url(base), auth=(ACCOUNT_SID, AUTH_TOKEN),
                                  data={"To": "+33612345678", "From": "+33644649021"})
        assert (empty.status_code, empty.json()["code"]) == (400, 21602)
    assert provider.bill.snapshot()["count"] == 0


async def test_refuses_a_body_over_1600_characters_before_any_fault_and_unbilled() -> None:
    """As Twilio does: 400/21617 for a body over 1,600 characters (a 5,000-character one was
    answered 201 and billed 33 segments), before a fault is drawn; 1,600 is still sent."""
    provider = FakeProvider(config())
    async with serving(provider) as base, httpx.AsyncClient() as client:
        for body in ("x" * 1601, "Bonjour. " * 556, "é" * 5000):
            refused = await post(client, base, body)
            assert (refused.status_code, refused.json()["code"]) == (400, 21617), len(body)
            assert "1600 character limit" in refused.json()["message"]
        assert provider.bill.snapshot()["count"] == 0
        assert provider.bill.snapshot()["requests"] == {}  # no outcome was drawn for them
        accepted = await post(client, base, "x" * 1600)
        assert accepted.status_code == 201 and accepted.json()["num_segments"] == "11"
    assert provider.bill.snapshot()["count"] == 1
    errors = FakeProvider(config(model=ProviderModel(error_rate=1.0, rate_limit_rate=0.0,
                                                     timeout_rate=0.0, reject_rate=0.0)))
    async with serving(errors) as base, httpx.AsyncClient() as client:
        refused = await post(client, base, "x" * 1601)
        assert (refused.status_code, refused.json()["code"]) == (400, 21617)
    assert errors.bill.snapshot()["requests"] == {}


async def test_refuses_a_to_that_is_not_a_phone_number_and_a_bad_since() -> None:
    """As Twilio does: 400/21211 for a To that is not E.164, and nothing billed."""
    provider = FakeProvider(config())
    async with serving(provider) as base, httpx.AsyncClient() as client:
        for to in ("RAIDSIM", "+336", "0612345678", "+33 6 12 34 56 78", "+0612345678"):
            refused = await client.post(messages_url(base), auth=(ACCOUNT_SID, AUTH_TOKEN),
                                        data={"To": to, "From": "+33644649021", "Body": "x"})
            assert (refused.status_code, refused.json()["code"]) == (400, 21211), to
            assert to in refused.json()["message"]
        assert (await post(client, base)).status_code == 201
        for since in ("abc", "-1", "²"):
            bad = await client.get(base + "/_fake/messages", params={"since": since})
            assert bad.status_code == 400 and "since" in bad.json()["error"], since
        listed = await client.get(base + "/_fake/messages", params={"since": "0"})
        assert len(listed.json()) == 1
        assert listed.json()[0]["reply_to"] is None  # its StatusCallback names no ?reply=
        await client.post(messages_url(base), auth=(ACCOUNT_SID, AUTH_TOKEN),
                          data={"To": "+33612345678", "From": "+33644649021", "Body": "x",
                                "StatusCallback": "http://127.0.0.1:1/s?reply=SM42"})
        second = (await client.get(base + "/_fake/messages", params={"since": "1"})).json()
        assert second[0]["reply_to"] == "SM42"  # the inbound message the reply answers
    assert provider.bill.snapshot()["count"] == 2


async def test_rate_limits_and_errors_are_not_billed_and_read_as_retry() -> None:
    """429/20429 with Retry-After and 503 are answers the responder may safely retry."""
    model = ProviderModel(error_rate=0.0, rate_limit_rate=1.0, timeout_rate=0.0,
                          retry_after_s=7.0)
    provider = FakeProvider(config(model=model))
    async with serving(provider) as base, httpx.AsyncClient() as client:
        twilio = TwilioClient(client, api_base=base, account_sid=ACCOUNT_SID,
                              auth_token=AUTH_TOKEN)
        limited = await twilio.send(to="+33612345678", from_="+33644649021", body="x", now=0.0)
        assert (limited.outcome, limited.kind, limited.retry_after_s) == (
            Outcome.RETRY, "http_429", 7.0)
        assert "20429" in (limited.error or "")
    errors = ProviderModel(error_rate=1.0, rate_limit_rate=0.0, timeout_rate=0.0)
    failing = FakeProvider(config(model=errors))
    async with serving(failing) as base, httpx.AsyncClient() as client:
        twilio = TwilioClient(client, api_base=base, account_sid=ACCOUNT_SID,
                              auth_token=AUTH_TOKEN)
        result = await twilio.send(to="+33612345678", from_="+33644649021", body="x", now=0.0)
        assert (result.outcome, result.kind) == (Outcome.RETRY, "http_503")
        sent = FakeProvider(config())
    async with serving(sent) as base, httpx.AsyncClient() as client:
        twilio = TwilioClient(client, api_base=base, account_sid=ACCOUNT_SID,
                              auth_token=AUTH_TOKEN)
        ok = await twilio.send(to="+33612345678", from_="+33644649021", body=LONG_TEXT, now=0.0)
        assert (ok.outcome, ok.segments) == (Outcome.SENT, 2)
    assert provider.bill.snapshot()["count"] == failing.bill.snapshot()["count"] == 0
    assert provider.bill.snapshot()["requests"] == {"rate_limit": 1}


async def test_timeout_fault_is_billed_but_answers_too_late() -> None:
    """A 'timeout' is created and billed, then answered after the client gave up."""
    model = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=1.0)
    provider = FakeProvider(config(model=model, timeout_delay_s=3.0))
    async with serving(provider) as base, httpx.AsyncClient(timeout=0.3) as client:
        twilio = TwilioClient(client, api_base=base, account_sid=ACCOUNT_SID,
                              auth_token=AUTH_TOKEN)
        result = await twilio.send(to="+33612345678", from_="+33644649021", body="x", now=0.0)
        assert (result.outcome, result.kind) == (Outcome.UNKNOWN, "timeout")
        assert provider.bill.snapshot()["count"] == 1


async def test_status_callbacks_are_signed_and_name_a_timed_out_reply() -> None:
    """Each billed message gets signed ``sent`` then ``delivered`` callbacks at the URL its
    request named, ``?reply=`` included, even while a timeout withholds the answer."""
    from urllib.parse import parse_qsl

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from responder.signing import verify_twilio
    from scenarios.fake_provider import listening_socket

    received: list[tuple[str, list[tuple[str, str]], str | None]] = []

    async def status(request: Request) -> Response:
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        received.append((str(request.url), form, request.headers.get("x-twilio-signature")))
        return Response(status_code=204)

    sock = listening_socket("127.0.0.1", 0)
    receiver = uvicorn.Server(uvicorn.Config(Starlette(routes=[
        Route("/status", status, methods=["POST"])]), lifespan="off", log_level="warning"))
    served = asyncio.create_task(receiver.serve(sockets=[sock]))
    callback = f"http://127.0.0.1:{sock.getsockname()[1]}/status"
    model = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=1.0)
    provider = FakeProvider(config(model=model, timeout_delay_s=3.0))
    try:
        async with serving(provider) as base, httpx.AsyncClient(timeout=0.5) as client:
            twilio = TwilioClient(client, api_base=base, account_sid=ACCOUNT_SID,
                                  auth_token=AUTH_TOKEN, status_callback=callback)
            result = await twilio.send(to="+33612345678", from_="+33644649021", body="x",
                                       now=0.0, reply_to="SMinbound1")
            assert result.outcome is Outcome.UNKNOWN

            async def both() -> bool:
                return len(received) == 2

            assert await until(both)
    finally:
        receiver.should_exit = True
        await asyncio.wait_for(served, timeout=10)
    [billed] = provider.bill.messages
    assert [dict(form)["MessageStatus"] for _, form, _ in received] == ["sent", "delivered"]
    for url, form, signature in received:
        assert url == callback + "?reply=SMinbound1"
        assert dict(form)["MessageSid"] == billed.sid and dict(form)["To"] == "+33612345678"
        assert verify_twilio(AUTH_TOKEN, url, form, signature)
        assert not verify_twilio("another-token", url, form, signature)
    assert provider.bill.snapshot()["callbacks"] == {"delivered": 2}


async def test_status_callbacks_can_be_turned_off() -> None:
    """``status_callbacks=False``: nothing is posted; an unreachable URL is only counted."""
    quiet = FakeProvider(config(status_callbacks=False))
    loud = FakeProvider(config())
    for provider in (quiet, loud):
        async with serving(provider) as base, httpx.AsyncClient() as client:
            assert (await post(client, base)).status_code == 201  # its callback: port 1
    assert quiet.bill.snapshot()["callbacks"] == {}
    assert loud.bill.snapshot()["callbacks"] == {"unreachable": 1}


def test_fault_draws_are_seeded_and_follow_windows() -> None:
    """Same seed, same outcomes; a fault window raises its rate only while it lasts."""
    model = ProviderModel(error_rate=0.1, rate_limit_rate=0.1, timeout_rate=0.05,
                          reject_rate=0.05)
    windows = (Fault("rate_limit", 100.0, 200.0, 1.0),)
    clock = Clock()
    a = FakeProvider(config(model=model, faults=windows, seed=3), clock=clock)
    b = FakeProvider(config(model=model, faults=windows, seed=3), clock=clock)
    first = [a.draw(50.0) for _ in range(500)]
    assert first == [b.draw(50.0) for _ in range(500)]
    assert set(first) == {"accepted", "errors", "rate_limit", "timeouts", "reject"}
    during = [a.draw(150.0) for _ in range(200)]  # drawn as sim.model draws: timeouts first
    assert "accepted" not in during and during.count("rate_limit") > 150
    other = FakeProvider(config(model=model, faults=windows, seed=4), clock=clock)
    assert [other.draw(50.0) for _ in range(500)] != first
    # scenario time: offset + elapsed * speed
    timed = FakeProvider(config(speed=60.0, offset_s=1000.0), clock=clock)
    clock.now = 2.0
    assert timed.scenario_time() == 1120.0


async def test_full_outage_refuses_connections_then_recovers() -> None:
    """During a full outage the port refuses connections; afterwards it answers again."""
    clock = Clock()
    provider = FakeProvider(config(faults=(Fault("outage", 10.0, 20.0, 1.0),)), clock=clock)
    async with serving(provider) as base:
        async with httpx.AsyncClient() as client:
            assert (await post(client, base)).status_code == 201
        clock.now = 15.0

        async def refused() -> bool:
            async with httpx.AsyncClient() as fresh:
                try:
                    await post(fresh, base)
                except httpx.ConnectError:
                    return True
                return False

        assert await until(refused)
        clock.now = 25.0

        async def answering() -> bool:
            async with httpx.AsyncClient() as fresh:
                try:
                    return (await post(fresh, base)).status_code == 201
                except httpx.ConnectError:
                    return False

        assert await until(answering)
    assert provider.bill.snapshot()["count"] >= 2


async def test_outage_in_503_mode_answers_503() -> None:
    clock = Clock()
    provider = FakeProvider(config(faults=(Fault("outage", 0.0, 20.0, 1.0),),
                                   outage_mode="503"), clock=clock)
    async with serving(provider) as base, httpx.AsyncClient() as client:
        answer = await post(client, base)
        assert (answer.status_code, answer.json()["code"]) == (503, 20503)
    assert provider.bill.snapshot()["count"] == 0


def test_cli_takes_the_scenario_and_lets_flags_win() -> None:
    """Rates, faults, price and seed from the scenario; flags override; bad input exits 2."""
    parser = build_parser()
    args = parser.parse_args(["fake-provider", str(ROOT / "scenarios/anti-relous-2017.toml"),
                              "--rate-limit-rate", "0.5", "--outage", "1h+10m",
                              "--auth-token", AUTH_TOKEN])
    resolved = config_from_args(args, environ={})
    assert resolved.eur_per_segment == Decimal("0.16") and resolved.seed == 2017
    assert resolved.model.rate_limit_rate == 0.5
    assert resolved.model.error_rate == ProviderModel().error_rate
    assert Fault("outage", 3600.0, 4200.0, 1.0) in resolved.faults
    assert main(["fake-provider", "--auth-token", "t", "--outage", "5m"]) == 2
    assert main(["fake-provider", "--auth-token", "t", "--host", "0.0.0.0"]) == 2
    assert main(["fake-provider", "--auth-token", "t", "--eur-per-segment", "0.0000001"]) == 2
    # plain digits, as every price raidsim reads: not an exponent, separators or other digits
    for typed in ("1e-2", "1_0", "\u0661"):
        assert main(["fake-provider", "--auth-token", "t", "--eur-per-segment", typed]) == 2


def test_outcome_rates_that_add_up_to_more_than_one_are_refused(tmp_path: Path) -> None:
    """Each request has one outcome: 0.6 errors + 0.6 timeouts is not a model, it is a typo."""
    assert main(["fake-provider", "--auth-token", "t", "--error-rate", "0.6",
                 "--timeout-rate", "0.6"]) == 2
    args = build_parser().parse_args(["fake-provider", "--auth-token", "t", "--error-rate",
                                      "0.5", "--timeout-rate", "0.5"])
    assert config_from_args(args, environ={}).model.error_rate == 0.5  # exactly 1 is fine
    from responder.policy.errors import ConfigError
    from sim.provider import parse_provider

    text = "[provider]\nerror_rate = 0.7\nrate_limit_rate = 0.4\n"
    with pytest.raises(ConfigError,
                       match=r"add up to 1\.1005 \(error_rate 0\.7 .*\), more than 1") as caught:
        parse_provider({"error_rate": 0.7, "rate_limit_rate": 0.4}, path="s.toml", text=text)
    assert caught.value.line == 2


async def test_retry_after_is_never_sooner_than_the_models() -> None:
    """A 2.5 s Retry-After is sent as 3, not 2: the simulator waits 2.5 s."""
    for model_s, header in ((2.5, 3.0), (0.2, 1.0), (4.0, 4.0)):
        model = ProviderModel(error_rate=0.0, rate_limit_rate=1.0, timeout_rate=0.0,
                              retry_after_s=model_s)
        provider = FakeProvider(config(model=model))
        async with serving(provider) as base, httpx.AsyncClient() as client:
            twilio = TwilioClient(client, api_base=base, account_sid=ACCOUNT_SID,
                                  auth_token=AUTH_TOKEN)
            limited = await twilio.send(to="+33612345678", from_="+33644649021", body="x",
                                        now=0.0)
            assert limited.retry_after_s == header


# -- latency and throughput -----------------------------------------------------------


def shaped(**extra: Any) -> FakeProviderConfig:
    """A fault-free fake with the given model settings, both shapings on."""
    fields = {k: extra.pop(k) for k in ("segments_per_second", "latency_median_s",
                                         "latency_p95_s") if k in extra}
    model = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=0.0, **fields)
    return config(model=model, **{"latency": True, "throughput": True, **extra})


async def test_throughput_queues_requests_on_one_segment_token() -> None:
    """With the scenario clock standing still, request k waits k segments / rate / speed,
    exactly; a 2-segment body takes twice the room; the answers come no sooner."""
    clock = Clock()
    provider = FakeProvider(shaped(segments_per_second=20.0, latency=False, speed=2.0),
                            clock=clock)
    async with serving(provider) as base, httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        answers = await asyncio.gather(*(post(client, base, "Salut") for _ in range(4)))
        assert [a.status_code for a in answers] == [201] * 4
        # 4 x 1 segment at 20/s in scenario time, at speed 2: the last waits 3/20/2 s
        assert time.monotonic() - started >= 0.9 * 3 / 20 / 2
        long = await post(client, base, LONG_TEXT)  # queued behind the four: 4/20/2 s
        assert long.status_code == 201
        after = await post(client, base, "Salut")  # behind the 2 segments: 6/20/2 s
        assert after.status_code == 201
        bill = (await client.get(base + "/_fake/bill")).json()
    waits = sorted(provider.bill.queue_waits)
    assert waits == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.15])
    assert bill["injected"]["queue_wait_s"]["max"] == pytest.approx(0.15)
    assert bill["injected"]["queue_wait_s"]["count"] == 6
    assert bill["injected"]["latency_s"]["count"] == 0  # latency off
    assert bill["shaping"] == {"latency_median_s": None, "latency_p95_s": None,
                               "segments_per_second": 20.0, "speed": 2.0}
    # billed when they leave the queue: the scenario time of their turn
    assert sorted(m.at_s for m in provider.bill.messages) == pytest.approx(
        [0.0, 0.05, 0.1, 0.15, 0.2, 0.3])


async def test_throughput_spaces_the_answers_on_the_wall_clock() -> None:
    """Real clock: five concurrent 2-segment replies at 10 segments/s are billed over at
    least 4 x 0.2 s (lower bounds only: a slow machine only spaces them more; pairs are
    not checked, as a late wake-up of one can bring it closer to the next)."""
    provider = FakeProvider(shaped(segments_per_second=10.0, latency=False))
    async with serving(provider) as base, httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        answers = await asyncio.gather(*(post(client, base, LONG_TEXT) for _ in range(5)))
        elapsed = time.monotonic() - started
    assert [a.status_code for a in answers] == [201] * 5
    assert elapsed >= 0.9 * 4 * 0.2
    billed = [m.wall_at for m in provider.bill.messages]
    assert max(billed) - min(billed) >= 0.9 * 4 * 0.2
    assert provider.bill.snapshot()["injected"]["queue_wait_s"]["total"] > 0


async def test_latency_is_drawn_from_the_seed_and_answers_no_sooner() -> None:
    """Each answer waits its lognormal draw / speed; the draws are the seed's, whatever
    the machine, and another fake with the same seed draws the same."""
    clock = Clock()
    settings: dict[str, Any] = {"latency_median_s": 0.2, "latency_p95_s": 0.6,
                                "throughput": False, "speed": 2.0, "seed": 11}
    provider = FakeProvider(shaped(**settings), clock=clock)
    twin = FakeProvider(shaped(**settings), clock=clock)
    expected = [twin.draw_latency() / 2.0 for _ in range(4)]
    async with serving(provider) as base, httpx.AsyncClient(timeout=30) as client:
        for wanted in expected:
            started = time.monotonic()
            assert (await post(client, base)).status_code == 201
            assert time.monotonic() - started >= 0.9 * wanted
        bill = (await client.get(base + "/_fake/bill")).json()
    assert list(provider.bill.latencies) == pytest.approx(expected)
    assert bill["injected"]["latency_s"]["count"] == 4
    assert bill["injected"]["latency_s"]["total"] == pytest.approx(sum(expected), abs=1e-5)
    assert bill["injected"]["latency_s"]["max"] == pytest.approx(max(expected), abs=1e-6)
    assert bill["injected"]["queue_wait_s"]["count"] == 0  # throughput off
    assert bill["shaping"]["latency_median_s"] == 0.2


def test_latency_draws_follow_the_model_and_leave_the_fault_draws_alone() -> None:
    """Median and p95 of many draws are the model's; another seed draws otherwise; a fake
    with latency on draws the same faults as one with it off."""
    clock = Clock()
    model = ProviderModel(latency_median_s=0.25, latency_p95_s=0.9, error_rate=0.1,
                          rate_limit_rate=0.1)
    a = FakeProvider(config(model=model, latency=True, seed=5), clock=clock)
    draws = sorted(a.draw_latency() for _ in range(4001))
    assert 0.22 < draws[2000] < 0.28 and 0.8 < draws[3800] < 1.0
    b = FakeProvider(config(model=model, latency=True, seed=6), clock=clock)
    assert [b.draw_latency() for _ in range(5)] != [
        FakeProvider(config(model=model, latency=True, seed=5)).draw_latency()
        for _ in range(5)]
    flat = FakeProvider(config(model=ProviderModel(latency_median_s=0.3, latency_p95_s=0.3),
                               latency=True), clock=clock)
    assert {flat.draw_latency() for _ in range(10)} == {0.3}
    off = FakeProvider(config(model=model, seed=5), clock=clock)
    assert off.draw_latency() == 0.0 and off.queue_wait(3, 0.0) == 0.0
    on = FakeProvider(config(model=model, seed=5, latency=True, throughput=True), clock=clock)
    plain = FakeProvider(config(model=model, seed=5), clock=clock)
    outcomes = []
    for _ in range(300):
        outcomes.append(on.draw(0.0))
        on.draw_latency()
    assert outcomes == [plain.draw(0.0) for _ in range(300)]


async def test_which_answers_pay_latency_and_queue() -> None:
    """429, 5xx and rejects queue and pay latency; a timeout queues and is then held
    (no latency); refusals at the door and outages answer at once and take no room."""
    for rates, outcome, status in (({"rate_limit_rate": 1.0}, "rate_limit", 429),
                                   ({"error_rate": 1.0}, "errors", 503),
                                   ({"reject_rate": 1.0}, "reject", 400)):
        model = ProviderModel(**{"error_rate": 0.0, "rate_limit_rate": 0.0,
                                 "timeout_rate": 0.0, "latency_median_s": 0.05,
                                 "latency_p95_s": 0.05, **rates})
        provider = FakeProvider(config(model=model, latency=True, throughput=True))
        async with serving(provider) as base, httpx.AsyncClient() as client:
            started = time.monotonic()
            assert (await post(client, base)).status_code == status
            assert time.monotonic() - started >= 0.9 * 0.05
        snapshot = provider.bill.snapshot()
        assert snapshot["requests"] == {outcome: 1}
        assert snapshot["injected"]["latency_s"]["count"] == 1, outcome
        assert snapshot["injected"]["queue_wait_s"]["count"] == 1, outcome
    model = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=1.0,
                          latency_median_s=5.0, latency_p95_s=5.0)
    held = FakeProvider(config(model=model, latency=True, throughput=True,
                               timeout_delay_s=0.5))
    async with serving(held) as base, httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        assert (await post(client, base)).status_code == 201
        assert time.monotonic() - started >= 0.9 * 0.5  # held: the delay, no latency
    assert held.bill.snapshot()["injected"]["latency_s"]["count"] == 0
    assert held.bill.snapshot()["injected"]["queue_wait_s"]["count"] == 1
    clock = Clock()
    slow = ProviderModel(latency_median_s=5.0, latency_p95_s=5.0, segments_per_second=0.01)
    down = FakeProvider(config(model=slow, latency=True, throughput=True, outage_mode="503",
                               faults=(Fault("outage", 0.0, 20.0, 1.0),)), clock=clock)
    async with serving(down) as base, httpx.AsyncClient(timeout=30) as client:
        assert (await post(client, base)).status_code == 503  # at once
        empty = await client.post(messages_url(base), auth=(ACCOUNT_SID, AUTH_TOKEN),
                                  data={"To": "+33612345678", "From": "+33644649021"})
        assert empty.status_code == 400  # the front door: at once, no room taken
        clock.now = 30.0
        assert (await post(client, base, "x")).status_code == 201  # first in the queue
    injected = down.bill.snapshot()["injected"]
    assert injected["queue_wait_s"]["count"] == 1 and injected["queue_wait_s"]["max"] == 0.0


@pytest.mark.parametrize("model, shaping, message", [
    (ProviderModel(latency_median_s=float("nan")), "latency", "latency_median_s must be"),
    (ProviderModel(latency_median_s=-0.1), "latency", "latency_median_s must be"),
    (ProviderModel(latency_p95_s=float("inf")), "latency", "latency_p95_s must be"),
    (ProviderModel(latency_median_s=1.0, latency_p95_s=0.5), "latency", "is below"),
    (ProviderModel(segments_per_second=0.0), "throughput", "segments_per_second must be"),
    (ProviderModel(segments_per_second=-1.0), "throughput", "segments_per_second must be"),
    (ProviderModel(segments_per_second=float("inf")), "throughput",
     "segments_per_second must be"),
    (ProviderModel(segments_per_second=float("nan")), "throughput",
     "segments_per_second must be"),
])
def test_shaping_config_refuses_values_it_cannot_wait(model: ProviderModel, shaping: str,
                                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(model=model, **{shaping: True})
    config(model=model)  # not applied: not checked, as before


def test_cli_shapes_like_the_scenario_and_only_on_request_without_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """From a scenario: its [provider] latency and throughput, unless turned off; without
    one: instant answers unless a flag asks; the value flags override and turn on."""
    scenario = str(ROOT / "scenarios/anti-relous-2017.toml")

    def resolve(*flags: str) -> FakeProviderConfig:
        args = build_parser().parse_args(["fake-provider", *flags, "--auth-token", "t"])
        resolved: FakeProviderConfig = config_from_args(args, environ={})
        return resolved

    both = resolve(scenario)
    assert (both.latency, both.throughput) == (True, True)
    assert both.model.segments_per_second == ProviderModel().segments_per_second
    assert both.model.latency_median_s == ProviderModel().latency_median_s
    instant = resolve(scenario, "--latency", "off", "--throughput", "off")
    assert (instant.latency, instant.throughput) == (False, False)
    assert (resolve().latency, resolve().throughput) == (False, False)
    assert (resolve("--latency", "on").latency, resolve("--latency", "on").throughput) == (
        True, False)
    custom = resolve("--latency-median", "300ms", "--latency-p95", "2s",
                     "--segments-per-second", "1.5")
    assert (custom.latency, custom.throughput) == (True, True)
    assert (custom.model.latency_median_s, custom.model.latency_p95_s,
            custom.model.segments_per_second) == (0.3, 2.0, 1.5)
    assert resolve(scenario, "--segments-per-second", "100",
                   "--latency", "off").model.segments_per_second == 100.0
    base = ["fake-provider", "--auth-token", "t", "--port", "0"]
    for flags, expected in (
            (["--segments-per-second", "0"], "--segments-per-second must be a finite number"),
            (["--segments-per-second", "-3"], "--segments-per-second must be a finite number"),
            (["--segments-per-second", "nan"], "got nan"),
            (["--segments-per-second", "inf"], "got inf"),
            # a typo of a rate queued every reply for ever; a median of 0 ignored the p95
            (["--segments-per-second", "1e-300"], "must be a finite number of at least "
             "0.001, got 1e-300"),
            (["--latency-median", "0"], "--latency-median 0 answers every call at once, "
             "whatever the p95 (0.9 s)"),
            (["--error-status", "404"], "--error-status must be a 5xx status, got 404"),
            (["--latency-median", "soon"], "--latency-median 'soon'"),
            (["--latency-p95=-1s"], "--latency-p95 '-1s'"),
            (["--latency-median", "2s"], "the latency p95 (0.9 s) is below its median (2 s)"),
            (["--latency", "off", "--latency-median", "1s"], "--latency off contradicts"),
            (["--throughput", "off", "--segments-per-second", "2"],
             "--throughput off contradicts")):
        assert main([*base, *flags]) == 2, flags
        assert expected in capsys.readouterr().err, flags
    with pytest.raises(SystemExit) as caught:  # argparse's own usage error
        main([*base, "--latency", "slow"])
    assert caught.value.code == 2 and "invalid choice" in capsys.readouterr().err


async def test_stopping_ends_the_queue_without_billing_it() -> None:
    """Requests still queued when the fake stops get 503 and are not billed, and a
    withheld timeout answer ends too: serving() does not wait out a 40 s queue (its
    30 s shutdown limit would raise)."""
    provider = FakeProvider(shaped(segments_per_second=0.05, latency=False))
    async with httpx.AsyncClient(timeout=60) as client:
        async with serving(provider) as base:
            posts = [asyncio.create_task(post(client, base)) for _ in range(3)]

            async def queued() -> bool:
                return sum(provider.bill.outcomes.values()) == 3

            assert await until(queued)
        answers = await asyncio.gather(*posts)
    assert sorted(a.status_code for a in answers) == [201, 503, 503]
    assert provider.bill.snapshot()["count"] == 1
    model = ProviderModel(error_rate=0.0, rate_limit_rate=0.0, timeout_rate=1.0)
    held = FakeProvider(config(model=model, timeout_delay_s=40.0))
    async with httpx.AsyncClient(timeout=60) as client:
        async with serving(held) as base:
            withheld = asyncio.create_task(post(client, base))

            async def billed() -> bool:
                return held.bill.snapshot()["count"] == 1

            assert await until(billed)
        assert (await withheld).status_code == 201  # answered as the fake stopped


def test_an_error_after_it_listens_is_not_called_a_bind_problem(monkeypatch: Any) -> None:
    """Any OSError out of the serving loop was reported as "cannot listen on HOST:PORT"
    (exit 2), a TimeoutError while stopping among them: only one before the fake listens
    is a bind problem; a later one is the error it is."""
    import contextlib
    import os
    import signal

    import scenarios.fake_provider as fake
    from raidsim.cli import UsageError

    @contextlib.asynccontextmanager
    async def failing_after_listen(*args: Any, **kwargs: Any) -> Any:
        # the command's SIGTERM handler is installed by now: it stops the fake at once
        os.kill(os.getpid(), signal.SIGTERM)
        yield "http://127.0.0.1:1"
        raise TimeoutError("the server did not stop in time")

    monkeypatch.setattr(fake, "serving", failing_after_listen)
    args = build_parser().parse_args(["fake-provider", "--port", "0",
                                      "--auth-token", AUTH_TOKEN])
    with pytest.raises(TimeoutError):
        args.func(args)

    @contextlib.asynccontextmanager
    async def busy(*args: Any, **kwargs: Any) -> Any:
        raise OSError(98, "Address already in use")
        yield  # pragma: no cover

    monkeypatch.setattr(fake, "serving", busy)
    with pytest.raises(UsageError, match=r"cannot listen on 127\.0\.0\.1:0: Address already"):
        args.func(args)


async def test_a_fault_window_applies_when_the_provider_takes_the_request() -> None:
    """The simulator draws a call's outcome after its token wait; the fake drew it on
    arrival, so a 5xx window opening while requests queued missed them (fault-window
    edges differed by the queue wait). Requests 2-4 reach the provider (the scenario
    clock standing still at 0) at 0.1, 0.2 and 0.3 s, inside a window opening at 0.15 s."""
    clock = Clock()
    windows = (Fault("errors", 0.15, 100.0, 1.0),)
    provider = FakeProvider(shaped(segments_per_second=10.0, latency=False, faults=windows),
                            clock=clock)
    async with serving(provider) as base, httpx.AsyncClient(timeout=30) as client:
        answers = [await post(client, base, "Salut") for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 503, 503]
    assert sorted(m.at_s for m in provider.bill.messages) == pytest.approx([0.0, 0.1])


async def test_a_message_waiting_in_the_queue_is_listed_as_twilio_lists_it() -> None:
    """Twilio creates a message when it takes the request and lists it from then on. The
    fake listed it only once billed, after its throughput queue: a reply queued longer
    than the responder's read timeout and look-up grace was looked up, not found, sent
    again, and billed twice (over the budget cap). Now the look-up finds it (FOUND, status
    queued, no price yet), and the same sid is billed once it leaves the queue."""
    from responder.provider import Lookup

    provider = FakeProvider(shaped(segments_per_second=0.5, latency=False))
    to = "+33612345678"
    async with serving(provider) as base, httpx.AsyncClient(timeout=30) as client:
        twilio = TwilioClient(client, api_base=base, account_sid=ACCOUNT_SID,
                              auth_token=AUTH_TOKEN)
        first = asyncio.create_task(post(client, base))  # takes the token: 2 s
        queued = asyncio.create_task(post(client, base, body="Bonjour"))

        async def both_taken() -> bool:
            return sum(provider.bill.outcomes.values()) == 2

        assert await until(both_taken)
        assert provider.bill.snapshot()["count"] <= 1  # the second waits in the queue
        found = await twilio.find_sent(to=to, from_="+33644649021", since=time.time() - 60)
        assert found.lookup is Lookup.FOUND
        listed = (await client.get(messages_url(base), auth=(ACCOUNT_SID, AUTH_TOKEN),
                                   params={"To": to})).json()["messages"]
        waiting = [m for m in listed if m["body"] == "Bonjour"]
        assert [(m["status"], m["price"]) for m in waiting] == [("queued", None)]
        answers = await asyncio.gather(first, queued)
    assert [a.status_code for a in answers] == [201, 201]
    assert provider.bill.snapshot()["count"] == 2 and not provider.bill.pending
    assert answers[1].json()["sid"] == waiting[0]["sid"]
