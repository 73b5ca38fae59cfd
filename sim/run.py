"""One simulation job: scenario or trace in, results dict out (what ``raidsim simulate`` runs)."""

from __future__ import annotations

import math
import multiprocessing
import signal
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from responder.policy import PolicyConfig, TextSketches
from responder.policy.config import POLICY_FILE_HINT
from responder.policy.errors import ConfigError, locate, read_utf8
from responder.policy.money import format_eur, to_micros
from responder.sms import non_gsm7_characters, segment_info
from sim.metrics import BIN_S, MAX_SPAN_S
from sim.model import InboundRecord, RaidModel
from sim.provider import Fault, ProviderModel, parse_faults, parse_provider

# Two-sided 95% Student t critical values for df = 1..30; 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclass(frozen=True)
class Job:
    """Everything one run needs, resolved from the command line and the scenario file."""

    name: str
    seed: int
    policy: PolicyConfig
    provider: ProviderModel
    faults: tuple[Fault, ...]
    records: Callable[[int], Iterable[InboundRecord]]  # seed -> records
    regenerates: bool  # True when records depend on the seed (scenario traffic)
    source: Path | None = None  # the scenario file whose traffic it generates


def reply_warning(policy: PolicyConfig) -> str | None:
    """Explain what a UCS-2 or multi-segment reply text does to the cost, or None."""
    info = segment_info(policy.reply_text)
    per_segment = to_micros(policy.eur_per_segment)
    if info.encoding == "GSM-7" and info.segments == 1:
        return None
    reasons = []
    chars = ", ".join(repr(c) for c in non_gsm7_characters(policy.reply_text)[:8])
    if info.segments == 1:  # UCS-2, but still one segment: the same cost, less room
        return (
            f"the reply text is UCS-2 because of {chars}: it fits one segment "
            f"(€{format_eur(per_segment)} per reply, {info.units} of 70 units), but past 70 "
            "characters it costs a segment per 67, where GSM-7 fits 160 in one; rewrite "
            "those characters in GSM-7 for room (check with `raidsim segments TEXT "
            "--explain`)."
        )
    if info.encoding == "UCS-2":
        reasons.append(f"it is UCS-2 because of {chars} (70 units per segment, 67 when split)")
    if info.segments > 1:
        reasons.append(f"it needs {info.segments} segments ({info.units} units)")
    return (
        f"the reply text costs €{format_eur(info.segments * per_segment)} per reply, "
        f"{info.segments}x the €{format_eur(per_segment)} of a one-segment GSM-7 text: "
        + "; ".join(reasons)
        + ". Every spend figure scales with it; rewrite the text in GSM-7 within 160 "
        "characters to pay for one segment (check with `raidsim segments TEXT --explain`)."
    )


class RunCache:
    """What the runs of one sweep or replication set share within a process.

    - Text sketches (``TextSketches``, one per ``templates.min_words``): a sketch depends
      only on the text, so each distinct text is normalised and shingled once, not once
      per run.
    - The traffic of each seed, while the total kept stays under ``max_records``: the
      points of a sweep replay the same messages, which are then generated (or read
      from the trace file) once. A run's traffic past the bound streams as usual.

    Neither changes a result: runs with and without a cache give the same bytes.
    """

    def __init__(self, *, max_records: int = 200_000) -> None:
        self.max_records = max_records
        self._sketches: dict[int, TextSketches] = {}
        self._records: dict[int | None, list[InboundRecord]] = {}
        self._kept = 0

    def sketches(self, policy: PolicyConfig) -> TextSketches:
        min_words = policy.templates.min_words
        cache = self._sketches.get(min_words)
        if cache is None:
            cache = self._sketches[min_words] = TextSketches(min_words)
        return cache

    def records(self, job: Job, seed: int) -> Iterable[InboundRecord]:
        key = seed if job.regenerates else None  # a trace is the same whatever the seed
        kept = self._records.get(key)
        if kept is not None:
            return kept
        return self._keep(key, job.records(seed))

    def _keep(self, key: int | None, source: Iterable[InboundRecord]
              ) -> Iterator[InboundRecord]:
        room = self.max_records - self._kept
        kept: list[InboundRecord] | None = [] if room > 0 else None
        for record in source:
            if kept is not None:
                if len(kept) < room:
                    kept.append(record)
                else:
                    kept = None  # too long to keep: later runs generate it again
            yield record
        if kept is not None:
            self._records[key] = kept
            self._kept += len(kept)


