"""The HTML report opened in a real browser: Debian's headless Chromium (``/usr/bin/chromium``,
installed by ``tools/install-chromium.sh`` from ``make test``), driven by Playwright, which
starts the given executable and never downloads a browser of its own. The page is opened from
disk (``file://``), as a person opens the report.

Checked: the page loads without console errors, page errors or failed requests, and fetches
nothing but itself; every image decodes at the size of its PNG on disk; title and headings;
the trials table opens; and in a report of hostile names (tests/reportstores.py) no injected
script runs, no element or attribute is added, and every name shows literally.

Skips, saying why, only where Chromium is not installed (set ``TRAINLAB_CHROMIUM`` to use
another Chromium-based browser)."""

from __future__ import annotations

import os
import shutil
import struct
from collections import Counter
from pathlib import Path

import pytest
from reportstores import (
    ATTRIBUTES,
    HOSTILE_ALGORITHMS,
    HOSTILE_DIR,
    HOSTILE_WORKLOADS,
    PLAIN_ALGORITHMS,
    PLAIN_WORKLOADS,
    TAGS,
    hostile_store,
    hostile_texts,
    hp_json,
    workload_name,
    write_store,
)

from trainlab.report.html import build_report

# Playwright adds --headless itself, and a fresh, empty --user-data-dir per launch. Without the
# networking flags Chromium tries Google's hosts at start, which a closed network refuses.
FLAGS = [
    "--no-sandbox",  # as root, Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECTIONS = ["Scores", "Performance profiles", "Time to target", "Learning curves", "Tuning cost",
            "Model cost", "Trials"]


def chromium_path() -> str | None:
    """The Chromium to test with: ``$TRAINLAB_CHROMIUM``, else ``chromium`` on the PATH."""
    return (
        os.environ.get("TRAINLAB_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip(
            "chromium not found: `make test` installs Debian's chromium as root with apt-get "
            "(tools/install-chromium.sh); or set TRAINLAB_CHROMIUM"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')"
    )
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=FLAGS, timeout=120_000)
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """A page opened in a fresh browser context, with everything it did while loading."""

    def __init__(self, browser, index: Path) -> None:
        self.context = browser.new_context()
        self.page = page = self.context.new_page()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url[:100]}: {r.failure}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", self._dialog)
        page.goto(index.as_uri(), wait_until="load")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def js(self, expression: str):
        return self.page.evaluate(expression)

    def assert_clean(self, index: Path) -> None:
        """No console error, no page error, no dialog, no failed request, and the only request
        was the page itself (the images are inlined)."""
        assert [m for m in self.console if m.startswith("error")] == []
        assert self.errors == [] and self.dialogs == [] and self.failed == []
        assert self.requests == [index.as_uri()]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


IMAGES = "[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
TAGS_JS = "[...new Set([...document.querySelectorAll('*')].map(e => e.localName))]"
ATTRS_JS = (
    "[...new Set([...document.querySelectorAll('*')]"
    ".flatMap(e => [...e.attributes].map(a => a.name)))]"
)


def test_report_loads_cleanly_with_every_image(browser, tmp_path):
    db = tmp_path / "s.db"
    bid = write_store(db, PLAIN_ALGORITHMS, PLAIN_WORKLOADS, studies=2)
    out = tmp_path / "report"
    index = build_report(db, out, bid, n_boot=50)
    visit = Visit(browser, index)
    try:
        visit.assert_clean(index)
        page = visit.page
        assert page.title() == f"trainlab benchmark {bid}"
        assert page.inner_text("h1") == f"trainlab benchmark {bid}"
        h2 = [h.split(" (")[0] for h in visit.js("[...document.querySelectorAll('h2')]"
                                                 ".map(h => h.textContent)")]  # fmt: skip
        assert h2 == SECTIONS

        images = visit.js(IMAGES)
        pngs = sorted(out.glob("*.png"))
        # scores, speedups, profiles and ratios by time and by steps; a learning-curve and a
        # learning-rate plot per workload
        assert len(pngs) == 8 + 2 * len(PLAIN_WORKLOADS)
        assert all(complete and width > 0 for complete, width, _, _ in images)
        # every image decoded at the size of its PNG: each file is on the page, whole
        assert Counter((w, h) for _, w, h, _ in images) == Counter(png_size(p) for p in pngs)
        alts = {alt for *_, alt in images}
        for workload, variant in PLAIN_WORKLOADS:
            assert f"learning curves of {workload_name(workload, variant)}" in alts

        # the trials table is folded away until its summary is clicked
        trials = len(PLAIN_ALGORITHMS) * len(PLAIN_WORKLOADS) * 2 * 2
        table = page.locator("details table")
        assert not table.is_visible()
        page.click("summary")
        assert table.is_visible()
        assert table.locator("tr").count() == trials + 1
        assert page.inner_text("summary") == f"{trials} trials"
    finally:
        visit.context.close()


def test_hostile_names_show_literally_and_run_nothing(browser, tmp_path):
    store, bid = hostile_store(tmp_path)
    index = build_report(store, tmp_path / "report", bid, n_boot=0)
    visit = Visit(browser, index)
    try:
        visit.assert_clean(index)
        # every payload sets window.__xss (or opens an alert) when it runs
        assert visit.js("typeof window.__xss") == "undefined"
        # the browser's own parser found only the report's elements and attributes
        assert set(visit.js(TAGS_JS)) <= TAGS | {"tbody"}  # tbody: implied by the parser
        assert set(visit.js(ATTRS_JS)) <= ATTRIBUTES
        assert visit.js("document.images.length") == len(list(index.parent.glob("*.png")))

        text = visit.js("document.body.textContent")
        for hostile in hostile_texts():
            assert hostile in text, hostile
        assert hp_json(0) in text and hp_json(1) in text
        # the scores table's first column holds exactly the algorithm names
        names = visit.js("[...document.querySelectorAll('table')[1].rows].slice(1)"
                         ".map(r => r.cells[0].textContent)")  # fmt: skip
        assert sorted(names) == sorted(HOSTILE_ALGORITHMS)
        h3 = set(visit.js("[...document.querySelectorAll('h3')].map(h => h.textContent)"))
        assert {workload_name(w, v) for w, v in HOSTILE_WORKLOADS} <= h3
        store_cell = visit.js(
            "[...document.querySelectorAll('tr')].find(r => r.cells[0].textContent === 'store')"
            ".cells[1].textContent"
        )
        assert store_cell == str(store) and HOSTILE_DIR in store_cell
        # a 300-character workload name wraps: the configuration table stays inside the page
        right = visit.js("document.querySelector('table').getBoundingClientRect().right")
        assert right <= visit.js("document.body.getBoundingClientRect().right")
    finally:
        visit.context.close()
