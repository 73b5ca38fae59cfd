"""Unknown replies are looked up at the provider: found, they are sent; surely absent,
they are sent again; unclear, they stay unknown and are looked up later.

A walkthrough killed the responder (kill -9) while replies were ``sending``: their lease
expired, they became ``unknown`` ("maybe sent, never resent"), the provider had billed
nothing, and those genuine senders never got the reply that was reserved for them. The
provider's own Messages list tells the two cases apart, so the outbox asks it.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from responder_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    PLAIN_POLICY,
    twilio_form,
    twilio_headers,
)
from test_responder_app import HOOK, NOW, Clock, Provider, running, settings_for, until

from responder.outbox import RECONCILE_GRACE_S, RECONCILE_MAX_CHECKS
from responder.provider import LOOKUP_PAGE_SIZE, Lookup, TwilioClient
from responder.store import open_store

pytestmark = pytest.mark.anyio
SENDER = "+33612345678"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def rows(settings: Any) -> list[dict[str, Any]]:
    store = open_store(settings.database_url)
    try:
        return store.outbox_rows()
    finally:
        store.close()


def listed(messages: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(200, json={"messages": messages, "page": 0,
                                     "page_size": LOOKUP_PAGE_SIZE, "next_page_uri": None})


def message(sid: str, at: float, status: str = "delivered") -> dict[str, Any]:
    created = format_datetime(dt.datetime.fromtimestamp(at, dt.UTC), usegmt=True)
    return {"sid": sid, "to": SENDER, "from": OUR_NUMBER, "body": "...", "status": status,
            "date_created": created}


class Twilio(Provider):
    """The test provider, with its Messages list: GET answers from ``listing``."""

    def __init__(self, script: list[Any] | None = None,
                 listing: list[dict[str, Any]] | None = None) -> None:
        super().__init__(script)
        self.listing = listing or []
        self.lookups: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.lookups.append(request)
            return listed(self.listing)
        return super().__call__(request)


def died_mid_send(request: httpx.Request) -> httpx.Response:
    raise RuntimeError("worker stopped")  # the request never reached the provider


async def webhook(client: httpx.AsyncClient, sid: str = "SM1") -> None:
    form = twilio_form(sid, SENDER)
    response = await client.post(HOOK, data=form, headers=twilio_headers(HOOK, form))
    assert response.status_code == 200


async def test_a_reply_the_provider_never_got_is_sent_again_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    clock = Clock()
    provider = Twilio([died_mid_send])
    async with running(settings, provider, clock) as client:
        await webhook(client)
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["unknown"])
        assert provider.lookups == []  # a callback may settle it first: not looked up yet
        clock.now += RECONCILE_GRACE_S + 1
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["sent"])
        metrics = (await client.get("/metrics")).text
    posts = [r for r in provider.requests if r.method == "POST"]
    assert len(posts) == 2  # the lost one, and the one sent again: one SMS in all
    [lookup] = provider.lookups
    assert lookup.url.params["To"] == SENDER and lookup.url.params["From"] == OUR_NUMBER
    assert lookup.headers["Authorization"].startswith("Basic ")
    assert 'raidsim_reply_lookups_total{lookup="absent"} 1.0' in metrics


async def test_a_reply_the_provider_holds_is_sent_and_never_resent(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    clock = Clock()

    def timed_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)  # the provider did create it

    provider = Twilio([timed_out], listing=[message("SMfound", NOW + 1)])
    async with running(settings, provider, clock) as client:
        await webhook(client)
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["unknown"])
        clock.now += RECONCILE_GRACE_S + 1
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["sent"])
    [row] = rows(settings)
    assert (row["provider_sid"], row["provider_status"]) == ("SMfound", "delivered")
    assert len([r for r in provider.requests if r.method == "POST"]) == 1


async def test_an_older_message_to_the_same_number_does_not_count(tmp_path: Path) -> None:
    """A reply to this number a month ago is not this reply: it is sent again."""
    settings = settings_for(tmp_path)
    clock = Clock()
    provider = Twilio([died_mid_send], listing=[message("SMold", NOW - 30 * 86400)])
    async with running(settings, provider, clock) as client:
        await webhook(client)
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["unknown"])
        clock.now += RECONCILE_GRACE_S + 1
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["sent"])
    assert len([r for r in provider.requests if r.method == "POST"]) == 2


@pytest.mark.parametrize("answer", [
    lambda request: httpx.Response(500, json={"code": 20500}),
    lambda request: httpx.Response(200, text="not json"),
    lambda request: httpx.Response(200, json={"no": "list"}),
    lambda request: listed([{"to": SENDER, "from": OUR_NUMBER, "sid": "SMx"}]),  # no date
    lambda request: listed([message(f"SM{k}", NOW - 86400 * 40)
                            for k in range(LOOKUP_PAGE_SIZE)]),  # a full page of older ones
])
async def test_an_unclear_lookup_never_resends(tmp_path: Path, answer: Any) -> None:
    settings = settings_for(tmp_path)
    clock = Clock()
    provider = Provider([died_mid_send])
    lookups: list[httpx.Request] = []

    def transport(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            lookups.append(request)
            return answer(request)  # type: ignore[no-any-return]
        return provider(request)

    async with running(settings, transport, clock) as client:  # type: ignore[arg-type]
        await webhook(client)
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["unknown"])
        for check in range(RECONCILE_MAX_CHECKS + 2):
            clock.now += RECONCILE_GRACE_S * 2 ** (check + 1) + 31
            assert await until(lambda check=check: len(lookups) >= min(
                check + 1, RECONCILE_MAX_CHECKS))
    assert len(lookups) == RECONCILE_MAX_CHECKS  # bounded
    [row] = rows(settings)
    assert row["status"] == "unknown"
    assert len(provider.requests) == 1  # never sent again


async def test_the_fake_provider_lists_what_it_billed_as_twilio_does() -> None:
    """The harness's fake provider answers the look-up (newest first, filtered)."""
    from scenarios.fake_provider import FakeProvider, FakeProviderConfig, create_app

    fake = FakeProvider(FakeProviderConfig(auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID))
    transport = httpx.ASGITransport(app=create_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        client = TwilioClient(http, api_base="http://fake", account_sid=ACCOUNT_SID,
                              auth_token=AUTH_TOKEN)
        before = dt.datetime.now(dt.UTC).timestamp() - 1
        assert (await client.find_sent(to=SENDER, from_=OUR_NUMBER, since=before)).lookup \
            is Lookup.ABSENT
        sent = await client.send(to=SENDER, from_=OUR_NUMBER, body="Bonjour", now=before)
        await client.send(to="+33699999999", from_=OUR_NUMBER, body="Bonjour", now=before)
        found = await client.find_sent(to=SENDER, from_=OUR_NUMBER, since=before)
        assert (found.lookup, found.provider_sid) == (Lookup.FOUND, sent.provider_sid)
        later = await client.find_sent(to=SENDER, from_=OUR_NUMBER, since=before + 3600)
        assert later.lookup is Lookup.ABSENT  # created before ``since``: not this reply
        other = await client.find_sent(to=SENDER, from_="+33100000000", since=before)
        assert other.lookup is Lookup.ABSENT
        wrong = TwilioClient(http, api_base="http://fake", account_sid=ACCOUNT_SID,
                             auth_token="wrong")
        assert (await wrong.find_sent(to=SENDER, from_=OUR_NUMBER, since=before)).lookup \
            is Lookup.UNCLEAR


def test_a_stale_lookup_changes_nothing(store_url: str) -> None:
    """Two instances may look the same reply up; the second's answer, read before the
    first one's resend, must not queue it a second time. Both databases."""
    store = open_store(store_url)
    try:
        store.migrate(now=NOW)
        store.enqueue_reply("SM1", SENDER, OUR_NUMBER, "Bonjour", 160_000, now=NOW)
        [item] = store.claim_outbox(now=NOW, limit=1, owner="a", lease_s=1.0)
        store.expire_leases(now=NOW + 2)
        [(due, checks)] = store.unknown_to_check(now=NOW + 100, limit=5, grace_s=60,
                                                 max_checks=5)
        assert (due.id, checks) == (item.id, 0)
        assert store.record_check(item.id, 0, found=False, now=NOW + 100) == "pending"
        [again] = store.claim_outbox(now=NOW + 101, limit=1, owner="a", lease_s=1.0)
        store.finish_outbox(again.id, "unknown", now=NOW + 102, error="timeout")
        assert store.record_check(item.id, 0, found=False, now=NOW + 103) is None  # stale
        assert [r["status"] for r in store.outbox_rows()] == ["unknown"]
        assert store.unknown_to_check(now=NOW + 103, limit=5, grace_s=60, max_checks=5) == []
        [(_, checks)] = store.unknown_to_check(now=NOW + 200, limit=5, grace_s=60,
                                               max_checks=5)
        assert checks == 1
        assert store.record_check(item.id, 1, found=True, now=NOW + 200,
                                  provider_sid="SMz", provider_status="failed") == "unknown"
        assert store.outbox_rows()[0]["provider_sid"] == "SMz"  # not looked up again
        assert store.unknown_to_check(now=NOW + 9999, limit=5, grace_s=60, max_checks=5) == []
    finally:
        store.close()


async def test_a_message_matched_to_one_reply_is_not_another_replys(tmp_path: Path) -> None:
    """With a sender limit above one, two replies go to one number. The second died
    mid-send; its look-up found the first reply's message and marked it sent: counted
    as sent, never delivered. A message already matched to a reply is not a match now."""
    policy = tmp_path / "two.toml"
    policy.write_text(PLAIN_POLICY + "[sender_limit]\nreplies = 2\n")
    settings = settings_for(tmp_path, RAIDSIM_POLICY_FILE=str(policy))
    clock = Clock()
    provider = Twilio()
    async with running(settings, provider, clock) as client:
        await webhook(client, "SM1")
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["sent"])
        first = rows(settings)[0]["provider_sid"]
        provider.listing = [message(first, NOW + 1)]  # the provider holds only that one
        provider.script = [died_mid_send]
        clock.now += 60
        await webhook(client, "SM2")
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["sent", "unknown"])
        clock.now += RECONCILE_GRACE_S + 1
        assert await until(lambda: len(provider.lookups) == 1)
        assert await until(lambda: [r["status"] for r in rows(settings)] == ["sent", "sent"])
    second = rows(settings)[1]
    assert second["provider_sid"] not in (None, first)  # sent again: its own message
    assert len([r for r in provider.requests if r.method == "POST"]) == 3


