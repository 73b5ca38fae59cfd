"""JUnit XML: one test case per threshold, so CI dashboards list the gate like tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from reports.console import describe, threshold_entries
from reports.results import as_text
from reports.thresholds import format_value, to_decimal


def junit_xml(results: Mapping[str, Any]) -> str:
    """The document as text. No timestamps or host names, so it is reproducible."""
    scenario = str(results.get("scenario") or "results")
    entries = threshold_entries(results)
    failures = [e for e in entries if e.get("ok") is not True]
    suites = ET.Element("testsuites", name="raidsim", tests=str(len(entries)),
                        failures=str(len(failures)), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=f"raidsim thresholds: {scenario}",
                          tests=str(len(entries)), failures=str(len(failures)), errors="0",
                          skipped="0", time="0")
    properties = ET.SubElement(suite, "properties")
    for key in ("scenario", "policy", "seed"):
        if results.get(key) is not None:
            ET.SubElement(properties, "property", name=key, value=str(results[key]))
    for entry in entries:
        name = str(entry["name"])
        limit = to_decimal(entry.get("limit"))
        shown_limit = format_value(name, limit) if limit is not None else str(entry.get("limit"))
        case = ET.SubElement(suite, "testcase", classname=f"raidsim.thresholds.{scenario}",
                             name=f"{name} {entry.get('op')} {shown_limit}", time="0")
        if entry.get("ok") is True:
            continue
        value = to_decimal(entry.get("value"))
        shown_value = format_value(name, value) if value is not None else "missing"
        failure = ET.SubElement(case, "failure", type="ThresholdFailed",
                                message=f"{describe(entry)} (limit {entry.get('op')} "
                                        f"{shown_limit})")
        failure.text = (f"metric: {name}\nvalue: {shown_value}\n"
                        f"limit: {entry.get('op')} {shown_limit}\n"
                        f"{entry.get('message') or ''}\n")
    ET.indent(suites)
    return as_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                   + ET.tostring(suites, encoding="unicode") + "\n")
