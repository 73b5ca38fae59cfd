"""``raidsim load`` end to end: Locust replays a trace window against ``raidsim serve``,
whose replies go to ``raidsim fake-provider``; results, report and gate come back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from responder_support import (
    ADMIN_TOKEN,
    AUTH_TOKEN,
    base_env,
    fake_provider,
    free_port,
    serve,
    wait_until,
)

from raidsim.commands.load import (
    build_results,
    own_replies,
    parse_metrics,
    plan_records,
    refused_warning,
)
from sim.trace import TraceRecord

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "anti-relous-2017.toml"


def test_load_replays_a_window_and_scores_it_from_the_bill(tmp_path: Path) -> None:
    """A few hundred signed webhooks over real HTTP; spend comes from the provider's bill."""
    env = base_env(RAIDSIM_ADMIN_TOKEN=ADMIN_TOKEN)
    with fake_provider(tmp_path, env) as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'load.db'}")
        with serve(served_env, tmp_path) as served:
            out = tmp_path / "results.json"
            command = [sys.executable, "-m", "raidsim", "load", str(SCENARIO),
                       "--from", "6d12h30m", "--speed", "400", "--max-messages", "300",
                       "--users", "10", "--settle", "3s", "--target", served.url,
                       "--provider", provider, "--auth-token", AUTH_TOKEN,
                       "--admin-token", ADMIN_TOKEN, "--json", str(out),
                       "--report", str(tmp_path / "report"),
                       "--threshold", "spend_eur<=1000"]
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=120)
            bill = httpx.get(provider + "/_fake/bill").json()
    # the scenario's coverage threshold fails: held replies wait 20 wall minutes
    assert done.returncode == 1, done.stderr
    results = json.loads(out.read_text())
    assert results["messages"]["total"] == 300
    assert results["messages"]["legit"] + results["messages"]["raid"] == 300
    assert results["live"]["http_status"] == {"200": 300}
    assert Decimal(str(results["spend_eur"])) == Decimal(bill["amount_eur"]) > 0
    assert results["replies"]["total"] == bill["count"]
    assert results["replies"]["legit"] + results["replies"]["raid"] == bill["count"]
    assert Decimal(str(results["spend_eur"])) == Decimal("0.16") * bill["count"]
    assert sum(v for k, v in results["live"]["responder"]["decisions"].items()
               if k.startswith("inbound.")) == 300
    checks = {t["name"]: t["ok"] for t in results["thresholds"]}
    assert checks["spend_eur"] is True and checks["legit_coverage"] is False
    # the keys simulate writes, computed live: every accepted webhook in the senders
    # histogram and the inbound series, the spend series ending on the bill, and every
    # webhook that was not held in decisions.by_rule, with the released ones counted
    senders = results["senders"]
    assert sum(int(k) * v for hist in senders["messages_per_sender"].values()
               for k, v in hist.items()) == 300
    assert senders["legit"] == results["legit_senders"] and senders["total"] >= senders["legit"]
    timeseries = results["timeseries"]
    assert timeseries["start_s"] == 6 * 86400 + 12 * 3600 + 1800  # --from, a whole minute
    assert sum(sum(series) for series in timeseries["inbound"].values()) == 300
    assert Decimal(str(timeseries["spend_eur"][-1])) == Decimal(str(results["spend_eur"]))
    counters = results["live"]["responder"]["decisions"]
    released = sum(v for k, v in counters.items() if k.startswith("released."))
    deferred = sum(v for k, v in counters.items() if k.startswith("inbound.defer:"))
    assert results["decisions"]["held"] == deferred
    assert sum(results["decisions"]["by_rule"].values()) == 300 - deferred + released
    # every final decision is in the series: the released ones at the read that saw them
    assert sum(sum(s) for s in timeseries["decisions"].values()) == 300 - deferred + released
    # with the admin API, the keys that read the responder: its reply, its raid-mode
    # periods (none or some, within the run), its replies' outcomes (a clean provider)
    assert results["reply"]["text"] and results["reply"]["segments"] >= 1
    assert results["replies"]["unknown_outcome"] == 0 == results["replies"]["rejected"]
    assert results["provider"] == {"errors": {}}
    start, end = timeseries["start_s"], results["duration_s"]
    assert end >= 6 * 86400 + 12 * 3600 + 1800
    assert all(start <= a < b <= end for a, b in results["raid_mode"]["periods"])
    assert (tmp_path / "report" / "report.html").exists()
    assert (tmp_path / "report" / "junit.xml").exists()