async def test_the_lookup_takes_the_oldest_message_no_other_reply_has() -> None:
    """Of the listed messages not matched to another reply, the oldest is this reply's
    (a later one may be a later reply's); one without a sid cannot be told apart."""
    answers: list[httpx.Response] = [
        listed([message("SMc", NOW + 30), message("SMb", NOW + 20), message("SMa", NOW + 10)]),
        listed([message("SMc", NOW + 30), message("SMb", NOW + 20), message("SMa", NOW + 10)]),
        listed([message("SMa", NOW + 10)]),
        listed([{**message("", NOW + 10), "sid": None}]),
    ]
    transport = httpx.MockTransport(lambda request: answers.pop(0))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        client = TwilioClient(http, api_base="http://fake", account_sid=ACCOUNT_SID,
                              auth_token=AUTH_TOKEN)
        found = await client.find_sent(to=SENDER, from_=OUR_NUMBER, since=NOW)
        assert (found.lookup, found.provider_sid) == (Lookup.FOUND, "SMa")
        found = await client.find_sent(to=SENDER, from_=OUR_NUMBER, since=NOW,
                                       taken=frozenset({"SMa"}))
        assert (found.lookup, found.provider_sid) == (Lookup.FOUND, "SMb")
        absent = await client.find_sent(to=SENDER, from_=OUR_NUMBER, since=NOW,
                                        taken=frozenset({"SMa"}))
        assert absent.lookup is Lookup.ABSENT
        unclear = await client.find_sent(to=SENDER, from_=OUR_NUMBER, since=NOW)
        assert unclear.lookup is Lookup.UNCLEAR


