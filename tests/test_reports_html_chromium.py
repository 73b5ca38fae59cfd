"""report.html renders in headless Chromium with no console error, and we screenshot it.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe``
(fds 3 and 4, NUL-separated JSON): no port, no websocket library, and every console
message, JS exception, log entry and network request is seen as an event.
Without Chromium the test skips locally but FAILS under CI=true.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from reports import apply, parse_threshold, write_report
from reports.results import load

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
LAPTOP = (1366, 768)


def _chromium() -> str:
    candidates = [os.environ.get("RAIDSIM_TEST_CHROMIUM"), "chromium", "chromium-browser",
                  "google-chrome"]
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    message = "headless Chromium not found (apt-get install chromium, or set RAIDSIM_TEST_CHROMIUM)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + "; CI must render the HTML report")
    pytest.skip(message)


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        high_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        high_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)

        def wire_pipes() -> None:  # runs in the child, before exec
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        # A file, not a pipe: nobody reads Chromium's chatter while it runs, and a full
        # pipe would block it.
        profile.mkdir(parents=True, exist_ok=True)
        self._log_path = profile.parent / "chromium-stderr.log"
        self._log = self._log_path.open("wb")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--no-default-browser-check",
             "--disable-dev-shm-usage", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            preexec_fn=wire_pipes, close_fds=False,
        )
        for fd in (to_browser_r, from_browser_w, high_in, high_out):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(max(0.1, deadline - time.monotonic()))
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("Chromium did not answer in time: "
                                   + self._stderr_tail())
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe: " + self._stderr_tail())
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    def _stderr_tail(self) -> str:
        self._log.flush()
        return self._log_path.read_bytes().decode(errors="replace")[-2000:]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)


def _render(page: Path, tmp_path: Path) -> tuple[list[str], dict[str, Any], bytes]:
    """Open ``page``; return (problems, page facts, full-page PNG screenshot)."""
    browser = DevTools(_chromium(), tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": LAPTOP[0], "height": LAPTOP[1], "deviceScaleFactor": 1,
                      "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": page.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        facts_js = """JSON.stringify({
            images: document.images.length,
            decoded: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0)
                       .length,
            scrollWidth: document.documentElement.scrollWidth,
            title: document.title,
            h1: document.querySelector('h1') && document.querySelector('h1').innerText,
            text: document.body.innerText})"""
        evaluated = browser.send("Runtime.evaluate", {"expression": facts_js,
                                                       "returnByValue": True}, session=session)
        facts = json.loads(evaluated["result"]["value"])
        shot = browser.send("Page.captureScreenshot",
                            {"format": "png", "captureBeyondViewport": True}, session=session)
        png = base64.b64decode(shot["data"])
        problems = []
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                problems.append(f"exception: {details.get('text')} "
                                f"{details.get('exception', {}).get('description', '')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                  "assert"):
                problems.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                problems.append(f"log error: {params['entry'].get('text')} "
                                f"{params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                problems.append(f"failed load: {params.get('errorText')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not (url.startswith("data:") or url == page.as_uri()):
                    problems.append(f"external request: {url}")
        return problems, facts, png
    finally:
        browser.close()


def test_report_html_renders_in_headless_chromium_without_console_errors(tmp_path: Path) -> None:
    """The report opens offline in Chromium: no console error, every plot decodes, it fits
    a laptop screen, and the screenshot is saved next to the report."""
    results = load(FIXTURES / "results_default.json")
    apply(results, [parse_threshold("spend_eur<=1"), parse_threshold("legit_coverage>=0.99")])
    out = tmp_path / "report"
    write_report(results, out, environ={})

    problems, facts, png = _render(out / "report.html", tmp_path)

    assert problems == []
    assert facts["images"] == 5
    assert facts["decoded"] == 5
    assert facts["scrollWidth"] <= LAPTOP[0], "the page scrolls sideways on a laptop"
    assert "FAILED" in facts["h1"]
    assert "spend_eur <= €1.00" in facts["text"]
    screenshot = out / "report-screenshot.png"
    screenshot.write_bytes(png)
    keep = os.environ.get("RAIDSIM_TEST_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "report-screenshot.png")

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        assert LAPTOP[0] - 20 <= image.width <= LAPTOP[0]
        assert image.height > LAPTOP[1], "the full page is taller than one screen"
        colours = image.convert("L").getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 50, "the screenshot is blank"


def test_report_html_without_optional_keys_renders_cleanly(tmp_path: Path) -> None:
    """A results file with only the required keys still gives a clean page with 5 figures."""
    results = load(FIXTURES / "results_minimal.json")
    out = tmp_path / "report"
    write_report(results, out, environ={})

    problems, facts, _png = _render(out / "report.html", tmp_path)

    assert problems == []
    assert facts["decoded"] == 5
    assert "No thresholds declared" in facts["text"]


def test_chromium_probe_sees_console_errors_exceptions_and_external_requests(
    tmp_path: Path,
) -> None:
    """The probe is not blind: a page with a console error, a throw and a remote image
    yields one problem of each kind (so an empty list above means something)."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        "<title>bad</title></head><body><p>bad</p>"
        '<img src="http://127.0.0.1:9/x.png" alt="remote">'
        "<script>console.error('boom from the page'); throw new Error('kaboom');</script>"
        "</body></html>",
        encoding="utf-8",
    )

    problems, _facts, _png = _render(page, tmp_path)

    text = "\n".join(problems)
    assert "boom from the page" in text
    assert "kaboom" in text
    assert "external request: http://127.0.0.1:9/x.png" in text
