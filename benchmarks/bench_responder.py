"""Webhook throughput of the responder against a bare Starlette endpoint, and p99 at 500 req/s.

    python benchmarks/bench_responder.py            # 3 rounds of 8 s, 3 latency windows of 8 s
    python benchmarks/bench_responder.py --quick    # 3 rounds of 2 s, 1 window of 5 s (CI)

Both servers run in child processes on loopback, one uvicorn worker each (uvloop
and httptools when installed), driven by ``wrk`` (one thread) replaying the same
precomputed requests:

* **responder**: ``raidsim serve`` with SQLite, over the whole path: signature
  check, dedup, policy, durable insert, ledger reservation, outbox. Every request
  is a distinct, correctly signed first contact, so each one reserves and queues
  a paid reply; the outbox sender runs in the same worker, paced at 100 calls/s,
  against a loopback fake Twilio in a third process.
* **baseline**: a bare Starlette endpoint that reads the body, parses it with
  ``parse_qs`` and answers the same empty TwiML.

Throughput: interleaved rounds (bare, responder, bare, responder...) of 32
connections; the ratio printed is the median of the per-round ratios (target
>= 0.35). Each run also reads the server's CPU time per request from /proc.

Latency: a fresh responder is offered a constant 500 req/s by an open-loop
schedule inside wrk's Lua script (one slot every 2 ms on a monotonic clock,
whatever the responses; 50 connections), so a slow answer does not slow the
offered load. The achieved rate and the sends that missed their slot by more
than 1 ms are printed next to the p99 (target <= 10 ms). Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
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
[fragments]
enabled = false
[evasion]
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
-- Replays precomputed, distinct, signed webhooks (BENCH_DATA: signature TAB body per line),
-- starting after line BENCH_OFFSET. With BENCH_RATE > 0 the requests follow an open-loop
-- schedule: one slot every 1000/BENCH_RATE ms on a monotonic clock, whatever the responses;
-- a connection that comes free takes the next slot and waits for it. A slot taken more than
-- 1 ms late (every connection was busy) is counted in `late`.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local bodies, sigs = {}, {}
for line in io.lines(os.getenv("BENCH_DATA")) do
  local sig, body = line:match("^([^\t]+)\t(.*)$")
  sigs[#sigs + 1] = sig
  bodies[#bodies + 1] = body
end
local i = tonumber(os.getenv("BENCH_OFFSET") or "0")
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local interval = rate > 0 and 1000 / rate or 0
wrapped, late, worst_late = 0, 0, 0
local next_at = nil
function request()
  i = i + 1
  if i > #bodies then i = 1; wrapped = 1 end
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded",
                                  ["X-Twilio-Signature"] = sigs[i]}, bodies[i])
end
if rate > 0 then
  function delay()
    local now = now_ms()
    if next_at == nil then next_at = now end
    local wait = next_at - now
    next_at = next_at + interval
    if wait < -1 then
      late = late + 1
      if -wait > worst_late then worst_late = -wait end
    end
    if wait <= 0 then return 0 end
    return math.floor(wait + 0.5)
  end
end
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function done(summary, latency, requests)
  local l, w, wr = 0, 0, 0
  for _, t in ipairs(threads) do
    l = l + t:get("late"); w = math.max(w, t:get("worst_late")); wr = math.max(wr, t:get("wrapped"))
  end
  io.write(string.format("BENCH %d %d %d %.1f %.1f %.1f %d %.1f %d\\n", summary.requests,
    summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, latency:percentile(50),
    latency:percentile(99), latency.max, l, w, wr))
end
"""


