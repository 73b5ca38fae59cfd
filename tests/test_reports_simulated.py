"""The reports on real simulator output: ``raidsim simulate --trace ... --report DIR``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from raidsim.cli import main
from reports.results import load

pytest.importorskip("simpy")


def _trace(path: Path) -> Path:
    """One hour: 60 legit senders writing once or twice, then a 10-minute copy-paste raid."""
    lines = []
    for i in range(60):
        t = 30.0 + i * 50.0
        sender = f"+3361000{i:04d}"
        lines.append({"t": t, "from": sender, "body": f"Salut, c'est {i}", "label": "legit"})
        if i % 4 == 0:
            lines.append({"t": t + 400.0, "from": sender, "body": "merci !", "label": "legit"})
    for k in range(600):
        lines.append({"t": 1800.0 + k, "from": f"+3369900{k % 12:04d}",
                      "body": f"ON VOUS A TROUVE LES RELOUS {k % 7}", "label": "raid"})
    lines.sort(key=lambda m: m["t"])
    with path.open("w", encoding="utf-8") as handle:
        for message in lines:
            message["to"] = "+33644649021"
            handle.write(json.dumps(message, ensure_ascii=False) + "\n")
    return path


def test_simulate_report_writes_every_artefact_from_real_results(tmp_path, capsys):
    """A real run's results drive all five plots with data, junit lists the breach, and
    `raidsim report` on the saved JSON reaches the same verdict byte for byte."""
    trace = _trace(tmp_path / "trace.jsonl")
    out = tmp_path / "report"
    code = main(["simulate", "--trace", str(trace), "--json", str(tmp_path / "r.json"),
                 "--report", str(out), "--threshold", "spend_eur<=0.01", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    for name in ("results.json", "report.html", "summary.md", "junit.xml", "inbound.png",
                 "spend.png", "latency.png", "decisions.png", "senders.png"):
        assert (out / name).stat().st_size > 0, name

    from PIL import Image

    for name in ("inbound.png", "spend.png", "decisions.png"):
        rgb = np.asarray(Image.open(io.BytesIO((out / name).read_bytes())).convert("RGB"),
                         dtype=np.int16)
        coloured = float((rgb.max(axis=2) - rgb.min(axis=2) > 60).mean())
        assert coloured > 0.002, f"{name}: the simulator's time series were not drawn"
    assert "spend_eur &lt;= €0.01" in (out / "junit.xml").read_text(encoding="utf-8")

    results = load(out / "results.json")
    assert results["passed"] is False
    assert results["messages"]["raid"] == 600

    again = tmp_path / "again"
    assert main(["report", str(out / "results.json"), "-o", str(again)]) == 1
    assert "threshold failed: spend_eur <= €0.01" in capsys.readouterr().out
    assert (again / "results.json").read_bytes() == (out / "results.json").read_bytes()


def test_compare_two_real_policies_shows_the_spend_delta_to_the_cent(tmp_path, capsys):
    """Two simulated runs of one trace under different policies: compare prints the
    exact difference of their spends, in euros and cents."""
    trace = _trace(tmp_path / "trace.jsonl")
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    policy = Path(__file__).parent / "fixtures" / "reports" / "lenient_policy.toml"
    assert main(["simulate", "--trace", str(trace), "--json", str(base), "--quiet",
                 "--no-progress"]) == 0
    assert main(["simulate", "--trace", str(trace), "--policy", str(policy), "--json",
                 str(new), "--quiet", "--no-progress"]) == 0
    capsys.readouterr()

    assert main(["report", "compare", str(base), str(new), "-o", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out

    from decimal import Decimal

    from reports.thresholds import format_eur

    delta = load(new)["spend_eur"] - load(base)["spend_eur"]
    assert isinstance(delta, Decimal) and delta > 0, "the lenient policy should cost more"
    assert delta == delta.quantize(Decimal("0.01"))
    assert f"This change costs {format_eur(delta, signed=True)} on " in out
    assert "policy default → policy lenient" in out