def run_once(job: Job, seed: int, *, progress: Callable[[int], None] | None = None,
             record_decisions: bool = False, cache: RunCache | None = None
             ) -> tuple[dict[str, Any], Any]:
    model = RaidModel(job.policy, provider=job.provider, faults=job.faults, seed=seed,
                      record_decisions=record_decisions, progress=progress,
                      sketches=cache.sketches(job.policy) if cache is not None else None)
    outcome = model.run(cache.records(job, seed) if cache is not None else job.records(seed))
    if job.regenerates and not sum(outcome.metrics.messages.values()):
        # scored, a run of no message passes every cost gate (an empty trace is refused
        # for the same reason): a flood at 1e-300 a second, a press wave that decays at
        # once, a source starting a millisecond before the end
        raise ConfigError(
            f"the scenario's traffic sent no message (seed {seed}): scored, the run would "
            "pass every cost gate", path=job.source, line=_first_traffic_line(job.source),
            hint="each [[traffic]] source must send at least one message in its window: "
            "raise its rate or messages, or widen its window (start, duration)")
    budget = job.policy.budget
    results = outcome.metrics.results(
        scenario=job.name,
        seed=seed,
        policy=job.policy.name,
        cap_micros=budget.total_micros if budget.enabled else None,
        raid_periods=outcome.state.raid_periods,
        end_s=outcome.end_s,
        extra={
            "reply": {
                "text": job.policy.reply_text,
                **segment_info(job.policy.reply_text).__dict__,
                "eur_per_segment": float(job.policy.eur_per_segment),
            },
            # only when the run had to stop at the horizon (MAX_SPAN_S): what it left
            **({"stopped_at_horizon": {"at_s": outcome.end_s,
                                       "replies_never_sent": outcome.unsent_at_horizon,
                                       "last_message_minute_s": _last_minute(outcome)}}
               if outcome.unsent_at_horizon else {}),
        },
    )
    return results, outcome


def _first_traffic_line(path: Path | None) -> int | None:
    """The line of a scenario file's first traffic table, if the file can be read."""
    from sim.scenario import traffic_line

    if path is None:
        return None
    try:
        return traffic_line(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def horizon_warning(results: dict[str, Any]) -> str | None:
    """What to tell the user when a run stopped at MAX_SPAN_S with replies left."""
    stopped = results.get("stopped_at_horizon")
    if not stopped:
        return None
    last = stopped.get("last_message_minute_s")
    if last is not None and MAX_SPAN_S - last <= _LATE_S:
        hint = (f"messages came until day {last / 86400:,.1f}, within a day of the end of "
                f"the {MAX_SPAN_S // 86400} days a run covers: too late for their replies; "
                "end the trace or scenario earlier")
    else:
        hint = ("check provider.segments_per_second, latency_median, breaker_cooldown and "
                "policy.surge.max_hold")
    return (f"{stopped['replies_never_sent']:,} replies were never sent (queued, being sent "
            f"or held): the run stopped at {stopped['at_s'] / 86400:,.1f} days because what "
            f"was left would only happen after {MAX_SPAN_S // 86400} days (hint: {hint})")


_LATE_S = 86400.0  # messages this close to MAX_SPAN_S may be answered only after it


def _last_minute(outcome: Any) -> float:
    """Start of the last minute (metrics bin) in which a message arrived."""
    bins = max((len(series) for series in outcome.metrics.inbound_bins.values()), default=1)
    return float((bins - 1) * BIN_S)


def _ci95(values: Sequence[float], *, bounds: tuple[float, float] = (-math.inf, math.inf)
          ) -> dict[str, float | None]:
    """Mean and Student-t 95% interval, clipped to ``bounds`` (a share stays in [0, 1]),
    and ``runs``, how many values it stands on (a run with no legit reply has no latency);
    mean, low and high are None when there is no value at all."""
    runs = len(values)
    if not values:
        return {"mean": None, "low": None, "high": None, "runs": 0}
    mean = statistics.fmean(values)
    if runs < 2:
        return {"mean": round(mean, 6), "low": round(mean, 6), "high": round(mean, 6),
                "runs": runs}
    df = runs - 1
    t = _T95[df - 1] if df <= len(_T95) else _t95_large(df)
    half = t * statistics.stdev(values) / math.sqrt(runs)
    low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])
    return {"mean": round(mean, 6), "low": round(low, 6), "high": round(high, 6),
            "runs": runs}