def test_load_against_a_slow_throughput_limited_provider(tmp_path: Path) -> None:
    """The fake answers after a lognormal latency and takes 10 segments a second: the run
    still settles, every billed reply is counted, and the bill shows what was injected."""
    env = base_env()
    shaping = ("--latency-median", "40ms", "--latency-p95", "150ms",
               "--segments-per-second", "10", "--seed", "3")
    with fake_provider(tmp_path, env, *shaping) as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'slow.db'}")
        with serve(served_env, tmp_path) as served:
            out = tmp_path / "results.json"
            done = subprocess.run(
                [sys.executable, "-m", "raidsim", "load", str(SCENARIO), "--from", "6d12h30m",
                 "--speed", "400", "--max-messages", "40", "--users", "5", "--settle", "60s",
                 "--target", served.url, "--provider", provider, "--auth-token", AUTH_TOKEN,
                 "--json", str(out), "--threshold", "spend_eur<=1000"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
            bill = httpx.get(provider + "/_fake/bill").json()
            billed = httpx.get(provider + "/_fake/messages").json()
    assert done.returncode in (0, 1), done.stderr  # 1: the scenario's coverage gate
    results = json.loads(out.read_text())
    assert results["messages"]["total"] == 40
    assert results["replies"]["total"] == bill["count"] > 1
    assert bill["shaping"] == {"latency_median_s": 0.04, "latency_p95_s": 0.15,
                               "segments_per_second": 10.0, "speed": 1.0}
    assert results["live"]["bill"]["shaping"] == bill["shaping"]  # the run says how it ran
    injected = bill["injected"]
    assert injected["latency_s"]["count"] >= bill["count"]  # retries pay it too
    assert injected["latency_s"]["total"] > 0
    assert injected["queue_wait_s"]["count"] == sum(bill["requests"].values())
    # the provider took at most 10 segments a second: the receipts are spread out (each
    # but the last started waits for the segments before it; a little slack for a late
    # wake-up of the first)
    segments = sum(m["segments"] for m in billed) - max(m["segments"] for m in billed)
    span = max(m["wall_at"] for m in billed) - min(m["wall_at"] for m in billed)
    assert span >= 0.9 * segments / 10.0 - 0.05


def test_abort_on_fail_stops_the_run_early(tmp_path: Path) -> None:
    """An abort_on_fail spend bound stops Locust as soon as the bill breaks it. The
    webhooks in flight then reached the responder and were answered: with the answered
    message named (RAIDSIM_PUBLIC_URL), those replies are this run's, not an earlier
    run's (they were: spend_eur 1.12 on a bill of 3.04, and a warning)."""
    env = base_env(RAIDSIM_ADMIN_TOKEN=ADMIN_TOKEN)
    scenario = tmp_path / "abort.toml"
    scenario.write_text(SCENARIO.read_text().split("[thresholds]")[0] + (
        "[thresholds]\nspend_eur = { op = \"<=\", limit = \"1\", abort_on_fail = true }\n"))
    port = free_port()
    with fake_provider(tmp_path, env) as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_PUBLIC_URL=f"http://127.0.0.1:{port}",
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'abort.db'}")
        with serve(served_env, tmp_path, port=port) as served:
            out = tmp_path / "results.json"
            done = subprocess.run(
                [sys.executable, "-m", "raidsim", "load", str(scenario), "--speed", "400",
                 "--max-messages", "300", "--settle", "5s", "--target", served.url,
                 "--provider", provider, "--auth-token", AUTH_TOKEN, "--json", str(out)],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            bill = httpx.get(provider + "/_fake/bill").json()
            billed = httpx.get(provider + "/_fake/messages").json()
    assert done.returncode == 1, done.stderr
    assert all(m.get("reply_to") for m in billed)  # each reply names its message
    assert "not in this run's plan" not in done.stderr
    assert "raidsim load: aborting: threshold failed: spend_eur <= " in done.stderr
    results = json.loads(out.read_text())
    assert results["live"]["aborted"] == ["spend_eur"]
    decided = sum(v for k, v in results["live"]["responder"]["decisions"].items()
                  if k.startswith("inbound."))
    answered = results["live"]["http_status"].get("200", 0)
    assert decided >= answered
    if decided > answered:  # some were in flight when Locust stopped: said, not hidden
        assert f"{decided - answered} were in flight" in done.stderr
    assert results["messages"]["total"] < 300
    assert results["passed"] is False
    assert results["live"]["foreign_replies"]["count"] == 0
    assert Decimal(str(results["spend_eur"])) == Decimal(bill["amount_eur"]) > 1
    assert results["replies"]["total"] == bill["count"]


def _inbound(url: str) -> int:
    """Webhooks the responder has decided so far (its inbound decision counters)."""
    metrics = parse_metrics(httpx.get(url + "/metrics", timeout=5.0).text)
    return sum(n for key, n in metrics["decisions"].items() if key.startswith("inbound."))


def _processes_with(text: str) -> list[int]:
    """The pids of this user's processes whose environment holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone, or another user's
                continue
    return found


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_load_stops_its_locust_too(tmp_path: Path, signum: int, code: int) -> None:
    """SIGTERM ended raidsim load alone: its Locust child, re-parented to PID 1, kept
    posting signed webhooks for the rest of its run time (real money at a real
    responder). Now load stops Locust's whole process group first, then exits 143 (130 on
    Ctrl-C), and nothing reaches the responder afterwards."""
    trace = tmp_path / "slow.jsonl"
    with trace.open("w", encoding="utf-8") as handle:  # 10 webhooks a second for 60 s
        for i in range(600):
            handle.write(json.dumps({"id": f"SM{i:032x}", "t": i / 10,
                                     "from": f"+336{i:08d}", "to": "+33644649021",
                                     "body": "Bonjour", "label": "legit"}) + "\n")
    work = tmp_path / "work"  # load's temporary folder, so its plan path is this test's
    work.mkdir()
    env = base_env()
    with fake_provider(tmp_path, env) as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'signal.db'}")
        with serve(served_env, tmp_path) as served:
            load = subprocess.Popen(
                [sys.executable, "-m", "raidsim", "load", "--trace", str(trace),
                 "--speed", "1", "--users", "5", "--settle", "1s", "--target", served.url,
                 "--provider", provider, "--auth-token", AUTH_TOKEN],
                cwd=tmp_path, env=dict(env, TMPDIR=str(work)), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            marker = f"RAIDSIM_LOAD_PLAN={work}"
            try:
                assert wait_until(lambda: _inbound(served.url) >= 3, 60.0, 0.1)
                assert load.poll() is None and _processes_with(marker)  # Locust is running
                load.send_signal(signum)
                _, stderr = load.communicate(timeout=40)
                assert load.returncode == code, stderr
                assert wait_until(lambda: not _processes_with(marker), 5.0), stderr
                before = _inbound(served.url)
                time.sleep(1.5)  # the window in which a stray Locust would post ~15
                assert _inbound(served.url) == before
            finally:
                for pid in _processes_with(marker):  # the old code's stray Locust
                    os.kill(pid, signal.SIGKILL)
                if load.poll() is None:
                    load.kill()
                    load.communicate(timeout=10)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """Non-loopback targets and unreachable services are usage errors."""
    base = [sys.executable, "-m", "raidsim", "load", str(SCENARIO), "--auth-token", "t"]
    remote = subprocess.run([*base, "--target", "http://10.1.2.3:8000"], env=base_env(),
                            capture_output=True, text=True, timeout=60)
    assert remote.returncode == 2 and "loopback" in remote.stderr
    port = free_port()
    down = subprocess.run([*base, "--target", f"http://127.0.0.1:{port}", "--provider",
                                  f"http://127.0.0.1:{port}", "--max-messages", "5"],
                          env=base_env(), capture_output=True, text=True, timeout=60)
    assert down.returncode == 2 and "cannot reach" in down.stderr


def test_results_shape_and_metrics_parsing() -> None:
    """Coverage and latency over legit senders; replies labelled by their recipient."""
    sent = [
        {"id": "a", "from": "+33600000001", "label": "legit", "status": 200, "sent_at": 10.0},
        {"id": "b", "from": "+33600000002", "label": "legit", "status": 200, "sent_at": 11.0},
        {"id": "c", "from": "+33700000003", "label": "raid", "status": 200, "sent_at": 12.0},
        {"id": "d", "from": "+33700000004", "label": "raid", "status": 503, "sent_at": 13.0},
    ]
    billed = [{"to": "+33600000001", "segments": 1, "wall_at": 10.5},
              {"to": "+33700000003", "segments": 1, "wall_at": 12.2}]
    results = build_results(name="x", seed=1, sent=sent, billed=billed,
                            bill={"amount_eur": "0.32", "amount_micros": 320000},
                            reply_cost_micros=160000, cap_eur=None, extra={})
    assert results["messages"] == {"total": 3, "legit": 2, "raid": 1, "unlabelled": 0}
    assert results["replies"] == {"total": 2, "legit": 1, "raid": 1, "unlabelled": 0,
                                  "segments": 2}
    assert results["legit_coverage"] == 0.5 and results["reply_latency_s"]["p50"] == 0.5
    assert results["oracle_spend_eur"] == Decimal("0.32")
    assert results["naive_spend_eur"] == Decimal("0.48") and results["spend_vs_oracle"] == 1.0
    text = ('# HELP x\nraidsim_inbound_messages_total{decision="drop",rule="raid_template"} 4.0\n'
            'raidsim_released_messages_total{decision="reply",rule="released"} 2.0\n'
            'raidsim_replies_total{outcome="sent"} 5.0\n'
            'raidsim_replies_total{outcome="unknown"} 1.0\n'
            'raidsim_provider_errors_total{kind="http_429"} 2.0\n'
            'raidsim_held_replies 3.0\n')
    assert parse_metrics(text) == {"decisions": {"inbound.drop:raid_template": 4,
                                                 "released.reply:released": 2},
                                   "replies": {"sent": 5, "unknown": 1},
                                   "provider_errors": {"http_429": 2},
                                   "raidsim_held_replies": 3.0}
    records = [TraceRecord(float(t), "+33600000001", "+33644649021", "x") for t in range(10)]
    chosen = list(plan_records(records, start_s=2.0, speed=2.0, max_messages=5,
                               duration_s=1.5))
    assert [r.t for r in chosen] == [2.0, 3.0, 4.0, 5.0]


def test_results_label_senders_as_the_simulator_does() -> None:
    """Unlabelled messages and their replies were counted nowhere (replies.total was more
    than legit + raid), and a sender first labelled raid, then legit, was not a legit
    sender live while sim.metrics counts it as one: coverage and the oracle disagreed."""
    from sim.metrics import Metrics

    sent = [
        {"id": "a", "from": "+33600000001", "label": None, "status": 200, "sent_at": 1.0},
        {"id": "b", "from": "+33600000002", "label": "raid", "status": 200, "sent_at": 2.0},
        {"id": "c", "from": "+33600000002", "label": "legit", "status": 200, "sent_at": 3.0},
        {"id": "d", "from": "+33600000003", "label": "legit", "status": 200, "sent_at": 4.0},
    ]
    billed = [{"to": "+33600000001", "segments": 1, "wall_at": 1.1},
              {"to": "+33600000002", "segments": 1, "wall_at": 2.1}]
    live = build_results(name="x", seed=0, sent=sent, billed=billed,
                         bill={"amount_eur": "0.32", "amount_micros": 320000},
                         reply_cost_micros=160000, cap_eur=None, extra={})
    metrics = Metrics(reply_cost_micros=160000)
    for s in sent:
        metrics.inbound(s["from"], s["label"], s["sent_at"])
    metrics.sent("+33600000001", None, 1.0, 1.1, 1, 160000)
    metrics.sent("+33600000002", "raid", 2.0, 2.1, 1, 160000)
    simulated = metrics.results(scenario="x", seed=0, policy="p", cap_micros=None,
                                raid_periods=[], end_s=5.0)
    assert live["messages"] == {k: simulated["messages"][k]
                                for k in ("total", "legit", "raid", "unlabelled")}
    for key in ("total", "legit", "raid", "unlabelled", "segments"):
        assert live["replies"][key] == simulated["replies"][key], key
    for key in ("legit_senders", "legit_senders_replied", "legit_coverage"):
        assert live[key] == simulated[key], key
    assert float(live["oracle_spend_eur"]) == simulated["oracle_spend_eur"]


def test_more_usage_errors_stop_before_anything_is_sent(tmp_path: Path) -> None:
    """A port out of range was exit 3; an uncreatable --report folder was exit 3 after the
    run had sent (and paid for) its messages; --duration 0s sent nothing and gated nulls."""
    base = [sys.executable, "-m", "raidsim", "load", str(SCENARIO), "--auth-token", "t"]
    port = free_port()
    alive = ["--target", f"http://127.0.0.1:{port}", "--provider", f"http://127.0.0.1:{port}"]
    for extra, message in (
        (["--target", "http://127.0.0.1:99999"], "is not a valid URL"),
        (["--target", "http://127.0.0.1:abc"], "is not a valid URL"),
        ([*alive, "--duration", "0s"], "--duration must be above 0"),
        ([*alive, "--report", "/proc/raidsim-report"], "cannot write in /proc"),
        ([*alive, "--speed", "0"], "--speed must be a number above 0"),
        ([*alive, "--users", "0"], "--users must be at least 1"),
    ):
        done = subprocess.run([*base, *extra], env=base_env(), capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, (extra, done.stderr)
        assert message in done.stderr, (extra, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_wrong_auth_token_is_an_error_not_a_pass(tmp_path: Path) -> None:
    """Every webhook got 403 (bad signature), nothing was billed, and the run passed its
    spend gate with exit 0."""
    env = base_env()
    with fake_provider(tmp_path, env) as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'token.db'}")
        with serve(served_env, tmp_path) as served:
            done = subprocess.run(
                [sys.executable, "-m", "raidsim", "load", str(SCENARIO), "--from", "6d12h30m",
                 "--speed", "400", "--max-messages", "5", "--settle", "1s",
                 "--target", served.url, "--provider", provider,
                 "--auth-token", "not-the-token", "--threshold", "spend_eur<=100"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "refused all 5 webhooks with 403" in done.stderr


def _trace(path: Path, count: int, prefix: str = "SM") -> Path:
    """``count`` legit first contacts from distinct senders, one every 10 trace seconds."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(json.dumps({"id": f"{prefix}{i:032x}", "t": i * 10.0,
                                     "from": f"+337{i:08d}", "to": "+33644649021",
                                     "body": "Bonjour", "label": "legit"}) + "\n")
    return path