def test_one_provider_message_is_recorded_for_one_reply(store_url: str) -> None:
    """A look-up answer read before another instance matched the same message to
    another reply to that number does not match it again (it stays unknown, looked up
    later); a look-up is postponed, uncounted, while another reply to that number is
    queued or being sent. Both databases."""
    store = open_store(store_url)
    try:
        store.migrate(now=NOW)
        for sid in ("SM1", "SM2", "SM3"):
            store.enqueue_reply(sid, SENDER, OUR_NUMBER, "Bonjour", 160_000, now=NOW)
        a, b = store.claim_outbox(now=NOW, limit=2, owner="a", lease_s=1.0)
        store.expire_leases(now=NOW + 2)
        assert store.provider_sids_to(SENDER, a.id) is None  # SM3 is still queued
        assert store.postpone_check(a.id, 0, at=NOW + 500, now=NOW + 100)
        due = store.unknown_to_check(now=NOW + 499, limit=5, grace_s=60, max_checks=5)
        assert [(item.id, checks) for item, checks in due] == [(b.id, 0)]
        [c] = store.claim_outbox(now=NOW + 100, limit=1, owner="a", lease_s=30)
        store.finish_outbox(c.id, "failed", now=NOW + 101, error="21610")
        assert store.provider_sids_to(SENDER, a.id) == frozenset()
        assert store.record_check(b.id, 0, found=True, now=NOW + 600, provider_sid="SMx",
                                  provider_status="delivered") == "sent"
        assert store.provider_sids_to(SENDER, a.id) == frozenset({"SMx"})
        # A's look-up answer was read before B's was recorded: it named SMx too
        assert store.record_check(a.id, 0, found=True, now=NOW + 601, provider_sid="SMx",
                                  provider_status="delivered",
                                  next_check_at=NOW + 900) == "unknown"
        row = {r["message_sid"]: r for r in store.outbox_rows()}["SM1"]
        assert (row["status"], row["provider_sid"]) == ("unknown", None)
        [(due, checks)] = store.unknown_to_check(now=NOW + 900, limit=5, grace_s=60,
                                                 max_checks=5)
        assert (due.id, checks) == (a.id, 1)
    finally:
        store.close()