def _t95_large(df: int) -> float:
    """The two-sided 95% Student t value beyond the table (df > 30): the Cornish-Fisher
    expansion around z = 1.96, within 1e-4 of the exact value there (2.0395 at df 31,
    2.0211 at df 40); 1.96 alone would make the interval too narrow."""
    z = 1.959963984540054
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def _money_ci(values: Sequence[Any]) -> dict[str, float | None]:
    exact = [Decimal(str(v)) for v in values]
    mean = sum(exact, Decimal(0)) / len(exact)
    out = _ci95([float(v) for v in exact], bounds=(0.0, math.inf))  # spend is never < 0
    out["mean"] = float(mean.quantize(Decimal("0.000001")))
    return out


@dataclass(frozen=True)
class Inputs:
    """What a job is built from (``job_from_inputs``), so that a worker can rebuild it."""

    scenario_path: Path | None = None
    trace_path: Path | None = None
    policy_path: Path | None = None
    seed: int | None = None

    def job(self) -> Job:
        return job_from_inputs(scenario_path=self.scenario_path, trace_path=self.trace_path,
                               policy_path=self.policy_path, seed=self.seed)[0]


_worker_job: Job | None = None
_worker_cache: RunCache | None = None


def _start_worker(inputs: Inputs) -> None:
    global _worker_job, _worker_cache
    # Ctrl-C reaches the whole process group: the parent handles it and stops the
    # workers; a worker that raised KeyboardInterrupt itself could leave the pool's
    # queues locked and the parent waiting for it forever at exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_job = inputs.job()
    _worker_cache = RunCache()


def _worker_run(policy: PolicyConfig, seed: int) -> dict[str, Any]:
    assert _worker_job is not None
    return run_once(replace(_worker_job, policy=policy), seed, cache=_worker_cache)[0]


