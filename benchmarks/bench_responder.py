"""Webhook throughput of the responder against a bare Starlette endpoint, and p99 at 500 req/s.

    python benchmarks/bench_responder.py            # 8 s per throughput run
    python benchmarks/bench_responder.py --quick    # 3 s per run

Both servers run in child processes on loopback, one uvicorn worker each (uvloop
and httptools when installed), measured in the same run with the same load tool
(``wrk``, one thread, 32 connections) and the same requests:

* **responder**: ``raidsim serve`` with SQLite, over the whole path: signature
  check, dedup, policy, durable insert, ledger reservation, outbox. Every request
  is a distinct, correctly signed first contact (precomputed into the wrk Lua
  script), so each one reserves and queues a paid reply; the outbox sender runs
  in the same worker and delivers to a loopback fake Twilio in a third process.
* **baseline**: a bare Starlette endpoint that reads the body, parses it with
  ``parse_qs`` and answers the same empty TwiML.

The ratio of requests/s is printed (target >= 0.35). Then wrk offers about 500
req/s (10 connections, each pausing 20 ms between requests; wrk is closed-loop,
so the achieved rate is printed too) to a fresh responder and the p99 latency
is printed (target <= 10 ms). Needs ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SEND_RATE = 100  # provider calls/s: a real sender is paced by the provider (1-100 MPS)
PLAIN_POLICY = """name = "bench"
[surge]
enabled = false
[templates]
enabled = false
[number_blocks]
enabled = false
[repeats]
enabled = false
"""


# -- the servers run in child processes: `python bench_responder.py --serve-bare PORT` ----------


def bare_app() -> Any:
    from urllib.parse import parse_qs

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def hook(request: Request) -> Response:
        parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True)
        return Response(EMPTY_TWIML, media_type="text/xml")

    return Starlette(routes=[Route("/webhooks/twilio/sms", hook, methods=["POST"])])


async def fake_twilio(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI Messages API: 201 with a sid, nothing else."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"sid": "SMbench", "status": "queued", "num_segments": "2"}'
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def run_child(kind: str, port: int) -> None:
    import uvicorn

    app = bare_app() if kind == "bare" else fake_twilio
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- orchestration ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def process(argv: list[str], env: dict[str, str], cwd: Path, ready_url: str,
            method: str = "GET") -> Iterator[subprocess.Popen[bytes]]:
    log = open(cwd / f"child-{os.getpid()}-{len(os.listdir(cwd))}.log", "wb")  # noqa: SIM115
    child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if child.poll() is not None:
                raise SystemExit(f"child exited early: {' '.join(argv)} (see {log.name})")
            try:
                httpx.request(method, ready_url, timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"child not ready: {' '.join(argv)}") from None
                time.sleep(0.1)
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
        log.close()


def signed_requests(url: str, start: int, count: int) -> list[tuple[str, str]]:
    from responder.signing import twilio_signature

    out = []
    for k in range(start, start + count):
        form = [("MessageSid", f"SM{k:032x}"), ("AccountSid", ACCOUNT_SID),
                ("From", f"+336{k:08d}"), ("To", "+33644649021"), ("Body", "Salut, c'est qui ?"),
                ("NumMedia", "0"), ("NumSegments", "1"), ("SmsStatus", "received"),
                ("ApiVersion", "2010-04-01")]
        out.append((urlencode(form), twilio_signature(AUTH_TOKEN, url, form)))
    return out


LUA = """
local bodies, sigs = {}, {}
for line in io.lines(os.getenv("BENCH_DATA")) do
  local sig, body = line:match("^([^\t]+)\t(.*)$")
  sigs[#sigs + 1] = sig
  bodies[#bodies + 1] = body
end
local i = 0
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "0")
function request()
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded",
                                  ["X-Twilio-Signature"] = sigs[i]}, bodies[i])