def test_a_status_callback_corrects_a_lookup_that_swapped_two_replies(store_url: str) -> None:
    """Two replies to one number timed out; both messages are at the provider, alike
    (same number, same text), and the list tells them apart only by a creation time
    that the 5 minutes of clock skew allowed for cannot order against our sends. The
    look-ups matched each reply to the other's message: both sent (the money is right),
    but each later status callback updated the other reply's row. A callback names its
    reply (``?reply=``, in the URL we gave and Twilio signs): an exact key, which now
    wins over a look-up's match. Both databases."""
    store = open_store(store_url)
    try:
        store.migrate(now=NOW)
        for sid in ("SM1", "SM2", "SM3"):
            store.enqueue_reply(sid, SENDER, OUR_NUMBER, "Bonjour", 160_000, now=NOW)
        one, two, three = store.claim_outbox(now=NOW, limit=3, owner="a", lease_s=1.0)
        store.expire_leases(now=NOW + 2)
        # the swap: SM2's look-up took SM1's message, then SM1's took the one left
        assert store.record_check(two.id, 0, found=True, now=NOW + 100, provider_sid="SMx",
                                  provider_status="sent") == "sent"
        assert store.record_check(one.id, 0, found=True, now=NOW + 101, provider_sid="SMy",
                                  provider_status="failed") == "unknown"
        assert store.record_status("SMx", "delivered", None, now=NOW + 200, reply_to="SM1")
        rows = {r["message_sid"]: r for r in store.outbox_rows()}
        assert [(rows[s]["status"], rows[s]["provider_sid"], rows[s]["provider_status"])
                for s in ("SM1", "SM2")] == [("sent", "SMx", "delivered"),
                                             ("unknown", "SMy", "failed")]
        # from now on by sid, to the right row
        assert store.record_status("SMy", "undelivered", "30003", now=NOW + 201)
        assert {r["message_sid"]: r["provider_status"] for r in store.outbox_rows()}[
            "SM2"] == "undelivered"
        # SM3's look-up took SM2's message before SM2's callback came, SM2 had no match
        # yet: SM3 gives it up and is looked up again; its money stays counted
        store.enqueue_reply("SM4", SENDER, OUR_NUMBER, "Bonjour", 160_000, now=NOW)
        store.claim_outbox(now=NOW + 300, limit=1, owner="a", lease_s=1.0)
        store.expire_leases(now=NOW + 302)
        spent = store.spent_micros()
        assert store.record_check(three.id, 0, found=True, now=NOW + 400,
                                  provider_sid="SMz", provider_status="sent") == "sent"
        assert store.record_status("SMz", "sent", None, now=NOW + 401, reply_to="SM4")
        rows = {r["message_sid"]: r for r in store.outbox_rows()}
        assert [(rows[s]["status"], rows[s]["provider_sid"]) for s in ("SM3", "SM4")] == [
            ("unknown", None), ("sent", "SMz")]
        [(due, checks)] = store.unknown_to_check(now=NOW + 401, limit=5, grace_s=60,
                                                 max_checks=5)
        assert (due.id, checks) == (three.id, 1)
        assert store.spent_micros() == spent
        # a sid a callback gave (not a look-up's guess) is never moved
        store.record_status("SMx", "sent", None, now=NOW + 500, reply_to="SM2")
        assert {r["message_sid"]: r["provider_sid"] for r in store.outbox_rows()
                if r["message_sid"] in ("SM1", "SM2")} == {"SM1": "SMx", "SM2": "SMy"}
    finally:
        store.close()