def run_many(job: Job, runs: Sequence[tuple[PolicyConfig, int]], *, jobs: int = 1,
             inputs: Inputs | None = None, progress: Callable[[int], None] | None = None
             ) -> Iterator[dict[str, Any]]:
    """The results of each (policy, seed) run of ``job``, in order; ``progress(runs done)``.

    With ``jobs`` > 1 the runs are shared among that many worker processes, each of which
    rebuilds the job from ``inputs``. Every run is deterministic, so the results are the
    same as in one process.
    """
    if jobs <= 1 or len(runs) <= 1:
        cache = RunCache()
        for done, (policy, seed) in enumerate(runs, 1):
            yield run_once(replace(job, policy=policy), seed, cache=cache)[0]
            if progress is not None:
                progress(done)
        return
    if inputs is None:
        raise ValueError("running in several processes needs the job's inputs")
    # spawn: a fresh interpreter per worker, the same on every platform
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(runs)),
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(inputs,))
    try:
        futures = [pool.submit(_worker_run, policy, seed) for policy, seed in runs]
        for done, future in enumerate(futures, 1):
            yield future.result()
            if progress is not None:
                progress(done)
    except BaseException:  # Ctrl-C, a failed run, or the caller stopped early
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Drop the queued runs and end the workers now, rather than wait for the runs in
    progress (a big scenario's run can take minutes) or hang on a worker that the same
    Ctrl-C interrupted."""
    for worker in list((getattr(pool, "_processes", None) or {}).values()):
        if worker.is_alive():
            worker.terminate()
    # then wait for the pool's manager thread: left running, it races the interpreter's
    # exit hook and prints an ignored 'Bad file descriptor' traceback
    pool.shutdown(wait=True, cancel_futures=True)


def replicate(job: Job, n: int, *, progress: Callable[[int], None] | None = None,
              jobs: int = 1, inputs: Inputs | None = None) -> dict[str, Any]:
    """Run ``n`` seeds (seed, seed+1, ...); the first run's results plus 95% intervals.

    In one process ``progress`` gets each run's message count; with ``jobs`` > 1 (see
    ``run_many``) it gets the number of runs done.
    """
    if jobs > 1 and n > 1:
        runs = list(run_many(job, [(job.policy, job.seed + i) for i in range(n)], jobs=jobs,
                             inputs=inputs, progress=progress))
    else:
        # a scenario's seeds each have their own traffic: then only the sketches are shared
        cache = RunCache(max_records=0) if job.regenerates else RunCache()
        runs = [run_once(job, job.seed + i, progress=progress, cache=cache)[0]
                for i in range(n)]
    first = runs[0]
    if n > 1:
        first["replications"] = {
            "n": n,
            "seeds": [r["seed"] for r in runs],
            "regenerated_traffic": job.regenerates,
            "spend_eur": _money_ci([r["spend_eur"] for r in runs]),
            "oracle_spend_eur": _money_ci([r["oracle_spend_eur"] for r in runs]),
            "naive_spend_eur": _money_ci([r["naive_spend_eur"] for r in runs]),
            "legit_coverage": _ci95(
                [c for r in runs if (c := r["legit_coverage"]) is not None], bounds=(0.0, 1.0)),
            # over the runs that replied to someone (a run with no legit reply has none)
            "reply_latency_s.p95": _ci95(
                [p95 for r in runs if (p95 := r["reply_latency_s"]["p95"]) is not None],
                bounds=(0.0, math.inf)),
            "messages.raid": _ci95([r["messages"]["raid"] for r in runs],
                                   bounds=(0.0, math.inf)),
        }
    return first


def _keep_reply_and_price(loaded: PolicyConfig, scenario: Any, policy_path: Path) -> PolicyConfig:
    """A policy file replaces the scenario's defences. The reply text and the price per
    segment are the scenario's where it sets them, and the file's where it does not; a
    file that sets one of them to another value than the scenario is an error, as the
    same two keys in a scenario's own [policy] table are."""
    default = PolicyConfig()
    changes: dict[str, Any] = {}
    for key, where in (("reply_text", "[reply] text"),
                       ("eur_per_segment", "[pricing] eur_per_segment")):
        if key not in scenario.sets:
            continue  # the scenario leaves it to its default: the file's value stands
        mine, theirs = getattr(loaded, key), getattr(scenario.policy, key)
        if mine != getattr(default, key) and mine != theirs:
            text = read_utf8(policy_path, "policy file", hint=POLICY_FILE_HINT)
            line = locate(text, key) or locate(text, f"policy.{key}")
            raise ConfigError(
                f"{key} is set here and, to another value, by the scenario "
                f"{scenario.path or scenario.name} ({where})", path=policy_path, line=line,
                hint="set it in one place: remove it from this file, or from the scenario")
        changes[key] = theirs
    return replace(loaded, **changes)


def dropped_caps_warning(scenario: Any, policy: PolicyConfig, policy_path: Path | None
                         ) -> str | None:
    """A warning when ``--policy`` replaced a scenario [policy] whose budget caps it does
    not keep: a file written to tune one knob would otherwise lift a hard cap unseen."""
    if scenario is None or policy_path is None:
        return None
    mine, theirs = policy.budget, scenario.policy.budget
    if not theirs.enabled:
        return None
    lost = [f"{what} €{format_eur(cap)}" for what, cap, kept in (
        ("total_eur", theirs.total_micros, mine.total_micros if mine.enabled else None),
        ("per_hour_eur", theirs.per_hour_micros, mine.per_hour_micros if mine.enabled else None))
        if cap is not None and kept != cap]
    if not lost:
        return None
    return (f"--policy {policy_path} replaces the scenario's [policy], and with it its budget "
            f"cap ({', '.join(lost)}); copy its [budget] table into the file to keep the cap")


