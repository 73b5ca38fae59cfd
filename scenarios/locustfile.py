"""Locust replay of a trace against a live responder (run by ``raidsim load``).

A leaf module: importing locust monkey-patches the process with gevent, so nothing
else in raidsim imports this file; ``raidsim load`` runs it in a Locust subprocess.

Configuration comes from the environment that ``raidsim load`` sets:

``RAIDSIM_LOAD_PLAN``   JSONL plan, one webhook per line: ``{"id", "t", "from", "to",
                        "body", "label"}``, sorted by ``t``
``RAIDSIM_LOAD_OUT``    JSONL written here, one line per webhook sent (flushed as it goes)
``RAIDSIM_LOAD_TOKEN``  the responder's Twilio auth token (signs every webhook)
``RAIDSIM_LOAD_SPEED``  time compression: a message at trace time ``t`` is sent
                        ``(t - t_first) / speed`` seconds after the start
``RAIDSIM_LOAD_DURATION`` stop sending after this many wall seconds
``RAIDSIM_LOAD_START_AT`` the Unix time the first message is due (default: Locust's start)
``RAIDSIM_LOAD_ORDERED``  ``1`` (default): each webhook is posted once the one before it
                        has been answered, so the responder decides them in trace order;
                        ``0``: up to one per user in flight, in any order

Every user takes the next message from one shared queue and waits until its due time.
Two messages due at the same moment (a trace's equal ``t``, or a few milliseconds apart
under ``--speed``) would otherwise race over separate connections, and the responder
would decide them in whichever order they arrived: under a budget cap, other senders
would get the replies than in ``raidsim simulate`` on the same trace.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode

import gevent
import gevent.event
from locust import FastHttpUser, events, task
from locust.exception import StopUser

from scenarios.signing import sign_twilio

WEBHOOK_PATH = "/webhooks/twilio/sms"


class Plan:
    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque()
        self.first_t = 0.0
        self.start = 0.0
        self.speed = float(os.environ.get("RAIDSIM_LOAD_SPEED", "1"))
        self.duration = float(os.environ.get("RAIDSIM_LOAD_DURATION", "inf"))
        self.token = os.environ.get("RAIDSIM_LOAD_TOKEN", "")
        self.ordered = os.environ.get("RAIDSIM_LOAD_ORDERED", "1") != "0"
        self.in_flight = 0
        self.out: Any = None
        self.finished = False
        # in trace order: the answer to the message taken last, which the next one waits for
        self.previous_answered: gevent.event.Event | None = None

    def load(self) -> None:
        with open(os.environ["RAIDSIM_LOAD_PLAN"], encoding="utf-8") as handle:
            self.queue.extend(json.loads(line) for line in handle if line.strip())
        self.first_t = self.queue[0]["t"] if self.queue else 0.0
        self.out = open(os.environ["RAIDSIM_LOAD_OUT"], "a", encoding="utf-8")  # noqa: SIM115
        # the wall time the first message is due, which the fake provider's clock was set to
        self.start = float(os.environ.get("RAIDSIM_LOAD_START_AT") or time.time())

    def due(self, message: dict[str, Any]) -> float:
        return self.start + (message["t"] - self.first_t) / self.speed

    def record(self, line: dict[str, Any]) -> None:
        self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.out.flush()


PLAN = Plan()


@events.test_start.add_listener
def _on_start(environment: Any, **_kwargs: Any) -> None:
    PLAN.load()


@events.quitting.add_listener
def _on_quit(environment: Any, **_kwargs: Any) -> None:
    if PLAN.out is not None:
        PLAN.out.close()
        PLAN.out = None


class TwilioWebhook(FastHttpUser):
    """Posts the trace's messages as signed Twilio inbound-SMS webhooks."""

    def _finish(self) -> None:
        if not PLAN.finished and PLAN.in_flight == 0 and not PLAN.queue:
            PLAN.finished = True
            gevent.spawn(self.environment.runner.quit)
        raise StopUser()

    @task
    def send(self) -> None:
        if not PLAN.queue or time.time() - PLAN.start > PLAN.duration:
            PLAN.queue.clear()
            self._finish()
        message = PLAN.queue.popleft()
        PLAN.in_flight += 1
        before, answered = PLAN.previous_answered, gevent.event.Event()
        if PLAN.ordered:
            PLAN.previous_answered = answered
        try:
            due = PLAN.due(message)
            wait = due - time.time()
            if wait > 0:
                gevent.sleep(wait)  # pacing to the trace's (compressed) clock
            if before is not None:
                before.wait()  # the previous message has been decided
            form = {
                "MessageSid": message["id"], "SmsSid": message["id"],
                "SmsMessageSid": message["id"], "From": message["from"],
                "To": message["to"], "Body": message["body"], "NumMedia": "0",
                "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
            }
            url = self.host.rstrip("/") + WEBHOOK_PATH
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sign_twilio(PLAN.token, url, form.items()),
            }
            sent_at = time.time()
            status = 0
            decision = None
            with self.client.post(WEBHOOK_PATH, data=urlencode(form), headers=headers,
                                  name="twilio_sms", catch_response=True) as response:
                status = response.status_code or 0
                if status != 200:
                    response.failure(f"HTTP {status}")
                else:  # "reply first_contact", "drop budget_total", "duplicate"...
                    decision = response.headers.get("X-Raidsim-Decision")
            PLAN.record({"id": message["id"], "from": message["from"],
                         "label": message.get("label"), "t": message["t"],
                         "sent_at": sent_at, "latency_s": time.time() - sent_at,
                         "lag_s": max(0.0, sent_at - due),
                         "status": status, "decision": decision})
        finally:
            answered.set()
            PLAN.in_flight -= 1
        if not PLAN.queue:
            self._finish()
