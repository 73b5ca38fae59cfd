"""`raidsim sweep`: a grid of policy settings, with the Pareto front marked."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from sim.sweep import Point, pareto, parse_axis

ROOT = Path(__file__).resolve().parent.parent


def write_trace(path: Path) -> None:
    """A quiet day: 300 people, a third of whom write twice."""
    rng = random.Random(7)
    lines = []
    t = 0.0
    for i in range(300):
        sender = f"+336{rng.randrange(10**8):08d}"
        for k in range(1 + (i % 3 == 0)):
            t += rng.expovariate(1 / 240)
            body = f"Salut, c'est {rng.choice(['Marc', 'Léa', 'Tom', 'Inès'])} ({i}, {k})"
            lines.append(json.dumps({"t": round(t, 3), "from": sender, "to": "+33644649021",
                                     "body": body, "label": "legit"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def sweep_replies(trace: Path, out: Path) -> tuple[subprocess.CompletedProcess[str], list]:
    """``raidsim sweep --trace TRACE --param sender_limit.replies=1,2 --json OUT``."""
    run = subprocess.run(
        [sys.executable, "-m", "raidsim", "sweep", "--trace", str(trace),
         "--param", "sender_limit.replies=1,2", "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return run, json.loads(out.read_text())["points"]


def test_parse_axis_reads_typed_values() -> None:
    """Values are read as numbers, booleans or strings."""
    axis = parse_axis("templates.hot_senders=4, 6,8")
    assert axis.key == "templates.hot_senders" and axis.values == (4, 6, 8)
    assert parse_axis("surge.observe=10m,20m").values == ("10m", "20m")
    assert parse_axis("evasion.enabled=true,false").values == (True, False)
    with pytest.raises(ValueError, match="KEY=V1,V2"):
        parse_axis("templates.hot_senders")


def test_pareto_marks_only_undominated_points() -> None:
    """A point is on the front unless another is cheaper and covers at least as much."""
    def point(spend: str, coverage: float) -> Point:
        return Point({}, Decimal(spend), coverage, Decimal("100"))

    marked = pareto([point("100", 0.99), point("90", 0.99), point("80", 0.95),
                     point("95", 0.95)])
    assert [p.pareto for p in marked] == [False, True, True, False]


def test_sweep_command_runs_the_grid(tmp_path: Path) -> None:
    """The command runs every combination and writes them, front marked, as JSON."""
    trace = tmp_path / "quiet.jsonl"
    write_trace(trace)
    run, points = sweep_replies(trace, tmp_path / "sweep.json")
    assert [p["settings"]["sender_limit.replies"] for p in points] == [1, 2]
    # Two replies per sender cost more and cannot cover fewer genuine senders.
    assert points[1]["spend_eur"] > points[0]["spend_eur"]
    assert points[1]["legit_coverage"] >= points[0]["legit_coverage"]
    assert points[0]["pareto"]
    assert "pareto" in run.stdout
    # a knob may change only how long genuine senders wait: the table and JSON show it
    assert "p95 wait" in run.stdout
    assert all(isinstance(p["reply_latency_p95_s"], float) for p in points)


def test_sweep_in_several_processes_gives_the_same_points(tmp_path: Path) -> None:
    """--jobs shares the runs among worker processes; the JSON is byte for byte the same."""
    trace = tmp_path / "quiet.jsonl"
    write_trace(trace)
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"sweep-{jobs}.json"
        run = subprocess.run(
            [sys.executable, "-m", "raidsim", "sweep", "--trace", str(trace),
             "--param", "sender_limit.replies=1,2", "--param", "repeats.max_messages=2,4",
             "--seeds", "2", "--jobs", jobs, "--json", str(out)],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
        assert run.returncode == 0, run.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert len(json.loads(outputs[0])["points"]) == 4


def test_sweep_rejects_a_negative_job_count(tmp_path: Path) -> None:
    trace = tmp_path / "quiet.jsonl"
    write_trace(trace)
    run = subprocess.run(
        [sys.executable, "-m", "raidsim", "sweep", "--trace", str(trace),
         "--param", "sender_limit.replies=1,2", "--jobs", "-1"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert run.returncode == 2
    assert "--jobs" in run.stderr


def test_sweep_rejects_unknown_keys(tmp_path: Path) -> None:
    """An unknown policy key is a usage error naming the known keys."""
    trace = tmp_path / "quiet.jsonl"
    write_trace(trace)
    run = subprocess.run(
        [sys.executable, "-m", "raidsim", "sweep", "--trace", str(trace),
         "--param", "nosuch.key=1"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert run.returncode == 2
    assert "known keys" in run.stderr


def _on_a_terminal(args: list[str]) -> str:
    """Run ``raidsim`` with stdout and stderr on a pseudo-terminal; what it drew there."""
    import os
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "raidsim", *args], stdin=subprocess.DEVNULL,
                              stdout=slave, stderr=slave, cwd=ROOT, timeout=300)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_shows_on_a_terminal_unless_told_not_to(tmp_path: Path) -> None:
    trace = tmp_path / "quiet.jsonl"
    write_trace(trace)
    args = ["sweep", "--trace", str(trace), "--param", "sender_limit.replies=1,2"]
    assert "sweeping quiet [" in _on_a_terminal(args)
    quiet = _on_a_terminal([*args, "--no-progress"])
    assert "sweeping quiet" not in quiet and "pareto" in quiet


def test_sweep_over_traffic_without_legit_senders_ranks_by_spend(tmp_path: Path) -> None:
    """An unlabelled trace has no coverage to claim: n/a, and the front is the cheapest."""
    trace = tmp_path / "unlabelled.jsonl"
    write_trace(trace)
    trace.write_text("".join(
        json.dumps({k: v for k, v in json.loads(line).items() if k != "label"}) + "\n"
        for line in trace.read_text(encoding="utf-8").splitlines()), encoding="utf-8")
    run, points = sweep_replies(trace, tmp_path / "sweep.json")
    assert [p["legit_coverage"] for p in points] == [None, None]
    assert points[0]["spend_eur"] < points[1]["spend_eur"]
    assert [p["pareto"] for p in points] == [True, False]
    assert "n/a" in run.stdout


def test_sweep_json_dash_is_standard_output(tmp_path: Path) -> None:
    """`--json -` wrote a file named '-' (simulate and load write JSON to stdout); now the
    JSON goes to stdout, the table to stderr, and no file is made."""
    trace = tmp_path / "quiet.jsonl"
    write_trace(trace)
    run = subprocess.run(
        [sys.executable, "-m", "raidsim", "sweep", "--trace", str(trace), "--no-progress",
         "--param", "sender_limit.replies=1,2", "--param", "repeats.max_messages=9,8",
         "--json", "-"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    # keys are sorted in the file; ``axes`` keeps the flags' order, the grid's
    assert out["axes"] == ["sender_limit.replies", "repeats.max_messages"]
    assert out["params"] == {"sender_limit.replies": [1, 2], "repeats.max_messages": [9, 8]}
    assert [[p["settings"][k] for k in out["axes"]] for p in out["points"]] == [
        [1, 9], [1, 8], [2, 9], [2, 8]]
    assert "pareto" in run.stderr
    assert not (tmp_path / "-").exists()


def test_the_price_per_segment_can_be_swept_exactly() -> None:
    """`--param eur_per_segment=0.1,0.16` was read as floats, which the policy refuses
    with a hint to quote them, which a --param value cannot do."""
    from responder.policy import PolicyConfig
    from sim.sweep import configure

    axis = parse_axis("eur_per_segment=0.1,0.16")
    assert axis.values == ("0.1", "0.16")
    policy = configure(PolicyConfig(), {"eur_per_segment": axis.values[1]})
    assert policy.eur_per_segment == Decimal("0.16")


def _children(pid: int) -> list[int]:
    import os

    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_stops_a_sweep_in_several_processes() -> None:
    """SIGINT to the command and then to its process group (what `timeout -s INT` sends;
    an impatient double Ctrl-C) while worker processes run: exit 130 at once, no
    traceback, no worker left behind. It used to print 'interrupted' and then wait
    forever for a worker stuck on the pool's queue."""
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "raidsim", "sweep", "scenarios/anti-relous-2017.toml",
         "--param", "surge.factor=3,4,5,6,7,8", "--jobs", "2", "--no-progress"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 3 and time.monotonic() < deadline:  # + tracker
            time.sleep(0.1)
        workers = _children(proc.pid)
        time.sleep(2)  # the workers are running their first simulations
        os.kill(proc.pid, signal.SIGINT)  # as `timeout -s INT` does: the command, then
        os.killpg(proc.pid, signal.SIGINT)  # its group (a second Ctrl-C for the parent)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    time.sleep(0.5)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]]


def test_workers_leave_ctrl_c_to_the_parent(tmp_path: Path) -> None:
    """A worker process ignores SIGINT: the parent stops the pool (a worker interrupted
    inside the pool's queue code could leave its lock held and the parent hung at exit)."""
    trace = tmp_path / "quiet.jsonl"
    write_trace(trace)
    code = ("import signal, sys\nfrom pathlib import Path\n"
            "from sim.run import Inputs, _start_worker\n"
            "_start_worker(Inputs(trace_path=Path(sys.argv[1])))\n"
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)\n")
    run = subprocess.run([sys.executable, "-c", code, str(trace)], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"
