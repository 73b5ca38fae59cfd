"""A self-contained ``report.html``: inline CSS, PNGs as base64 data URIs, no script,
no external asset, so it opens offline, from a CI artefact, or attached to an e-mail."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from reports import summary
from reports.results import as_text

CSS = """
:root { color-scheme: light; --ok: #1e7b34; --bad: #b3261e; --ink: #1d2733; --mute: #5b6770; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #f6f7f9; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.55rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 10px; border-bottom: 1px solid #dde1e6;
     padding-bottom: 4px; }
.sub { color: var(--mute); margin: 0 0 18px; }
.badge { display: inline-block; padding: 3px 12px; border-radius: 999px; color: #fff;
         font-weight: 600; font-size: .95rem; vertical-align: middle; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); }
.failures { background: #fdecea; border: 1px solid #f5c2bd; border-radius: 8px;
            padding: 10px 16px; margin: 16px 0; }
.failures li { margin: 4px 0; }
table { border-collapse: collapse; width: 100%; background: #fff; border-radius: 8px;
        overflow: hidden; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
th, td { text-align: left; padding: 7px 12px; border-bottom: 1px solid #eef0f3;
         vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { color: var(--ok); font-weight: 600; } td.bad { color: var(--bad); font-weight: 600; }
code { font: 0.92em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
figure { margin: 0 0 22px; background: #fff; border-radius: 8px; padding: 10px;
         box-shadow: 0 1px 2px rgba(0,0,0,.06); }
figure img { display: block; width: 100%; height: auto; }
figcaption { color: var(--mute); font-size: .9rem; margin-top: 6px; }
footer { color: var(--mute); font-size: .85rem; margin-top: 32px; }
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _sentences(*parts: str) -> str:
    return " ".join(f"{p[0].upper()}{p[1:]}." for p in parts if p)


def _size(png: bytes) -> str:
    """``width=".." height=".."`` from the PNG header, so the layout does not jump."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return ""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return f'width="{width}" height="{height}"'


def render_html(results: Mapping[str, Any], plots: Sequence[tuple[str, str, bytes]]) -> str:
    """The report page. ``plots`` is ``[(file_name, caption, png_bytes), ...]``."""
    passed, verdict_text = summary.verdict(results)
    name = summary.title(results)
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>raidsim report: {escape(name)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>raidsim report: {escape(name)} "
        f'<span class="badge {"ok" if passed else "bad"}">'
        f'{"PASSED" if passed else "FAILED"}</span></h1>',
        f'<p class="sub">{escape(_sentences(verdict_text, summary.savings_text(results)))}</p>',
    ]
    thresholds = summary.threshold_rows(results)
    failures = [row for row in thresholds if not row[0]]
    if failures:
        out.append('<div class="failures"><strong>Failed thresholds</strong><ul>')
        out.extend(f"<li><code>{escape(expr)}</code>: {escape(outcome)}</li>"
                   for _, expr, outcome in failures)
        out.append("</ul></div>")

    out += ["<h2>Summary</h2>", "<table>"]
    out.extend(f"<tr><th scope=\"row\">{escape(label)}</th><td>{escape(value)}</td></tr>"
               for label, value in summary.fact_rows(results))
    out.append("</table>")

    if thresholds:
        out += ["<h2>Thresholds</h2>", "<table>",
                "<tr><th>result</th><th>threshold</th><th>outcome</th></tr>"]
        for ok, expr, outcome in thresholds:
            out.append(f'<tr><td class="{"ok" if ok else "bad"}">{"pass" if ok else "FAIL"}</td>'
                       f"<td><code>{escape(expr)}</code></td><td>{escape(outcome)}</td></tr>")
        out.append("</table>")

    out.append("<h2>Plots</h2>")
    for file_name, caption, png in plots:
        out.append(f'<figure id="{escape(file_name.removesuffix(".png"))}">'
                   f'<img src="{_data_uri(png)}" alt="{escape(caption)}" {_size(png)}>'
                   f"<figcaption>{escape(caption)} "
                   f"(<code>{escape(file_name)}</code>)</figcaption></figure>")

    decisions = summary.decision_rows(results)
    if decisions:
        out += ["<h2>Decisions by rule</h2>", "<table>",
                "<tr><th>rule</th><th>decisions</th><th>share</th></tr>"]
        out.extend(f'<tr><td><code>{escape(rule)}</code></td><td class="num">{escape(count)}'
                   f'</td><td class="num">{escape(share)}</td></tr>'
                   for rule, count, share in decisions)
        out.append("</table>")

    out += ["<footer>Generated by raidsim from <code>results.json</code> in this folder. "
            "Money is exact to the cent; a threshold on a missing metric fails.</footer>",
            "</main>", "</body>", "</html>", ""]
    return as_text("\n".join(out))