def test_messages_due_at_once_are_decided_in_trace_order(tmp_path: Path) -> None:
    """Ten first contacts at the same trace time under a cap of three replies: the first
    three lines are the genuine senders. Posted concurrently, the webhooks raced and the
    responder answered whichever arrived first (raiders, in three runs of three:
    legit_coverage 0.0 where simulate says 1.0). Each webhook now waits for the one before
    it to be answered; --unordered keeps the race, and the results say which it was."""
    trace = tmp_path / "same_t.jsonl"
    trace.write_text("".join(json.dumps({
        "t": 10.0, "from": f"+336110000{i:02d}", "to": "+33644649021",
        "body": f"Bonjour, c'est la personne {i}", "label": "legit" if i < 3 else "raid",
        "id": f"SMs{i:02d}"}) + "\n" for i in range(10)), encoding="utf-8")
    simulated = subprocess.run(
        [sys.executable, "-m", "raidsim", "simulate", "--trace", str(trace), "--quiet",
         "--json", "-"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=base_env(RAIDSIM_BUDGET_EUR="0.48"))
    assert simulated.returncode == 0, simulated.stderr
    assert json.loads(simulated.stdout)["replies"]["legit"] == 3
    env = base_env()
    with fake_provider(tmp_path, env) as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider, RAIDSIM_BUDGET_EUR="0.48",
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'order.db'}")
        with serve(served_env, tmp_path) as served:
            out = tmp_path / "live.json"
            done = subprocess.run(
                [sys.executable, "-m", "raidsim", "load", "--trace", str(trace),
                 "--speed", "10", "--users", "10", "--settle", "3s", "--target", served.url,
                 "--provider", provider, "--auth-token", AUTH_TOKEN, "--json", str(out)],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    results = json.loads(out.read_text())
    assert results["live"]["ordered"] is True
    assert results["replies"] == {**results["replies"], "legit": 3, "raid": 0}
    assert results["legit_coverage"] == 1.0
    lag = results["live"]["send_lag_s"]
    assert lag["max"] is not None and lag["max"] >= 0 and set(lag) == {"p50", "p95", "max"}


def test_settle_waits_for_messages_in_the_providers_throughput_queue(tmp_path: Path) -> None:
    """A provider billing one segment every 2 s looked settled after 1 s of a still bill:
    `load` passed with part of the spend (16 of 20 replies at 0.2 segment/s, the other 4
    billed after it exited). The fake's bill now says how many accepted messages wait in
    its queue (`pending`), and settle waits for them."""
    trace = _trace(tmp_path / "trace.jsonl", 5)
    env = base_env()
    with fake_provider(tmp_path, env, "--segments-per-second", "0.5") as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'slow.db'}",
                          RAIDSIM_POLICY_FILE=str(_plain_policy(tmp_path)))
        with serve(served_env, tmp_path) as served:
            out = tmp_path / "results.json"
            done = subprocess.run(
                [sys.executable, "-m", "raidsim", "load", "--trace", str(trace),
                 "--speed", "100", "--settle", "60s", "--target", served.url,
                 "--provider", provider, "--auth-token", AUTH_TOKEN, "--json", str(out)],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
            bill = httpx.get(provider + "/_fake/bill").json()
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert bill["count"] == 5 and bill["pending"] == 0
    assert results["replies"]["total"] == 5 == results["live"]["bill"]["count"]
    assert results["live"]["unsettled_replies"] == 0 and results["legit_coverage"] == 1.0


def test_the_fake_providers_clock_follows_the_trace_not_its_own_start(
        tmp_path: Path) -> None:
    """The fake's scenario clock counted from its own start: with the responder up 3 s
    later and --speed 20, its fault windows fell 70 trace seconds early (a 100-200 s
    error window hit the messages of 30-45 s). `load` now sets it to the first message's
    time as that message leaves, and warns about a fake running at another --speed."""
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps({
        "id": f"SM{i:032x}", "t": 1000.0 + i * 5.0, "from": f"+337{i:08d}",
        "to": "+33644649021", "body": "Bonjour", "label": "legit"}) + "\n"
        for i in range(12)), encoding="utf-8")
    env = base_env()
    # an outage long after the trace: a fault window, so the fake's clock matters
    with fake_provider(tmp_path, env, "--speed", "20", "--outage", "5000s+1s") as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'clock.db'}",
                          RAIDSIM_POLICY_FILE=str(_plain_policy(tmp_path)))
        with serve(served_env, tmp_path) as served:
            time.sleep(3.0)  # the fake's own clock runs 60 trace seconds meanwhile
            command = [sys.executable, "-m", "raidsim", "load", "--trace", str(trace),
                       "--speed", "20", "--settle", "3s", "--target", served.url,
                       "--provider", provider, "--auth-token", AUTH_TOKEN]
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=120)
            billed = httpx.get(provider + "/_fake/messages").json()
            slower = [("10" if arg == "20" else arg) for arg in command]  # (a replay: exit 2)
            other = subprocess.run(slower, cwd=tmp_path, env=env, capture_output=True,
                                   text=True, timeout=120)
    assert "the fake provider runs at --speed 20 and this run at --speed 10" in other.stderr
    assert "runs at --speed" not in done.stderr
    assert done.returncode == 0, done.stderr
    sent_at = {json.loads(line)["from"]: json.loads(line)["t"]
               for line in trace.read_text().splitlines()}
    assert len(billed) == 12
    skew = [message["at_s"] - sent_at[message["to"]] for message in billed]
    assert all(0 <= s < 15 for s in skew), skew  # the responder's answer x 20, not 60+


