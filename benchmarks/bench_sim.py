"""Simulator throughput against raw SimPy, and peak memory of a 1,000,000-message raid.

    python benchmarks/bench_sim.py          # full: 200k messages x 5 rounds, 1M-message raid
    python benchmarks/bench_sim.py --quick    # CI form: 30k messages x 3 rounds, 100k memory run

Throughput: the same messages go (a) through ``RaidModel`` with the full default
policy (surge detection, templates, number blocks, repeats, budget, provider
model) and (b) through a raw SimPy single-server queue where each message is a
process that requests a ``Resource`` and waits on two timeouts. Both run in this
process, interleaved, and the ratio of the medians is printed (target >= 0.4).
Traffic generation happens before timing for both. A diagnostic line repeats the
simulator's runs with every text already sketched (``TextSketches`` filled by one
untimed run), to show how much of the gap is per-text work; a second one times the
policy alone (``admit`` in a plain loop over the same messages, texts sketched, no
SimPy, no provider, no metrics), and a third the policy alone sketching each text as it
comes, as any single run must: the ceiling of the simulator's ratio, whatever the
simulator around the policy does.

Week: the reference week's traffic generation, one run, and one more sweep point that
shares the first run's text sketches and traffic, in wall seconds.

Memory: a raid scenario scaled to 1,000,000 messages is generated as a stream and
simulated in a child process; its own peak RSS (``VmHWM``) is printed (target < 1 GB).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "anti-relous-2017.toml"
MILLION = ROOT / "benchmarks" / "million-raid.toml"


def raw_simpy(n: int, gaps: list[float]) -> float:
    """Seconds for a raw SimPy single-server queue to serve ``n`` messages."""
    import simpy

    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)

    def customer(env: simpy.Environment) -> Any:
        with server.request() as req:
            yield req
            yield env.timeout(0.001)

    def source(env: simpy.Environment) -> Any:
        for gap in gaps:
            yield env.timeout(gap)
            env.process(customer(env))

    env.process(source(env))
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


def raidsim_model(records: list[Any], sketches: Any = None) -> float:
    """Seconds for the simulator (full default policy) to process ``records``; with
    ``sketches`` (a ``TextSketches`` filled beforehand) its texts are not sketched again."""
    from sim.model import RaidModel
    from sim.scenario import load_scenario

    scenario = load_scenario(SCENARIO)
    model = RaidModel(scenario.policy, seed=1, sketches=sketches)
    start = time.perf_counter()
    model.run(records)
    return time.perf_counter() - start


def policy_alone(records: list[Any], sketches: Any) -> float:
    """Seconds for the default policy alone to decide ``records``: ``admit`` in a plain
    loop with an in-memory ledger, texts already sketched, no SimPy, no provider, no
    metrics. A floor for the simulator: whatever the model does around it adds to this."""

    from responder.policy import MemoryLedger, Message, PolicyState, admit
    from sim.model import quiet_gc
    from sim.scenario import load_scenario

    policy = load_scenario(SCENARIO).policy
    state, ledger = PolicyState(policy, sketches=sketches), MemoryLedger()
    with quiet_gc():  # as RaidModel.run does
        start = time.perf_counter()
        for rec in records:
            t = rec.t
            admit(state, ledger, Message(rec.message_id, rec.sender, rec.to, rec.body, t),
                  now=t)
        return time.perf_counter() - start


def throughput(n: int, rounds: int) -> dict[str, Any]:
    from sim.scenario import load_scenario
    from sim.traffic import iter_generate

    scenario = load_scenario(SCENARIO)
    records: list[Any] = []
    while len(records) < n:  # repeat the reference raid, shifted, until n messages
        offset = records[-1].t + 1.0 if records else 0.0
        batch = len(records)
        for rec in iter_generate(scenario, scenario.seed + batch):
            records.append(_shift(rec, offset, batch))
            if len(records) >= n:
                break
    gaps = [b.t - a.t for a, b in zip([records[0], *records], records, strict=False)]
    # Diagnostic: the same runs with every text already sketched (normalised words,
    # 4-grams, phrases, index keys), filled by one untimed run: how much of the gap to
    # raw SimPy is per-text work rather than per-message rules and bookkeeping.
    from responder.policy import TextSketches

    sketched = TextSketches(scenario.policy.templates.min_words)
    raidsim_model(records, sketched)
    sim_times, raw_times, warm_times, alone_times, cold_times = [], [], [], [], []
    for _ in range(rounds):
        raw_times.append(raw_simpy(n, gaps))
        sim_times.append(raidsim_model(records))
        warm_times.append(raidsim_model(records, sketched))
        alone_times.append(policy_alone(records, sketched))
        cold_times.append(policy_alone(records, TextSketches(
            scenario.policy.templates.min_words)))
    sim_rate = n / statistics.median(sim_times)
    raw_rate = n / statistics.median(raw_times)
    warm_rate = n / statistics.median(warm_times)
    alone_rate = n / statistics.median(alone_times)
    cold_rate = n / statistics.median(cold_times)
    return {
        "messages": n,
        "rounds": rounds,
        "raidsim_msgs_per_s": round(sim_rate),
        "raw_simpy_msgs_per_s": round(raw_rate),
        "ratio": round(sim_rate / raw_rate, 3),
        "target_ratio": 0.4,
        "presketched_msgs_per_s": round(warm_rate),
        "presketched_ratio": round(warm_rate / raw_rate, 3),
        "policy_alone_msgs_per_s": round(alone_rate),
        "policy_alone_ratio": round(alone_rate / raw_rate, 3),
        "policy_alone_sketching_msgs_per_s": round(cold_rate),
        "policy_alone_sketching_ratio": round(cold_rate / raw_rate, 3),
    }


def week() -> dict[str, Any]:
    """Wall seconds for the reference week (2017 raid): generating its traffic alone, one
    run (which generates it as it goes), and one more sweep point (another surge factor)
    sharing the first run's text sketches and traffic, as ``raidsim sweep`` does."""
    from dataclasses import replace

    from sim.run import RunCache, job_from_inputs, run_once
    from sim.sweep import configure

    job, _ = job_from_inputs(scenario_path=SCENARIO, trace_path=None, policy_path=None,
                             seed=None)
    start = time.perf_counter()
    messages = sum(1 for _ in job.records(job.seed))
    generate = time.perf_counter() - start
    cache = RunCache()
    start = time.perf_counter()
    run_once(job, job.seed, cache=cache)
    first = time.perf_counter() - start  # generating the traffic as it goes
    point = replace(job, policy=configure(job.policy, {"surge.factor": job.policy.surge.factor
                                                       + 1}))
    start = time.perf_counter()
    run_once(point, job.seed, cache=cache)
    again = time.perf_counter() - start
    return {
        "messages": messages,
        "generate_s": round(generate, 2),
        "run_s": round(first, 2),
        "sweep_point_s": round(again, 2),
    }


