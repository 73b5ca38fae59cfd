"""Write every report artefact of one results object into a folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports import html, junit, plots, results, summary


def write_report(
    results_obj: Mapping[str, Any], out_dir: str | Path, *,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write results.json, the PNG plots, report.html, summary.md and junit.xml.

    Returns the written paths, in that order. When ``GITHUB_STEP_SUMMARY`` is set in
    ``environ`` (default: ``os.environ``), summary.md is also appended to that file.
    """
    env = os.environ if environ is None else environ
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [results.write(results_obj, out / "results.json")]
    rendered = plots.render_all(results_obj)
    for file_name, _caption, png in rendered:
        path = out / file_name
        path.write_bytes(png)
        written.append(path)
    page = out / "report.html"
    page.write_text(html.render_html(results_obj, rendered), encoding="utf-8")
    written.append(page)
    markdown = summary.markdown(results_obj)
    summary_path = out / "summary.md"
    summary_path.write_text(markdown, encoding="utf-8")
    written.append(summary_path)
    junit_path = out / "junit.xml"
    junit_path.write_text(junit.junit_xml(results_obj), encoding="utf-8")
    written.append(junit_path)
    step_summary = env.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(markdown + "\n")
        except OSError as exc:
            # The report itself is written; the job summary is a courtesy of the CI, and
            # failing the gate over it would read as a failed threshold or a bad input.
            print(f"raidsim: warning: cannot append the summary to GITHUB_STEP_SUMMARY "
                  f"({step_summary}): {exc.strerror or exc}", file=sys.stderr)
    return written