def lua_script(path: Path, requests: list[tuple[str, str]]) -> None:
    """A wrk script plus its data file (``path`` with .tsv): one signature and body a line."""
    data = path.with_suffix(".tsv")
    data.write_text("".join(f"{sig}\t{body}\n" for body, sig in requests))
    path.write_text(LUA)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def wrk(url: str, script: Path, *, seconds: float, connections: int, offset: int = 0,
        rate: float = 0.0, pid: int | None = None) -> dict[str, Any]:
    """One wrk run (one thread); ``rate`` > 0 offers that many requests/s on a fixed schedule.

    With the server's ``pid``, also its CPU time per request: less sensitive than req/s to
    other processes competing for the cores (they slow it only through caches).
    """
    cpu_before = cpu_seconds(pid)
    env = dict(os.environ, BENCH_OFFSET=str(offset), BENCH_RATE=str(rate),
               BENCH_DATA=str(script.with_suffix(".tsv")))
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
         url], capture_output=True, text=True, env=env, timeout=seconds + 60,
    )
    match = re.search(r"BENCH (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) ([\d.]+) (\d+)",
                      done.stdout)
    if done.returncode != 0 or not match:
        raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    requests, micros, errors = int(match[1]), int(match[2]), int(match[3])
    cpu_after = cpu_seconds(pid)
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and requests:
        cpu_ms = (cpu_after - cpu_before) * 1000 / requests
    return {"requests": requests, "errors": errors, "rps": requests / (micros / 1e6),
            "server_cpu_ms_per_request": cpu_ms,
            "p50_ms": float(match[4]) / 1000, "p99_ms": float(match[5]) / 1000,
            "max_ms": float(match[6]) / 1000, "late_sends": int(match[7]),
            "worst_late_ms": float(match[8]), "replayed_requests": bool(int(match[9]))}


