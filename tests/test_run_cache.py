"""Runs of one sweep share text sketches and traffic, and get the same bytes as without."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from responder.policy import TextSketches
from sim.model import RaidModel
from sim.run import Job, RunCache, job_from_inputs, run_many, run_once
from sim.sweep import configure

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def drip() -> tuple[Job, list]:
    job, _ = job_from_inputs(scenario_path=ROOT / "scenarios" / "drip-raid.toml",
                             trace_path=None, policy_path=None, seed=None)
    return job, list(job.records(job.seed))


def decisions(job: Job, records: list, sketches: TextSketches | None = None) -> list:
    model = RaidModel(job.policy, provider=job.provider, faults=job.faults, seed=job.seed,
                      record_decisions=True, sketches=sketches)
    return model.run(records).decisions


def test_sketches_from_another_run_change_no_decision(drip) -> None:
    """A cache filled by a run with other settings gives every message the same decision."""
    job, records = drip
    sketches = TextSketches(job.policy.templates.min_words)
    other = replace(job, policy=configure(job.policy, {"surge.factor": 2.5,
                                                       "templates.hot_senders": 3}))
    decisions(other, records, sketches)
    filled = len(sketches)
    assert filled > 1000  # the drip raid's texts, sketched once
    assert decisions(job, records, sketches) == decisions(job, records)
    assert len(sketches) == filled  # the second run computed no new sketch


def test_a_cache_for_other_min_words_is_not_used(drip) -> None:
    job, _ = drip
    mine = TextSketches(job.policy.templates.min_words)
    other = TextSketches(job.policy.templates.min_words + 1)
    assert RaidModel(job.policy, sketches=mine).state.sketches is mine
    assert RaidModel(job.policy, sketches=other).state.sketches is not other


def counting(job: Job) -> tuple[Job, list[int]]:
    calls: list[int] = []

    def records(seed: int):
        calls.append(seed)
        return job.records(seed)

    return replace(job, records=records), calls


def test_a_sweep_generates_each_seeds_traffic_once(drip) -> None:
    job, _ = drip
    counted, calls = counting(job)
    policies = [configure(job.policy, {"surge.factor": f}) for f in (3, 6)]
    runs = [(policy, seed) for policy in policies for seed in (job.seed, job.seed + 1)]
    shared = list(run_many(counted, runs))
    assert sorted(calls) == [job.seed, job.seed + 1]  # once per seed, not once per run
    alone = [run_once(replace(job, policy=policy), seed)[0] for policy, seed in runs]
    assert json.dumps(shared, default=str) == json.dumps(alone, default=str)


def test_traffic_over_the_bound_is_generated_again_with_the_same_results(drip) -> None:
    job, records = drip
    counted, calls = counting(job)
    cache = RunCache(max_records=len(records) - 1)
    first = run_once(counted, job.seed, cache=cache)[0]
    second = run_once(counted, job.seed, cache=cache)[0]
    assert calls == [job.seed, job.seed]
    assert first == second == run_once(job, job.seed)[0]


def test_a_trace_is_read_once_whatever_the_seed(tmp_path: Path, drip) -> None:
    _, records = drip
    trace = tmp_path / "drip.jsonl"
    trace.write_text("".join(
        json.dumps({"t": r.t, "from": r.sender, "to": r.to, "body": r.body,
                    "label": r.label}) + "\n" for r in records[:2000]), encoding="utf-8")
    traced, _ = job_from_inputs(scenario_path=None, trace_path=trace, policy_path=None,
                                seed=None)
    counted, calls = counting(traced)
    cache = RunCache()
    results = [run_once(counted, seed, cache=cache)[0] for seed in (1, 2, 3)]
    assert len(calls) == 1
    assert results == [run_once(traced, seed)[0] for seed in (1, 2, 3)]