end
function delay() return pause end
function done(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %.1f %.1f %.1f\\n", summary.requests,
    summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
end
"""


def lua_script(path: Path, requests: list[tuple[str, str]]) -> None:
    """A wrk script plus its data file (``path`` with .tsv): one signature and body a line."""
    data = path.with_suffix(".tsv")
    data.write_text("".join(f"{sig}\t{body}\n" for body, sig in requests))
    path.write_text(LUA)


def wrk(url: str, script: Path, *, seconds: int, connections: int,
        pause_ms: int = 0) -> dict[str, float]:
    env = dict(os.environ, BENCH_PAUSE_MS=str(pause_ms), BENCH_DATA=str(script.with_suffix(".tsv")))
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
         url], capture_output=True, text=True, env=env, timeout=seconds + 60,
    )
    match = re.search(r"BENCH (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", done.stdout)
    if done.returncode != 0 or not match:
        raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    requests, micros, errors = int(match[1]), int(match[2]), int(match[3])
    return {"requests": requests, "errors": errors, "rps": requests / (micros / 1e6),
            "p50_ms": float(match[4]) / 1000, "p99_ms": float(match[5]) / 1000,
            "max_ms": float(match[6]) / 1000}


def responder_env(work: Path, provider: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAIDSIM_")}
    policy = work / "bench-policy.toml"
    policy.write_text(PLAIN_POLICY)
    env.update(RAIDSIM_TWILIO_ACCOUNT_SID=ACCOUNT_SID, RAIDSIM_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               RAIDSIM_TWILIO_API_BASE=provider, RAIDSIM_POLICY_FILE=str(policy),
               RAIDSIM_LOG_LEVEL="WARNING", RAIDSIM_SEND_RATE_PER_S=str(SEND_RATE))
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs instead of 8 s")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.serve_bare:
        run_child("bare", args.serve_bare)
        return 0
    if args.serve_fake:
        run_child("fake", args.serve_fake)
        return 0
    if shutil.which("wrk") is None:
        print("bench_responder: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    seconds = 3 if args.quick else 8
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="raidsim-bench-") as tmp:
        work = Path(tmp)
        fake_port, bare_port, resp_port, lat_port = (free_port() for _ in range(4))
        hook = "/webhooks/twilio/sms"
        resp_url = f"http://127.0.0.1:{resp_port}{hook}"
        lat_url = f"http://127.0.0.1:{lat_port}{hook}"
        per_run = 40_000 if args.quick else 100_000  # more than a run can send: all distinct
        throughput_script, latency_script = work / "throughput.lua", work / "latency.lua"
        lua_script(throughput_script, signed_requests(resp_url, 0, per_run))
        lua_script(latency_script, signed_requests(lat_url, per_run, 20_000))
        # The bare endpoint does not check signatures: the same script serves it.
        bench = str(Path(__file__).resolve())
        env = dict(os.environ)
        results: dict[str, Any] = {"seconds": seconds}
        with process([python, bench, "--serve-fake", str(fake_port)], env, work,
                     f"http://127.0.0.1:{fake_port}/", "POST"):
            provider = f"http://127.0.0.1:{fake_port}"
            with process([python, bench, "--serve-bare", str(bare_port)], env, work,
                         f"http://127.0.0.1:{bare_port}/"):
                wrk(f"http://127.0.0.1:{bare_port}{hook}", throughput_script, seconds=1,
                    connections=32)  # warm-up
                results["baseline"] = wrk(f"http://127.0.0.1:{bare_port}{hook}",
                                          throughput_script, seconds=seconds, connections=32)
            run_dir = work / "throughput"
            run_dir.mkdir()
            with process([python, "-m", "raidsim", "serve", "--port", str(resp_port)],
                         responder_env(run_dir, provider), run_dir,
                         f"http://127.0.0.1:{resp_port}/readyz"):
                results["responder"] = wrk(resp_url, throughput_script, seconds=seconds,
                                           connections=32)
                results["responder"]["replies_queued_or_sent"] = _replies(run_dir)
            lat_dir = work / "latency"
            lat_dir.mkdir()
            with process([python, "-m", "raidsim", "serve", "--port", str(lat_port)],
                         responder_env(lat_dir, provider), lat_dir,
                         f"http://127.0.0.1:{lat_port}/readyz"):
                results["latency_500rps"] = wrk(lat_url, latency_script, seconds=seconds,
                                                connections=10, pause_ms=20)
    base, full = results["baseline"], results["responder"]
    ratio = full["rps"] / base["rps"]
    lat = results["latency_500rps"]
    results["ratio"] = round(ratio, 3)
    print(f"bare Starlette (parse form)  {base['rps']:9.0f} req/s   p99 {base['p99_ms']:6.2f} ms")
    print(f"responder, SQLite full path  {full['rps']:9.0f} req/s   p99 {full['p99_ms']:6.2f} ms"
          f"   ({full['replies_queued_or_sent']} replies reserved)")
    print(f"ratio {ratio:.3f}  (target >= 0.35)")
    print(f"at ~500 req/s offered: achieved {lat['rps']:.0f} req/s, p50 {lat['p50_ms']:.2f} ms,"
          f" p99 {lat['p99_ms']:.2f} ms  (target p99 <= 10 ms), errors {lat['errors']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _replies(work: Path) -> int:
    import sqlite3

    with sqlite3.connect(work / "raidsim.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
