"""The report in a real browser: headless Chromium, network off, over the DevTools protocol.

Checks what an auditor's browser does with the file: no request leaves the page (the CSP and
the inline charts need none), no console error or CSP violation, no script runs (the
attacker-named user shows as text and opens no dialog), and each section renders to a
screenshot that is not blank. Skipped, with the reason, only where no Chromium is installed
(`.ci/run` installs the Debian package).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from claudesec.audit import AuditEvent
from claudesec.audit.report import ReportInputs, build_report, render_html
from claudesec.config import AlertsConfig
from claudesec.emulator.seed import seed_audit

from ...fixtures.browser import Chromium, distinct_colours, find_chromium
from ..helpers import DAY_NS, open_store

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (apt-get install chromium; .ci/run does)"
)
EVIL_USER = "<script>alert(1)</script>"
SECTIONS = ("integrity", "access", "cost", "keys", "defences")


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    now = time.time_ns()
    store = open_store(tmp_path / "audit.db", checkpoint_every=1000)
    seed_audit(store, days=30, now_ns=now)
    store.append(AuditEvent(type="call", user=EVIL_USER, model="claude-haiku-5-5", time_ns=now))
    report = build_report(
        store,
        ReportInputs(
            since_ns=now - 30 * DAY_NS,
            until_ns=now + DAY_NS,
            now_ns=now,
            alerts=AlertsConfig(allowed_hours="07-19"),
            drills={
                "drills": [{"name": "leak-in-commit", "status": "passed", "time_to_block_ms": 4}]
            },
            drills_source="drills.json",
        ),
    )
    store.close()
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_report_loads_offline_with_no_request_no_error_and_visible_sections(
    report_file: Path, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    browser = Chromium(CHROMIUM, tmp_path / "profile")
    try:
        url = report_file.as_uri()
        session = browser.open_page(url)
        # Everything the page could still be doing has started by the load event; one more
        # round trip drains events already queued behind it.
        assert browser.evaluate(session, "document.readyState") == "complete"
        events = list(browser.events)

        requests = [
            e["params"]["request"]["url"]
            for e in events
            if e["method"] == "Network.requestWillBeSent" and e["params"]["request"]["url"] != url
        ]
        assert requests == []
        errors = [
            e
            for e in events
            if e["method"] in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")
            or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
            or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]
        assert errors == []
        assert browser.evaluate(session, "document.scripts.length") == 0
        assert browser.evaluate(session, f"document.body.innerText.includes({EVIL_USER!r})") is True
        assert browser.evaluate(session, "document.querySelectorAll('svg.chart').length") >= 8

        for section in SECTIONS:
            rect = browser.evaluate(
                session,
                f"(() => {{ const r = document.getElementById({section!r})"
                ".getBoundingClientRect(); return {x: r.left + scrollX, y: r.top + scrollY,"
                " width: r.width, height: r.height}; })()",
            )
            assert rect["width"] > 100 and rect["height"] > 100, (section, rect)
            png = browser.screenshot(session, rect)
            (tmp_path / f"{section}.png").write_bytes(png)
            assert distinct_colours(png) > 8, section
    finally:
        browser.close()
