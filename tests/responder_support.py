"""Test doubles for the responder: a loopback Twilio API and ``raidsim serve`` processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
OUR_NUMBER = "+33644649021"

# A policy that replies to every first contact: no surge hold, no raid heuristics.
PLAIN_POLICY = """
name = "plain"
[surge]
enabled = false
[templates]
enabled = false
[number_blocks]
enabled = false
[repeats]
enabled = false
[fragments]
enabled = false
[evasion]
enabled = false
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@dataclass
class SentSms:
    path: str
    auth: tuple[str, str] | None
    form: dict[str, str]


@dataclass
class FakeTwilio:
    """A real HTTP server on loopback speaking the Messages API; records what it got."""

    responses: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    sent: list[SentSms] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, path: str, auth_header: str | None, body: bytes) -> tuple[int, bytes,
                                                                             dict[str, str]]:
        auth = None
        if auth_header and auth_header.startswith("Basic "):
            user, _, password = base64.b64decode(auth_header[6:]).decode().partition(":")
            auth = (user, password)
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        with self.lock:
            self.sent.append(SentSms(path, auth, form))
            count = len(self.sent)
            scripted = self.responses.pop(0) if self.responses else None
        if scripted is not None:
            status, payload, headers = scripted
            return status, json.dumps(payload).encode(), headers
        payload = {"sid": f"SMout{count:06d}", "status": "queued", "num_segments": "2",
                   "price": None}
        return 201, json.dumps(payload).encode(), {}

    def count(self) -> int:
        with self.lock:
            return len(self.sent)


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, body, headers = fake.handle(self.path, self.headers.get("Authorization"),
                                                self.rfile.read(length))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: no inherited RAIDSIM_* settings, only what the test gives."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAIDSIM_")}
    env.update(RAIDSIM_TWILIO_ACCOUNT_SID=ACCOUNT_SID, RAIDSIM_TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    env.update(extra)
    return env


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(env: Mapping[str, str], cwd: Path, *, args: tuple[str, ...] = (),
          ready_timeout: float = 30.0, port: int | None = None) -> Iterator[Served]:
    """``raidsim serve`` as a subprocess on ``port`` (default: a free one); stopped with
    SIGTERM afterwards."""
    port = free_port() if port is None else port
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "raidsim", "serve", "--port", str(port), *args],
            cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"raidsim serve exited early:\n{served.output()}")
        try:
            return httpx.get(served.url + "/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_until(ready, ready_timeout), f"not ready in time:\n{served.output()}"
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def fake_provider(cwd: Path, env: Mapping[str, str], *args: str) -> Iterator[str]:
    """``raidsim fake-provider ARGS`` as a subprocess on a free port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = cwd / f"fake-provider-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "raidsim", "fake-provider",
                                    "--port", str(port), *args], cwd=cwd, env=dict(env),
                                   stdout=out, stderr=subprocess.STDOUT)

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(url + "/_fake/bill", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_until(ready, 20.0), log.read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def twilio_form(sid: str, sender: str, body: str = "Salut, c'est qui ?",
                to: str = OUR_NUMBER) -> dict[str, str]:
    return {
        "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT_SID,
        "From": sender, "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1",
        "SmsStatus": "received", "ApiVersion": "2010-04-01", "FromCountry": "FR",
    }


def twilio_headers(url: str, form: Mapping[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    """Headers as Twilio sends them, signed by the official library."""
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(token).compute_signature(url, dict(form))
    return {"X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}


def children_of(pid: int, command: str = "") -> list[int]:
    """The pids of ``pid``'s live child processes whose command line holds ``command``
    (Linux: read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != pid or fields[0] == "Z":
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command in cmdline:
            found.append(int(entry.name))
    return found


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``raidsim serve`` could listen on host:port (bound as uvicorn binds)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@contextmanager
def responders(settings: Any, url: str, count: int, now: float) -> Iterator[list[Any]]:
    """``count`` ``Responder``s started at ``now`` on the database at ``url``, each with its
    own connection, as separate processes have; their stores closed on exit."""
    from responder.service import Responder
    from responder.store import open_store

    stores = [open_store(url) for _ in range(count)]
    try:
        cores = [Responder(settings, store) for store in stores]
        for core in cores:
            core.start(now=now)
        yield cores
    finally:
        for store in stores:
            store.close()