def _plain_policy(tmp_path: Path) -> Path:
    """Every rule off but the per-sender limit: each first contact is answered at once."""
    policy = tmp_path / "plain.toml"
    policy.write_text("[policy]\nname = \"plain\"\n" + "".join(
        f"[policy.{rule}]\nenabled = false\n"
        for rule in ("surge", "templates", "fragments", "number_blocks", "repeats", "habit")),
        encoding="utf-8")
    return policy


def test_a_replay_of_messages_the_responder_already_had_is_an_error_not_a_pass(
        tmp_path: Path) -> None:
    """A trace replayed against the database of an earlier run: every webhook was a
    duplicate, nothing was decided or billed, and the run passed spend_eur<=1 with
    EUR 0.00 (exit 0) after a warning. Like the all-403 case, it measured nothing: exit 2."""
    trace = _trace(tmp_path / "trace.jsonl", 20)
    env = base_env()
    with fake_provider(tmp_path, env) as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'twice.db'}")
        with serve(served_env, tmp_path) as served:
            command = [sys.executable, "-m", "raidsim", "load", "--trace", str(trace),
                       "--speed", "1000", "--users", "5", "--settle", "1s",
                       "--target", served.url, "--provider", provider,
                       "--auth-token", AUTH_TOKEN, "--threshold", "spend_eur<=10"]
            first, again = (subprocess.run(command, cwd=tmp_path, env=env,
                                           capture_output=True, text=True, timeout=120)
                            for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert again.returncode == 2, again.stderr
    assert "already had all 20 webhooks it accepted" in again.stderr
    assert "fresh database" in again.stderr and "PASS" not in again.stderr


def test_nothing_measured_only_when_every_accepted_webhook_was_a_duplicate() -> None:
    from raidsim.commands.load import nothing_measured

    dup = {"status": 200, "decision": "duplicate"}
    new = {"status": 200, "decision": "reply first_contact"}
    refused = {"status": 403, "decision": None}
    assert nothing_measured([dup, dup, refused], {}) is not None
    assert nothing_measured([dup, new], {}) is None
    assert nothing_measured([refused], {}) is None  # the 403 case has its own error
    assert nothing_measured([], {}) is None
    # a responder that names no decision: its duplicates counter says
    bare = {"status": 200}
    assert nothing_measured([bare, bare], {"raidsim_inbound_duplicates_total": 2.0})
    assert nothing_measured([bare, bare], {"raidsim_inbound_duplicates_total": 1.0}) is None


def test_replies_still_queued_after_settle_fail_the_run(tmp_path: Path) -> None:
    """The provider answered 503 throughout: the replies waited in the responder's outbox
    past --settle, the bill was EUR 0, and spend_eur<=1 passed (exit 0) with only a
    warning while the responder had reserved their cost. Now the results say how many
    (live.unsettled_replies) and an implicit threshold on it fails the run; the report
    re-checks it; --allow-unsettled keeps the old verdict, with the count and a warning."""
    env = base_env()
    with fake_provider(tmp_path, env, "--outage", "0s+10m", "--outage-mode", "503") as provider:
        served_env = dict(env, RAIDSIM_TWILIO_API_BASE=provider,
                          RAIDSIM_DATABASE_URL=f"sqlite:///{tmp_path / 'outage.db'}")
        with serve(served_env, tmp_path) as served:
            def load(name: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], Any]:
                out = tmp_path / f"{name}.json"
                done = subprocess.run(
                    [sys.executable, "-m", "raidsim", "load",
                     "--trace", str(_trace(tmp_path / f"{name}.jsonl", 10, prefix=name)),
                     "--speed", "1000", "--users", "5", "--settle", "2s",
                     "--target", served.url, "--provider", provider,
                     "--auth-token", AUTH_TOKEN, "--threshold", "spend_eur<=1",
                     "--json", str(out), "--report", str(tmp_path / name), *extra],
                    cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
                return done, json.loads(out.read_text()) if out.exists() else None

            strict, results = load("SMa")
            lenient, allowed = load("SMb", "--allow-unsettled")
    assert strict.returncode == 1, strict.stderr
    queued = results["live"]["unsettled_replies"]
    assert queued > 0 and results["replies"]["total"] == 0
    assert results["passed"] is False
    assert results["thresholds"][-1] == {
        "name": "live.unsettled_replies", "op": "<=", "limit": 0, "value": queued,
        "ok": False, "abort_on_fail": False,
        "message": f"live.unsettled_replies <= 0: FAILED, value {queued}, limit <= 0 "
                   f"(over by {queued})"}
    assert [t["ok"] for t in results["thresholds"]] == [True, False]  # spend_eur <= 1 held
    assert "still queued" in strict.stderr and "longer --settle" in strict.stderr
    assert "live.unsettled_replies" in (tmp_path / "SMa" / "junit.xml").read_text()
    report = subprocess.run([sys.executable, "-m", "raidsim", "report",
                             str(tmp_path / "SMa.json")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 1, report.stdout + report.stderr  # the same verdict
    assert lenient.returncode == 0, lenient.stderr
    assert allowed["live"]["unsettled_replies"] > 0 and allowed["passed"] is True
    assert [t["name"] for t in allowed["thresholds"]] == ["spend_eur"]
    assert "still queued" in lenient.stderr


def test_live_counters_are_this_runs_and_odd_runs_are_warned_about() -> None:
    from raidsim.commands.load import _live_warnings, _metrics_delta

    before = {"decisions": {"inbound.reply:first_contact": 10, "inbound.drop:raid": 5},
              "raidsim_inbound_duplicates_total": 2.0, "raidsim_spend_eur": 1.6,
              "raidsim_held_replies": 4.0}
    now = {"decisions": {"inbound.reply:first_contact": 13, "inbound.drop:raid": 5,
                         "released.reply:released": 1},
           "raidsim_inbound_duplicates_total": 9.0, "raidsim_spend_eur": 2.24,
           "raidsim_held_replies": 1.0}
    delta = _metrics_delta(now, before)
    assert delta == {"decisions": {"inbound.reply:first_contact": 3,
                                   "released.reply:released": 1},
                     "replies": {}, "provider_errors": {},
                     "raidsim_inbound_duplicates_total": 7.0, "raidsim_spend_eur": 0.64,
                     "raidsim_held_replies": 1.0}
    warnings = _live_warnings(10, delta, {"count": 0}, "http://127.0.0.1:1")
    assert len(warnings) == 2
    assert "7 of the 10 webhooks were messages the responder already had" in warnings[0]
    assert "decided 4 replies but http://127.0.0.1:1 billed none" in warnings[1]
    assert _live_warnings(10, {"decisions": {"inbound.reply:x": 4}}, {"count": 4}, "p") == []


def test_webhooks_the_responder_refused_are_warned_about() -> None:
    """A trace message the responder answered 400 or 413 (an id over 64 characters, a
    body over RAIDSIM_MAX_BODY_BYTES) was left out of messages and coverage without a
    word: the run printed "legit coverage 1.0000" and exited 0 while two legit senders
    of five were never answered, and `raidsim simulate` on the same trace answered them."""
    assert refused_warning({"200": 5}) is None
    warning = refused_warning({"200": 3, "400": 1, "413": 1})
    assert warning is not None
    assert "2 of the 5 webhooks" in warning and "1 x HTTP 400" in warning
    assert "1 x HTTP 413" in warning and "legit coverage" in warning


def test_latency_runs_from_the_answered_message_and_the_cap_time_is_reported() -> None:
    """Reply latency ran from the sender's first message (a STOP, say) even when the reply
    answered a later one; the simulator measures from the answered message. And
    budget.exhausted_at_s was always null live: it is now the trace time of the first
    webhook the responder dropped for the total cap, as the simulator reports it."""
    sent = [
        {"id": "a", "from": "+33600000001", "label": "legit", "status": 200, "t": 0.0,
         "sent_at": 100.0, "decision": "drop opt_out"},
        {"id": "b", "from": "+33600000001", "label": "legit", "status": 200, "t": 30.0,
         "sent_at": 130.0, "decision": "reply first_contact"},
        {"id": "c", "from": "+33600000002", "label": "legit", "status": 200, "t": 42.5,
         "sent_at": 142.5, "decision": "drop budget_total"},
        {"id": "d", "from": "+33600000003", "label": "legit", "status": 200, "t": 50.0,
         "sent_at": 150.0, "decision": "drop budget_total"},
    ]
    billed = [{"to": "+33600000001", "segments": 1, "wall_at": 131.0, "reply_to": "b"}]
    results = build_results(name="x", seed=0, sent=sent, billed=billed,
                            bill={"amount_eur": "0.16", "amount_micros": 160000},
                            reply_cost_micros=160000, cap_eur="0.16", extra={})
    assert results["reply_latency_s"]["p50"] == 1.0  # from "b", not from the STOP at 100
    assert results["budget"] == {"cap_eur": "0.16", "exhausted_at_s": 42.5}
    unnamed = build_results(name="x", seed=0, sent=sent[:2],
                            billed=[{**billed[0], "reply_to": None}],
                            bill={"amount_eur": "0.16", "amount_micros": 160000},
                            reply_cost_micros=160000, cap_eur=None, extra={})
    assert unnamed["reply_latency_s"]["p50"] == 31.0  # no ?reply=: from the first message
    assert unnamed["budget"]["exhausted_at_s"] is None


def test_replies_are_labelled_and_timed_by_the_message_they_answer() -> None:
    """With the answered message named (?reply=), a reply counts under that message's
    label and every legit reply is timed, as sim.metrics does; with no price known (no
    scenario, no --admin-token) the per-reply figures come from the bill, or are null,
    never 0."""
    sent = [
        {"id": "a", "from": "+33600000001", "label": None, "status": 200, "t": 0.0,
         "sent_at": 100.0},
        {"id": "b", "from": "+33600000001", "label": "legit", "status": 200, "t": 10.0,
         "sent_at": 110.0},
        {"id": "c", "from": "+33600000001", "label": "legit", "status": 200, "t": 20.0,
         "sent_at": 120.0},
    ]
    billed = [{"to": "+33600000001", "segments": 1, "wall_at": 111.0, "reply_to": "b",
               "price_micros": 160000},
              {"to": "+33600000001", "segments": 1, "wall_at": 125.0, "reply_to": "c",
               "price_micros": 160000}]
    results = build_results(name="x", seed=0, sent=sent, billed=billed,
                            bill={"amount_eur": "0.32", "amount_micros": 320000},
                            reply_cost_micros=None, cap_eur=None, extra={})
    assert results["replies"]["legit"] == 2 and results["replies"]["unlabelled"] == 0
    assert results["reply_latency_s"]["p50"] == 1.0 and results["reply_latency_s"]["p99"] == 5.0
    assert str(results["reply_cost_eur"]) == "0.16"
    assert str(results["naive_spend_eur"]) == "0.48"
    unpriced = build_results(name="x", seed=0, sent=sent, billed=[],
                             bill={"amount_eur": "0", "amount_micros": 0},
                             reply_cost_micros=None, cap_eur=None, extra={})
    assert unpriced["reply_cost_eur"] is None and unpriced["naive_spend_eur"] is None
    assert unpriced["oracle_spend_eur"] is None


def test_settle_waits_for_the_outbox_not_just_a_still_bill() -> None:
    """An open circuit breaker keeps the bill still for its cool-down (30 s) while replies
    are queued: settling must not stop after one still second and drop them."""
    from raidsim.commands.load import outbox_queued, settle

    now = [0.0]
    queue = {"n": 3}

    def sleep(s: float) -> None:
        now[0] += s
        if now[0] >= 30.0 and queue["n"]:  # the breaker closes: the queue drains
            queue["n"] = 0

    def read_bill() -> dict[str, int]:
        return {"count": 10 if queue["n"] else 13}

    bill, queued = settle(read_bill, lambda: queue["n"], {"count": 10}, 60.0,
                          clock=lambda: now[0], sleep=sleep)
    assert bill["count"] == 13 and queued == 0
    # bounded by --settle, and says what is left
    queue["n"], now[0] = 3, -100.0
    bill, queued = settle(lambda: {"count": 10}, lambda: queue["n"], {"count": 10}, 5.0,
                          clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert queued == 3 and now[0] >= -95.0
    text = ('raidsim_outbox_depth{status="pending"} 2.0\n'
            'raidsim_outbox_depth{status="sending"} 1.0\n'
            'raidsim_outbox_depth{status="sent"} 7.0\n')
    assert outbox_queued(text) == 3
    assert outbox_queued("# nothing\n") is None
    # the provider's throughput queue counts too: settled only once it is empty
    now[0] = 0.0

    def slow_bill() -> dict[str, int]:  # one of 4 queued messages billed every 5 s
        left = max(0, 4 - int(now[0] // 5))
        return {"count": 20 - left, "pending": left}

    bill, queued = settle(slow_bill, lambda: 0, {"count": 16, "pending": 4}, 60.0,
                          clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert bill == {"count": 20, "pending": 0} and queued == 0 and now[0] >= 20.0
    now[0] = 0.0
    bill, queued = settle(slow_bill, lambda: 0, {"count": 16, "pending": 4}, 7.0,
                          clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert queued == 3  # bounded by --settle: the provider still holds 3


def test_replies_to_an_earlier_runs_messages_are_not_this_runs_spend() -> None:
    """A responder still holding replies from an earlier run releases them during the
    next one, and the provider bills them in its window: a run of 2 new senders was
    billed 519 replies (EUR 83.04) and failed its spend gate. A reply answering a message
    this run did not send (``reply_to``; without it, a recipient that sent nothing) is
    left out of spend_eur and replies, and counted in live.foreign_replies."""
    sent = [
        {"id": "new1", "from": "+33600000001", "label": "legit", "status": 200, "t": 0.0,
         "sent_at": 100.0},
        {"id": "new2", "from": "+33600000002", "label": "legit", "status": 200, "t": 1.0,
         "sent_at": 101.0},
    ]
    reply = {"segments": 1, "wall_at": 102.0, "price_micros": 160000}
    billed = [{**reply, "to": "+33600000001", "reply_to": "new1"},
              {**reply, "to": "+33600000002", "reply_to": None},  # no status callback
              {**reply, "to": "+33600000009", "reply_to": "old7"},  # an earlier run's
              {**reply, "to": "+33600000008", "reply_to": None}]  # ...without callback
    results = build_results(name="x", seed=0, sent=sent, billed=billed,
                            bill={"amount_eur": "0.64", "amount_micros": 640000},
                            reply_cost_micros=160000, cap_eur=None, extra={"live": {}})
    assert str(results["spend_eur"]) == "0.32"
    assert results["replies"]["total"] == 2 and results["replies"]["legit"] == 2
    assert results["legit_coverage"] == 1.0 and results["spend_vs_oracle"] == 1.0
    assert results["live"]["foreign_replies"] == {"count": 2, "spend_eur": Decimal("0.32")}


def test_replies_to_webhooks_in_flight_at_an_abort_are_this_runs() -> None:
    """After an abort_on_fail stop, webhooks in flight when Locust was stopped reached the
    responder, which answered them, but Locust recorded none of them: their 12 replies
    were called an earlier run's (a warning, spend_eur 1.12 on a bill of 3.04). A reply to
    any message of the run's plan is its own; only one to a message outside it is
    foreign, with ``reply_to`` or, without it, by recipient."""
    sent = [{"id": "m1", "from": "+33600000001", "label": "legit", "status": 200,
             "t": 0.0, "sent_at": 100.0}]
    planned = [{"id": "m1", "from": "+33600000001", "label": "legit"},
               {"id": "m2", "from": "+33600000002", "label": "legit"},  # in flight
               {"id": "m3", "from": "+33700000003", "label": "raid"}]  # in flight
    reply = {"segments": 1, "wall_at": 101.0, "price_micros": 160000}
    billed = [{**reply, "to": "+33600000001", "reply_to": "m1"},
              {**reply, "to": "+33600000002", "reply_to": "m2"},
              {**reply, "to": "+33700000003", "reply_to": None},  # no callback: by number
              {**reply, "to": "+33600000009", "reply_to": "old9"}]  # an earlier run's
    bill = {"amount_eur": "0.64", "amount_micros": 640000}
    results = build_results(name="x", seed=0, sent=sent, billed=billed, bill=bill,
                            reply_cost_micros=160000, cap_eur=None, extra={"live": {}},
                            planned=planned)
    assert str(results["spend_eur"]) == "0.48"
    assert results["live"]["foreign_replies"] == {"count": 1, "spend_eur": Decimal("0.16")}
    assert results["replies"]["total"] == 3
    assert results["replies"]["legit"] == 2 and results["replies"]["raid"] == 1
    assert results["messages"]["total"] == 1  # the recorded webhooks only, as documented
    assert results["legit_coverage"] == 1.0  # the in-flight sender is not a counted one
    assert results["reply_latency_s"]["p50"] == 1.0  # the unrecorded reply is not timed
    assert own_replies(sent, billed)[1] == billed[1:]  # without the plan: all foreign


# A live window whose first webhook is at trace time 600 s (wall 1000 s), replayed at 60x:
# a billed reply at wall W is at trace time 600 + (W - 1000) * 60.
WINDOW_SENT = [
    {"id": "a", "t": 600.0, "from": "+33600000001", "label": "legit", "status": 200,
     "sent_at": 1000.0, "latency_s": 0.01, "decision": "reply first_contact"},
    {"id": "b", "t": 630.0, "from": "+33700000001", "label": "raid", "status": 200,
     "sent_at": 1000.5, "latency_s": 0.01, "decision": "drop raid_template"},
    {"id": "c", "t": 650.0, "from": "+33700000001", "label": "raid", "status": 200,
     "sent_at": 1000.8, "latency_s": 0.01, "decision": "drop flagged_sender"},
    {"id": "d", "t": 670.0, "from": "+33600000002", "label": "legit", "status": 200,
     "sent_at": 1001.0, "latency_s": 0.01, "decision": "defer surge_hold"},
    {"id": "e", "t": 700.0, "from": "12345", "label": None, "status": 200,
     "sent_at": 1001.7, "latency_s": 0.01, "decision": "drop short_code"},
    {"id": "f", "t": 720.0, "from": "+33600000001", "label": "legit", "status": 200,
     "sent_at": 1002.0, "latency_s": 0.01, "decision": "drop sender_limit"},
    {"id": "h1", "t": 725.0, "from": "+33700000003", "label": "raid", "status": 200,
     "sent_at": 1002.1, "latency_s": 0.01, "decision": "drop raid_template"},
    {"id": "g", "t": 730.0, "from": "+33700000002", "label": "raid", "status": 503,
     "sent_at": 1002.2, "latency_s": 0.01, "decision": None},  # refused: counted nowhere
    {"id": "h2", "t": 760.0, "from": "+33700000003", "label": "legit", "status": 200,
     "sent_at": 1002.5, "latency_s": 0.01, "decision": "reply first_contact"},
]
WINDOW_BILLED = [  # trace times 630 (bin 0), 810 (bin 3), 900 (bin 5: the held "d")
    {"to": "+33600000001", "segments": 1, "price_micros": 160000, "wall_at": 1000.5,
     "reply_to": "a"},
    {"to": "+33700000003", "segments": 1, "price_micros": 160000, "wall_at": 1003.5,
     "reply_to": "h2"},
    {"to": "+33600000002", "segments": 1, "price_micros": 160000, "wall_at": 1005.0,
     "reply_to": "d"},
]
WINDOW_COUNTERS = {"inbound.reply:first_contact": 2, "inbound.drop:raid_template": 2,
                   "inbound.drop:flagged_sender": 1, "inbound.defer:surge_hold": 1,
                   "inbound.drop:short_code": 1, "inbound.drop:sender_limit": 1,
                   "released.reply:released": 1}


def _window_results(**kwargs: object) -> dict[str, object]:
    options: dict[str, object] = {"speed": 60.0, "responder": {"decisions": WINDOW_COUNTERS},
                                  "reply_cost_micros": 160000, **kwargs}
    return build_results(name="window", seed=0, sent=WINDOW_SENT, billed=WINDOW_BILLED,
                         bill={"amount_eur": "0.48", "amount_micros": 480000},
                         cap_eur=None, extra={}, **options)  # type: ignore[arg-type]


def test_load_writes_senders_per_sender_spend_and_final_decisions() -> None:
    """senders.*, per_sender_spend_eur and decisions.by_rule were simulate-only, so a live
    run could not gate on decisions.by_rule.raid_template and its senders plot was empty.
    Senders are labelled as sim.metrics does (+33700000003, raid then legit, is legit); the
    short code 12345 is a sender but not an E.164 one; the 503 webhook is nowhere; the held
    message "d" counts under the rule the responder's released.* counter gives it."""
    results = _window_results()
    assert results["senders"] == {
        "total": 5, "legit": 3, "raid": 1,
        "messages_per_sender": {"legit": {"1": 1, "2": 2}, "raid": {"2": 1},
                                "unlabelled": {"1": 1}}}
    assert results["per_sender_spend_eur"] == Decimal("0.64")  # 4 E.164 senders x 0.16
    assert results["decisions"] == {
        "by_rule": {"first_contact": 2, "flagged_sender": 1, "raid_template": 2,
                    "released": 1, "sender_limit": 1, "short_code": 1},
        "held": 1}
    # still held at the end (no released.* counter): the held message is in no rule
    unreleased = _window_results(responder={"decisions": {"inbound.defer:surge_hold": 1}})
    assert "released" not in unreleased["decisions"]["by_rule"]
    assert sum(unreleased["decisions"]["by_rule"].values()) == 7
    unpriced = build_results(name="x", seed=0, sent=WINDOW_SENT, billed=[],
                             bill={"amount_eur": "0", "amount_micros": 0},
                             reply_cost_micros=None, cap_eur=None, extra={}, speed=60.0)
    assert unpriced["per_sender_spend_eur"] is None


def test_load_writes_the_timeseries_in_trace_time() -> None:
    """timeseries was simulate-only, so a live report drew "no data" in four plots. Bins
    are 60 s of trace time from the first webhook's minute (600 s); webhooks by their t,
    billed replies at 600 + (wall - 1000) x 60; latencies stay wall seconds."""
    ts = _window_results()["timeseries"]
    assert ts["bin_s"] == 60 and ts["start_s"] == 600
    assert ts["inbound"] == {"legit": [1, 1, 2, 0, 0, 0], "raid": [2, 0, 1, 0, 0, 0],
                             "unlabelled": [0, 1, 0, 0, 0, 0]}
    money = [Decimal(x) for x in ("0.16", "0.16", "0.16", "0.32", "0.32", "0.48")]
    assert ts["spend_eur"] == money
    assert ts["naive_spend_eur"] == [Decimal(x) for x in
                                     ("0.48", "0.80", "1.28", "1.28", "1.28", "1.28")]
    # +33600000001 in bin 0, +33600000002 in bin 1, +33700000003 turns legit in bin 2
    assert ts["oracle_spend_eur"] == [Decimal(x) for x in
                                      ("0.16", "0.32", "0.48", "0.48", "0.48", "0.48")]
    for q in ("p50", "p95", "p99"):
        assert ts["reply_latency_s"][q] == [0.5, None, None, 1.0, None, 4.0]
    # the webhooks' own decisions; the held one's release has no time live
    assert ts["decisions"] == {"first_contact": [1, 0, 1, 0, 0, 0],
                               "flagged_sender": [1, 0, 0, 0, 0, 0],
                               "raid_template": [1, 0, 1, 0, 0, 0],
                               "sender_limit": [0, 0, 1, 0, 0, 0],
                               "short_code": [0, 1, 0, 0, 0, 0]}
    assert "raid_mode" not in ts  # not known live
    # without the speed, replies cannot be placed in trace time: no spend or latency
    unplaced = _window_results(speed=None)["timeseries"]
    assert "spend_eur" not in unplaced and "reply_latency_s" not in unplaced
    # ...and the series end with the last webhook's bin (760 s: bin 2)
    assert unplaced["inbound"] == {k: v[:3] for k, v in ts["inbound"].items()}
    assert unplaced["naive_spend_eur"] == ts["naive_spend_eur"][:3]
    # a webhook record with no trace time: no timeseries at all
    untimed = build_results(name="x", seed=0, sent=[{**WINDOW_SENT[0], "t": None}],
                            billed=[], bill={"amount_eur": "0", "amount_micros": 0},
                            reply_cost_micros=160000, cap_eur=None, extra={}, speed=60.0)
    assert "timeseries" not in untimed


def test_a_huge_speed_leaves_the_placed_series_out_instead_of_running_out_of_memory(
) -> None:
    """--speed 1e9 (send everything at once) placed a reply billed 30 s after the first
    webhook 3e10 s into the trace, and the series took one slot per minute up to it:
    the process was killed for memory after the run, its results lost. Past the
    simulator's horizon (366 days) replies are not placed: no spend or latency series."""
    sent = [{**WINDOW_SENT[0], "t": 0.0, "sent_at": 1000.0}]
    billed = [{"to": sent[0]["from"], "reply_to": sent[0]["id"], "wall_at": 1030.0,
               "segments": 1, "price_micros": 160000}]
    for speed, placed in ((60.0, True), (1e9, False)):
        results = build_results(name="x", seed=0, sent=sent, billed=billed,
                                bill={"amount_eur": "0.16", "amount_micros": 160000},
                                reply_cost_micros=160000, cap_eur=None, extra={},
                                speed=speed)
        ts = results["timeseries"]
        assert ("spend_eur" in ts) is placed and ("reply_latency_s" in ts) is placed
        assert len(ts["naive_spend_eur"]) == (31 if placed else 1)
        assert results["spend_eur"] == Decimal("0.16")


def test_a_live_report_draws_its_plots(tmp_path: Path, monkeypatch: Any) -> None:
    """The report of a live run drew "no data" in every plot: now inbound, spend, latency,
    decisions and senders draw their series, and the budget line sits in the window."""
    import io

    import numpy as np
    from PIL import Image

    from reports import plots, write_report

    results = _window_results()
    results["budget"] = {"cap_eur": Decimal("0.40"), "exhausted_at_s": 700.0}
    write_report(results, tmp_path / "report", environ={})
    for name in ("inbound.png", "spend.png", "latency.png", "decisions.png", "senders.png"):
        image = Image.open(io.BytesIO((tmp_path / "report" / name).read_bytes()))
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
        coloured = float((rgb.max(axis=2) - rgb.min(axis=2) > 60).mean())
        # the latency plot's three bins are three dots: little colour, but some
        assert coloured > (0.0002 if name == "latency.png" else 0.002), name
    # the figures themselves: no "no data" note, and data drawn where it belongs
    drawn: list[Any] = []
    monkeypatch.setattr(plots, "_png", lambda fig: drawn.append(fig) or b"")
    for _name, _caption, render in plots.PLOTS:
        render(results)
    for fig in drawn:
        (ax,) = fig.axes
        assert not any("no data" in t.get_text() or "no replies" in t.get_text()
                       for t in ax.texts), ax.get_title()
        assert ax.lines or ax.collections, ax.get_title()
    latency = drawn[2].axes[0]
    p50 = next(line for line in latency.lines if line.get_label().startswith("p50"))
    assert [y for y in p50.get_ydata() if y == y] == [0.5, 1.0, 4.0]  # NaN != NaN
    spend = drawn[1].axes[0]
    exhausted = next(line for line in spend.lines if line.get_label() == "budget exhausted")
    assert list(exhausted.get_xdata()) == [100 / 60, 100 / 60]  # 700 s: 100 s into the window
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "raid_template" in html  # the decisions table, from decisions.by_rule


def test_load_writes_reply_outcomes_provider_errors_raid_mode_and_duration(
        capsys: Any) -> None:
    """replies.{unknown_outcome,rejected}, provider.errors, reply, raid_mode, duration_s
    and reply_latency_s.max were simulate-only: a live run could not be gated on provider
    errors, nor compared with a simulated one on raid mode. The webhooks run from trace
    time 600 (wall 1000) at 60 trace seconds per wall second; the last billed reply lands
    at trace time 900, after the last webhook (760)."""
    responder = {"decisions": WINDOW_COUNTERS,
                 "replies": {"sent": 3, "unknown": 2, "failed": 1, "retry": 4,
                             "cancelled": 2},
                 "provider_errors": {"http_429": 3, "http_503": 1, "http_5xx": 1,
                                     "http_400": 1, "connect": 2, "timeout": 2, "auth": 1}}
    periods = [[900.0, 950.0],  # over before the run: left out
               [990.0, 1001.0],  # began before the first webhook: starts with it
               [1002.0, None],  # still open: stops at duration_s
               [1010.0, 1020.0]]  # after the last event: left out
    results = _window_results(responder=responder, reply_text="Non, c'est non. Ça suffit",
                              eur_per_segment=Decimal("0.16"), raid_periods=periods)
    # refunded and not sent: failed for good, or cancelled by an operator's block
    assert results["replies"]["unknown_outcome"] == 2 and results["replies"]["rejected"] == 3
    assert results["provider"] == {"errors": {"auth": 1, "connect_error": 2, "rate_limited": 3,
                                              "rejected": 1, "server_error": 2, "timeout": 2}}
    assert results["reply"] == {"text": "Non, c'est non. Ça suffit", "encoding": "GSM-7",
                                "segments": 1, "units": 25, "eur_per_segment": 0.16}
    assert results["duration_s"] == 900.0
    assert results["raid_mode"] == {"periods": [[600.0, 660.0], [720.0, 900.0]],
                                    "total_s": 240.0}
    assert results["timeseries"]["raid_mode"] == results["raid_mode"]["periods"]
    assert results["reply_latency_s"]["max"] is not None
    # without the responder's reply and error counters, its admin API or the speed: those
    # keys are left out rather than written as zeros that a gate would read as "no error"
    bare = _window_results(speed=None)
    assert "provider" not in bare and "unknown_outcome" not in bare["replies"]
    assert "raid_mode" not in bare and "reply" not in bare
    assert bare["duration_s"] == 760.0  # the last webhook: replies cannot be placed

    from raidsim.commands.load import reply_of
    from sim.scenario import load_scenario

    scenario = load_scenario(SCENARIO)
    text, price = reply_of(scenario, {"reply_text": "autre chose"}, {})
    assert (text, price) == (scenario.policy.reply_text, Decimal("0.16"))
    assert "replies with another text than the scenario's" in capsys.readouterr().err
    assert reply_of(None, {"reply_text": "x"}, {"eur_per_segment": "0.05"}) == (
        "x", Decimal("0.05"))
    assert reply_of(None, None, {}) == (None, None)


def test_held_messages_decided_later_are_in_the_decision_series() -> None:
    """A held message's later decision was in decisions.by_rule but in no bin of
    timeseries.decisions ("no time live"), so the decisions plot of a live run lacked
    every release. load now reads the responder's counters while it runs and places each
    rise of a released.* counter at the read that showed it, in trace time."""
    from raidsim.commands.load import MetricsPoll

    texts = iter([
        'raidsim_released_messages_total{decision="reply",rule="released"} 0\n',
        'raidsim_released_messages_total{decision="reply",rule="released"} 1\n'
        'raidsim_outbox_depth{status="pending"} 2\n',
        'raidsim_released_messages_total{decision="reply",rule="released"} 1\n',
    ])
    walls = iter([1000.0, 1002.0, 1004.0, 1009.0])

    class Client:
        def get(self, url: str) -> Any:
            return type("Answer", (), {"text": next(texts)})()

    before = parse_metrics('raidsim_released_messages_total{decision="reply",'
                           'rule="released"} 0\n')
    poll = MetricsPoll(Client(), "http://127.0.0.1:1", before, wall=lambda: next(walls))
    assert poll.read() is None and poll.read() == 2
    poll.record(parse_metrics(next(texts)))
    assert poll.releases() == [(1004.0, "released", 1)]  # once, when it rose
    # the window's webhooks start at trace time 600 at wall 1000, 60 trace s per wall s:
    # wall 1004 is trace 840, bin 4 (the window's counters hold the same release)
    results = _window_results(releases=poll.releases())
    series = results["timeseries"]["decisions"]
    assert series["released"] == [0, 0, 0, 0, 1, 0]
    assert sum(map(sum, series.values())) == sum(results["decisions"]["by_rule"].values())
    # without the speed there is no clock: releases stay out of the series, as before
    assert "released" not in _window_results(speed=None, releases=poll.releases())[
        "timeseries"]["decisions"]


class _Stub:
    """A loopback HTTP server standing in for the responder and the fake provider at
    once, to drive ``raidsim load`` into the cases a real pair rarely shows: a server
    that is not raidsim's, a bill that stops answering, a responder that goes away."""

    def __init__(self, *, ready: bytes = b'{"status": "ready"}',
                 bill: bytes = b'{"count": 0, "segments": 0, "amount_micros": 0}',
                 bill_answers: int = 10**9, metrics_answers: int = 10**9) -> None:
        import http.server
        import threading

        stub = self
        self.bill_calls = self.metrics_calls = self.posts = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json",
                      **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/readyz":
                    self._send(200, ready)
                elif path == "/metrics":
                    stub.metrics_calls += 1
                    if stub.metrics_calls > metrics_answers:  # gone: no answer at all
                        self.close_connection = True
                        return
                    self._send(200, b"", "text/plain")
                elif path == "/_fake/bill":
                    stub.bill_calls += 1
                    if stub.bill_calls > bill_answers:
                        self._send(503, b"{}")
                    else:
                        self._send(200, bill)
                elif path == "/_fake/messages":
                    self._send(200, b"[]")
                else:
                    self._send(404, b"{}")

            def do_POST(self) -> None:
                stub.posts += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._send(200, b"<Response/>", "text/xml",
                           X_Raidsim_Decision="drop flagged_sender")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Stub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _load(stub: str, tmp_path: Path, *extra: str, target: str | None = None,
          provider: str | None = None) -> list[str]:
    return ["load", "--trace", str(_trace(tmp_path / "t.jsonl", 3)), "--auth-token", "t",
            "--speed", "1000", "--settle", "1s", "--target", target or stub,
            "--provider", provider or stub, *extra]


def test_a_server_that_is_not_raidsims_is_refused_before_anything_is_sent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --target answering 200 "ok" to everything was scored as a run (coverage 0, exit 1);
    a --provider whose bill held no whole numbers failed with a KeyError (exit 3) after
    the webhooks were sent; --speed 1e-12 reached Locust, whose own parser overflowed."""
    from raidsim.cli import main

    with _Stub(ready=b"ok") as plain, _Stub(bill=b'{"count": "x"}') as odd, _Stub() as fine:
        assert main(_load(plain.url, tmp_path)) == 2
        err = capsys.readouterr().err
        assert f"{plain.url} is not a raidsim responder: GET /readyz answered 'ok'" in err
        assert main(_load(odd.url, tmp_path)) == 2
        err = capsys.readouterr().err
        assert (f"{odd.url} is not raidsim's fake provider: GET /_fake/bill answered no whole "
                "number 'count'") in err
        bad = tmp_path / "bad.jsonl"
        bad.write_text(_trace(tmp_path / "good.jsonl", 3).read_text() + "not json\n")
        args = _load(fine.url, tmp_path, "--max-messages", "2")
        args[args.index("--trace") + 1] = str(bad)
        assert main(args) == 2  # the line past --max-messages is checked too
        assert f"{bad}:4: not a JSON object" in capsys.readouterr().err
        assert main(_load(fine.url, tmp_path, "--speed", "1e-12")) == 2
        err = capsys.readouterr().err
        assert "--speed 1e-12: sending the plan would take about 2e+13 s, more than 30 days" \
            in err
        assert "Traceback" not in err


def test_a_responder_that_sends_elsewhere_than_provider_is_refused_before_sending(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A responder wired to the real provider got the whole trace as signed webhooks and
    texted the trace's numbers, at a real price; load warned only after the run. Its
    /readyz now says where replies go, and load refuses a mismatch before any webhook."""
    from raidsim.cli import main

    with _Stub(ready=b'{"status": "ready", "provider": "remote"}') as real, \
            _Stub() as provider:
        assert main(_load(real.url, tmp_path, provider=provider.url)) == 2
        err = capsys.readouterr().err
        assert "sends its replies to a remote provider (its RAIDSIM_TWILIO_API_BASE)" in err
        assert f"RAIDSIM_TWILIO_API_BASE={provider.url}" in err
        other = b'{"status": "ready", "provider": "http://127.0.0.1:9"}'
        with _Stub(ready=other) as elsewhere:
            assert main(_load(elsewhere.url, tmp_path, provider=provider.url)) == 2
        err = capsys.readouterr().err
        assert "sends its replies to http://127.0.0.1:9, not to --provider" in err
        # localhost and 127.0.0.1 are one server; an older responder that says nothing is
        # warned about, not refused
        port = provider.url.rsplit(":", 1)[1]
        same = f'{{"status": "ready", "provider": "http://localhost:{port}"}}'.encode()
        with _Stub(ready=same) as matching, _Stub() as older:
            assert main(_load(matching.url, tmp_path, provider=provider.url)) in (0, 1)
            assert "sends its replies" not in capsys.readouterr().err
            assert main(_load(older.url, tmp_path, provider=provider.url)) in (0, 1)
            assert "does not say where it sends its replies" in capsys.readouterr().err
    assert real.posts == 0 == elsewhere.posts  # refused before the first webhook
    assert matching.posts == 3  # the trace's three webhooks


def test_faults_at_a_speed_other_than_1_are_warned_about(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """At --speed 10 a 2-minute outage lasted fewer of the responder's (wall-time) retries:
    30 replies billed live where simulate refunds 2 of them, and nothing said so."""
    from raidsim.cli import main

    faulty = (b'{"count": 0, "segments": 0, "amount_micros": 0, '
              b'"faults": {"rates": {"errors": 0.0}, "windows": [{"kind": "outage", '
              b'"start_s": 10.0, "end_s": 130.0, "rate": 1.0}]}}')
    with _Stub(bill=faulty) as stub:
        main(_load(stub.url, tmp_path))
    assert "the fake provider injects faults and this run is at --speed 1000" in \
        capsys.readouterr().err
    with _Stub() as clean:
        main(_load(clean.url, tmp_path))
    assert "injects faults" not in capsys.readouterr().err


def test_readyz_says_where_replies_go(tmp_path: Path) -> None:
    """A loopback provider (a fake) is named; a real one is only "remote"."""
    from dataclasses import replace

    from responder.app import provider_shown
    from responder.config import load_settings

    settings = load_settings(base_env())
    assert provider_shown(settings) == "remote"  # https://api.twilio.com
    for base, shown in (("http://127.0.0.1:8099/", "http://127.0.0.1:8099"),
                        ("http://localhost:8099", "http://localhost:8099"),
                        ("http://[::1]:8099", "http://[::1]:8099"),
                        ("https://sms-gw.internal:8443", "remote")):
        assert provider_shown(replace(settings, twilio_api_base=base)) == shown


def test_a_provider_or_responder_that_stops_answering_mid_run_is_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake provider in an --outage (its port closed) when the run read its bill, or a
    responder killed mid-run, ended `raidsim load` with a traceback (exit 3)."""
    from raidsim.cli import main
    from raidsim.commands import load

    monkeypatch.setattr(load, "BILL_WAIT_S", 1.0)
    with _Stub(bill_answers=1) as outage:  # the pre-flight read only
        assert main(_load(outage.url, tmp_path)) == 2
    err = capsys.readouterr().err
    assert (f"the fake provider at {outage.url} did not answer GET /_fake/bill for 1 s after "
            "the run") in err
    with _Stub() as provider, _Stub(metrics_answers=1) as gone:
        assert main(_load(provider.url, tmp_path, target=gone.url)) == 2
    err = capsys.readouterr().err
    assert f"the responder at {gone.url} stopped answering during the run" in err
    assert "Traceback" not in err


def test_settle_waits_through_a_provider_that_does_not_answer() -> None:
    """``read_bill`` is None while the provider is down: not settled, whatever the time."""
    from raidsim.commands.load import settle

    now = [0.0]
    answers = iter([None, None, None, {"count": 12}] + [{"count": 12}] * 100)
    bill, queued = settle(lambda: next(answers), lambda: 0, {"count": 10}, 60.0,
                          clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert bill["count"] == 12 and queued == 0