def responder_env(work: Path, provider: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAIDSIM_")}
    policy = work / "bench-policy.toml"
    policy.write_text(PLAIN_POLICY)
    env.update(RAIDSIM_TWILIO_ACCOUNT_SID=ACCOUNT_SID, RAIDSIM_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               RAIDSIM_TWILIO_API_BASE=provider, RAIDSIM_POLICY_FILE=str(policy),
               RAIDSIM_LOG_LEVEL="WARNING", RAIDSIM_SEND_RATE_PER_S=str(SEND_RATE),
               # The paced outbox ends every run with a backlog: don't spend 10 s draining it.
               RAIDSIM_DRAIN_TIMEOUT_S="1")
    return env


RATIO_TARGET = 0.35
P99_TARGET_MS = 10.0
OFFERED_RPS = 500
# Data lines per second of a responder run. Each run starts where the previous one stopped
# (completed requests plus those that may still have been in flight), so no request is
# ever sent twice while lines last; past the end wrk wraps and the round is flagged.
MAX_RESPONDER_RPS = 12_000


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _cpu_ratio(base: dict[str, Any], full: dict[str, Any]) -> float | None:
    """Bare CPU per request over the responder's: the throughput ratio of CPU-bound servers."""
    bare_ms, full_ms = base["server_cpu_ms_per_request"], full["server_cpu_ms_per_request"]
    return None if not bare_ms or not full_ms else float(bare_ms / full_ms)


def _cpu_note(base: dict[str, Any], full: dict[str, Any]) -> str:
    ratio = _cpu_ratio(base, full)
    if ratio is None:
        return ""
    return (f"   server CPU/request: bare {base['server_cpu_ms_per_request']:.3f} ms,"
            f" responder {full['server_cpu_ms_per_request']:.3f} ms (ratio {ratio:.3f})")


def _busy_note(run: dict[str, Any]) -> str:
    cpu_ms = run["server_cpu_ms_per_request"]
    return "" if cpu_ms is None else f", server CPU busy {cpu_ms * run['rps'] / 10:.0f}%"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI size: 2 s throughput runs x 3 rounds, one 5 s latency window")
    parser.add_argument("--rounds", type=int, help="interleaved bare/responder throughput rounds")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--ports", metavar="FIRST", type=int,
                        help="listen on FIRST..FIRST+3 on 127.0.0.1 (fake provider, bare "
                        "Starlette, responder, latency run) instead of four free ports, "
                        "where only some ports may be used")
    args = parser.parse_args(argv)
    if args.ports is not None and not 1 <= args.ports <= 65532:
        parser.error("--ports FIRST must be in 1..65532 (four ports from it)")
    if args.serve_bare:
        run_child("bare", args.serve_bare)
        return 0
    if args.serve_fake:
        run_child("fake", args.serve_fake)
        return 0
    if shutil.which("wrk") is None:
        print("bench_responder: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    # A SIGTERM unwinds the ``process`` contexts, so no server is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Three rounds even in the short form: the median of two is their mean, and one round
    # slowed by another process on a 2-core machine moved it by half its dip.
    seconds = 2 if args.quick else 8
    rounds = args.rounds or 3
    lat_seconds, lat_windows = (5, 1) if args.quick else (8, 3)
    python = sys.executable
    results: dict[str, Any] = {"seconds": seconds, "rounds": rounds, "cores": os.cpu_count(),
                               "load_before": _load()}
    print(f"machine: {os.cpu_count()} cores, load average {results['load_before']}"
          " (1/5/15 min; other processes skew every figure)")
    with tempfile.TemporaryDirectory(prefix="raidsim-bench-") as tmp:
        work = Path(tmp)
        fake_port, bare_port, resp_port, lat_port = (
            range(args.ports, args.ports + 4) if args.ports else (free_port() for _ in range(4)))
        hook = "/webhooks/twilio/sms"
        bare_url = f"http://127.0.0.1:{bare_port}{hook}"
        resp_url = f"http://127.0.0.1:{resp_port}{hook}"
        lat_url = f"http://127.0.0.1:{lat_port}{hook}"
        per_run = seconds * MAX_RESPONDER_RPS
        throughput_script, latency_script = work / "throughput.lua", work / "latency.lua"
        lua_script(throughput_script, signed_requests(resp_url, 0, per_run * (rounds + 1)))
        lat_lines = OFFERED_RPS * (lat_seconds * lat_windows + 2) + 1000
        lua_script(latency_script, signed_requests(lat_url, 10_000_000, lat_lines))
        # The bare endpoint does not check signatures: the same script serves it.
        bench = str(Path(__file__).resolve())
        env = dict(os.environ)
        with process([python, bench, "--serve-fake", str(fake_port)], env, work,
                     f"http://127.0.0.1:{fake_port}/", "POST"):
            provider = f"http://127.0.0.1:{fake_port}"
            run_dir = work / "throughput"
            run_dir.mkdir()
            with process([python, bench, "--serve-bare", str(bare_port)], env, work,
                         f"http://127.0.0.1:{bare_port}/") as bare_child, \
                 process([python, "-m", "raidsim", "serve", "--port", str(resp_port)],
                         responder_env(run_dir, provider), run_dir,
                         f"http://127.0.0.1:{resp_port}/readyz") as resp_child:
                # Warm-ups. Every responder run takes the next unused requests: a duplicate
                # (already stored) is far cheaper than a first contact.
                wrk(bare_url, throughput_script, seconds=1, connections=32)
                warm = wrk(resp_url, throughput_script, seconds=1, connections=32)
                next_line = warm["requests"] + 2 * 32
                # Interleaved A/B rounds: each ratio compares two runs a few seconds apart.
                runs = []
                for k in range(rounds):
                    base = wrk(bare_url, throughput_script, seconds=seconds, connections=32,
                               pid=bare_child.pid)
                    full = wrk(resp_url, throughput_script, seconds=seconds, connections=32,
                               offset=next_line, pid=resp_child.pid)
                    next_line += full["requests"] + 2 * 32
                    runs.append({"baseline": base, "responder": full,
                                 "ratio": full["rps"] / base["rps"],
                                 "cpu_ratio": _cpu_ratio(base, full)})
                    print(f"  round {k + 1}: bare {base['rps']:7.0f} req/s"
                          f" (p99 {base['p99_ms']:5.2f} ms)   responder {full['rps']:7.0f} req/s"
                          f" (p99 {full['p99_ms']:6.2f} ms)   ratio {runs[-1]['ratio']:.3f}"
                          + _cpu_note(base, full)
                          + ("   [requests replayed: duplicates]" if full["replayed_requests"]
                             else ""))
                results["rounds_detail"] = runs
                results["replies_queued_or_sent"] = _replies(run_dir)
            lat_dir = work / "latency"
            lat_dir.mkdir()
            with process([python, "-m", "raidsim", "serve", "--port", str(lat_port)],
                         responder_env(lat_dir, provider), lat_dir,
                         f"http://127.0.0.1:{lat_port}/readyz") as lat_child:
                wrk(lat_url, latency_script, seconds=1, connections=50, rate=OFFERED_RPS,
                    offset=lat_lines - OFFERED_RPS - 500)  # warm-up
                windows = []
                for k in range(lat_windows):
                    lat = wrk(lat_url, latency_script, seconds=lat_seconds, connections=50,
                              rate=OFFERED_RPS, offset=k * OFFERED_RPS * lat_seconds,
                              pid=lat_child.pid)
                    windows.append(lat)
                    print(f"  latency window {k + 1}: offered {OFFERED_RPS} req/s, achieved"
                          f" {lat['rps']:.1f} req/s, p50 {lat['p50_ms']:.2f} ms, p99"
                          f" {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.1f} ms, late sends"
                          f" {lat['late_sends']} (worst {lat['worst_late_ms']:.1f} ms),"
                          f" errors {lat['errors']}"
                          + _busy_note(lat))
                results["latency_windows"] = windows
    results["load_after"] = _load()
    ratio = _median([r["ratio"] for r in runs])
    base_rps = _median([r["baseline"]["rps"] for r in runs])
    full_rps = _median([r["responder"]["rps"] for r in runs])
    p99 = _median([w["p99_ms"] for w in windows])
    achieved = _median([w["rps"] for w in windows])
    late = sum(w["late_sends"] for w in windows)
    sent = sum(w["requests"] for w in windows)
    errors = sum(w["errors"] for w in windows) + sum(r["responder"]["errors"] for r in runs)
    held_rate = achieved >= 0.98 * OFFERED_RPS and late <= 0.01 * sent
    ratio_ok = ratio >= RATIO_TARGET
    p99_ok = p99 <= P99_TARGET_MS and held_rate and errors == 0
    results.update(ratio=round(ratio, 3), baseline_rps=round(base_rps),
                   responder_rps=round(full_rps), p99_ms=p99, achieved_rps=round(achieved, 1),
                   offered_rps=OFFERED_RPS,
                   late_sends=late, errors=errors, ratio_pass=ratio_ok, p99_pass=p99_ok)
    print(f"load average after: {results['load_after']}")
    print(f"throughput (median of {rounds} interleaved rounds, wrk -t1 -c32, {seconds} s each):"
          f" bare Starlette {base_rps:.0f} req/s, responder (SQLite, full path)"
          f" {full_rps:.0f} req/s, {results['replies_queued_or_sent']} replies reserved")
    cpu_ratios = [r["cpu_ratio"] for r in runs if r["cpu_ratio"] is not None]
    if cpu_ratios:
        results["cpu_ratio"] = round(_median(cpu_ratios), 3)
        print(f"cross-check: server CPU per request, bare over responder (median):"
              f" {results['cpu_ratio']:.3f} (what the ratio tends to when the server's core is"
              " not shared)")
    print(f"RATIO  {ratio:.3f}  (median of per-round ratios; target >= {RATIO_TARGET})"
          f"  {'PASS' if ratio_ok else 'MISS'}")
    print(f"P99    {p99:.2f} ms at {OFFERED_RPS} req/s offered, {achieved:.1f} req/s achieved"
          f" (median of {lat_windows} x {lat_seconds} s; target <= {P99_TARGET_MS:g} ms, rate"
          f" held, no errors)  {'PASS' if p99_ok else 'MISS'}"
          + ("" if held_rate else "  [offered rate not held: late sends or low achieved rate]"))
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