def _shift(rec: Any, offset: float, batch: int) -> Any:
    from dataclasses import replace

    if not offset:
        return rec
    return replace(rec, t=rec.t + offset, message_id=f"{rec.message_id}-{batch}")


def _peak_rss_kib() -> int:
    """This process's own peak RSS. Linux carries ``ru_maxrss`` across fork and exec, so a
    child started after the throughput rounds would report the parent's (large) peak; the
    high-water mark of the child's own address space (``VmHWM``) is what it used."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _memory_child(messages: int) -> None:
    """Run in the child: stream and simulate the scaled raid, print messages and peak KiB."""
    from dataclasses import replace

    from sim.model import RaidModel
    from sim.scenario import load_scenario
    from sim.traffic import iter_generate

    scenario = load_scenario(MILLION)
    factor = messages / sum(t.messages for t in scenario.traffic)
    scenario = replace(scenario, traffic=tuple(
        replace(t, messages=max(1, round(t.messages * factor))) for t in scenario.traffic))
    out = RaidModel(scenario.policy, seed=1).run(iter_generate(scenario, scenario.seed))
    print(sum(out.metrics.messages.values()), _peak_rss_kib())


def memory(messages: int) -> dict[str, Any]:
    """Peak RSS of a child process that streams and simulates a raid of ``messages``."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--memory-child", str(messages)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    total, rss_kib = proc.stdout.split()
    return {
        "messages": int(total),
        "peak_rss_mib": round(int(rss_kib) / 1024, 1),
        "target_mib": 1024,
        "wall_s": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short form for CI")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child)
        return 0
    n, rounds, mem_n = (30_000, 3, 100_000) if args.quick else (200_000, 5, 1_000_000)
    result = {"throughput": throughput(n, rounds), "week": week(), "memory": memory(mem_n)}
    t, w, m = result["throughput"], result["week"], result["memory"]
    print(f"simulator: {t['raidsim_msgs_per_s']:,} msg/s with the full default policy; "
          f"raw SimPy queue {t['raw_simpy_msgs_per_s']:,} msg/s; "
          f"ratio {t['ratio']:.2f} (target >= {t['target_ratio']})")
    print(f"  diagnostic: with every text sketched beforehand {t['presketched_msgs_per_s']:,} "
          f"msg/s, ratio {t['presketched_ratio']:.2f} (the rest of the gap is per-message)")
    print(f"  diagnostic: the policy alone (admit in a loop, texts sketched, no SimPy) "
          f"{t['policy_alone_msgs_per_s']:,} msg/s, ratio {t['policy_alone_ratio']:.2f}")
    print(f"  diagnostic: the policy alone sketching each text as it comes, as one run must "
          f"{t['policy_alone_sketching_msgs_per_s']:,} msg/s, ratio "
          f"{t['policy_alone_sketching_ratio']:.2f} (no simulator around this policy can "
          "do better)")
    print(f"2017 week ({w['messages']:,} messages): one run {w['run_s']} s, of which "
          f"~{w['generate_s']} s generate the traffic; one more sweep point "
          f"{w['sweep_point_s']} s (text sketches and traffic shared)")
    print(f"memory: {m['messages']:,}-message raid peaks at {m['peak_rss_mib']:,} MiB RSS "
          f"(target < {m['target_mib']} MiB), {m['wall_s']} s")
    # the verdicts, last, in the shape bench_responder.py prints them (figures, not asserts)
    verdict = "PASS" if t["ratio"] >= t["target_ratio"] else "MISS"
    print(f"RATIO   {t['ratio']:.3f}  (simulator / raw SimPy, median of {rounds} rounds; "
          f"target >= {t['target_ratio']})  {verdict}")
    print(f"MEMORY  {m['peak_rss_mib']:,} MiB peak for {m['messages']:,} messages "
          f"(target < {m['target_mib']} MiB)  "
          f"{'PASS' if m['peak_rss_mib'] < m['target_mib'] else 'MISS'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