def job_from_inputs(
    *,
    scenario_path: Path | None,
    trace_path: Path | None,
    policy_path: Path | None,
    seed: int | None,
) -> tuple[Job, Any]:
    """Resolve a job; returns it with the loaded scenario (or None)."""
    scenario: Any = None
    policy = PolicyConfig()
    provider = ProviderModel()
    faults: tuple[Fault, ...] = ()
    name = "trace"
    base_seed = 0
    if scenario_path is not None:
        from sim.scenario import load_scenario

        scenario = load_scenario(scenario_path, need_traffic=trace_path is None)
        policy = scenario.policy
        provider = parse_provider(scenario.provider, path=scenario_path, text=scenario.text)
        faults = parse_faults(scenario.faults, path=scenario_path, text=scenario.text)
        name = scenario.name
        base_seed = scenario.seed
    if policy_path is not None:
        loaded = PolicyConfig.load(policy_path)
        if scenario is not None:
            loaded = _keep_reply_and_price(loaded, scenario, policy_path)
        policy = loaded
    if seed is not None:
        base_seed = seed
    if trace_path is not None:
        from sim.trace import read_trace

        path = trace_path
        if scenario is None:
            name = path.stem

        def records(_seed: int) -> Iterable[InboundRecord]:
            return read_trace(path)

        return Job(name, base_seed, policy, provider, faults, records, False), scenario

    from sim.traffic import iter_generate

    def generated(run_seed: int) -> Iterable[InboundRecord]:
        return iter_generate(scenario, run_seed)

    return Job(name, base_seed, policy, provider, faults, generated, True,
               scenario_path), scenario


def eur_text(value: Any) -> str:
    return "€" + format_eur(to_micros(Decimal(str(value))))


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The human summary ``raidsim simulate`` prints."""
    from reports.summary import percent_text

    m = results["messages"]
    lat = results["reply_latency_s"]
    reply = results.get("reply", {})
    cap = results["budget"]["cap_eur"]
    rules = results["decisions"]["by_rule"]
    top = sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
    raid_mode = results.get("raid_mode", {})
    spend = Decimal(str(results["spend_eur"]))
    oracle = Decimal(str(results["oracle_spend_eur"]))
    ratio = f" ({spend / oracle:.2f}x oracle)" if oracle else ""
    lines = [
        f"raidsim simulate: {results['scenario']} (seed {results['seed']}, "
        f"policy {results['policy']})",
        f"  messages          {m['total']:,} (legit {m['legit']:,}, raid {m['raid']:,})",
    ]
    if reply:
        lines.append(
            f"  reply             {reply.get('encoding')}, {reply.get('segments')} segment(s), "
            f"{eur_text(results['reply_cost_eur'])} each"
        )
    lines += [
        f"  naive spend       {eur_text(results['naive_spend_eur']):>12}  "
        "one reply per message (what the 2017 service did)",
        f"  per-sender spend  {eur_text(results['per_sender_spend_eur']):>12}  "
        "one reply per sender",
        f"  defended spend    {eur_text(results['spend_eur']):>12}  "
        f"{results['policy']} defences{ratio}"
        + (f", cap {eur_text(cap)}" if cap is not None else ""),
        f"  oracle spend      {eur_text(results['oracle_spend_eur']):>12}  "
        "one reply per legit sender",
        (f"  legit coverage    {percent_text(results['legit_coverage'])} "
         f"({results['legit_senders_replied']:,} of {results['legit_senders']:,} legit senders)"
         if results["legit_coverage"] is not None else
         "  legit coverage    n/a (no message labelled legit)"),
        (f"  reply latency     p50 {lat['p50']:,.1f} s, p95 {lat['p95']:,.1f} s, "
         f"p99 {lat['p99']:,.1f} s" if lat["p50"] is not None else
         "  reply latency     n/a (no legit sender got a reply)"),
        f"  raid mode         {len(raid_mode.get('periods', []))} period(s), "
        f"{raid_mode.get('total_s', 0) / 3600:.1f} h in total",
        "  decisions         " + ", ".join(f"{k} {v:,}" for k, v in top),
    ]
    reps = results.get("replications")
    if reps:
        s = reps["spend_eur"]
        c = reps["legit_coverage"]
        coverage = (f", coverage {percent_text(c['mean'])} [{percent_text(c['low'])}, "
                    f"{percent_text(c['high'])}]" if c["mean"] is not None else "")
        lines.append(
            f"  {reps['n']} replications  spend {eur_cents(s['mean'])} "
            f"[{eur_cents(s['low'])}, {eur_cents(s['high'])}]{coverage} (95% CI)"
        )
    return lines


def eur_cents(value: Any) -> str:
    """A statistic about money (a mean, a bound), shown to the cent."""
    return "€" + format_eur(to_micros(Decimal(str(value)).quantize(Decimal("0.01"))))
