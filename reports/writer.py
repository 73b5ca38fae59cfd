"""Write every report artefact of one results object into a folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports import html, junit, plots, results, summary
from reports.files import replaced_whole


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
    # Everything is rendered before any file is written (the plots take seconds), and each
    # file is replaced whole: a run stopped meanwhile (Ctrl-C) leaves the folder as it
    # was, not a results.json without its report that reads as a finished one.
    rendered = plots.render_all(results_obj)
    markdown = summary.markdown(results_obj)
    files: list[tuple[str, bytes]] = [
        ("results.json", results.dumps(results_obj).encode("utf-8")),
        *((file_name, png) for file_name, _caption, png in rendered),
        ("report.html", html.render_html(results_obj, rendered).encode("utf-8")),
        ("summary.md", markdown.encode("utf-8")),
        ("junit.xml", junit.junit_xml(results_obj).encode("utf-8")),
    ]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, data in files:
        with replaced_whole(out / file_name, "wb") as handle:
            handle.write(data)
        written.append(out / file_name)
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
