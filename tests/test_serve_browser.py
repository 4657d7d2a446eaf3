"""The explorer in a real browser: Debian's Chromium, headless, driven by Playwright.

A uvicorn server on a free localhost port runs the app in a thread; the page is loaded, a neuron
searched (with a misspelling), a stimulation run, a bad gene refused. Screenshots go to
``$DIGIWORM_SCREENSHOTS`` when set (the issue note shows them), else to a temporary folder.
``.ci/run`` installs Chromium (Debian package ``chromium``) before the tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.enable_socket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(atlas):
    import uvicorn

    from digiworm.serve import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(atlas), host="127.0.0.1", port=port, log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "the explorer did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium missing: apt-get install chromium (see .ci/run)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.goto(server)
        pg.wait_for_selector("body[data-ready='1']", timeout=60_000)
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = os.environ.get("DIGIWORM_SCREENSHOTS")
    path = Path(out) if out else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_worm_is_drawn(page, shots):
    assert page.locator("#side-view circle").count() == 302
    assert page.locator("#top-view circle").count() == 302
    assert page.locator("#legend span").count() >= 3  # coloured by type
    page.screenshot(path=str(shots / "explorer_worm.png"), full_page=True)


def test_search_suggests_and_opens_a_card(page, shots):
    page.fill("#search", "AVLA")
    page.click("#search-form button")
    page.wait_for_selector("#error:not([hidden])")
    assert "did you mean" in page.inner_text("#error")
    page.click("#error a.suggestion >> text=AVAL")
    page.wait_for_selector("#card-title")
    assert page.inner_text("#card-title") == "AVAL"
    assert page.locator("svg.worm circle.selected").count() == 2  # both views
    page.screenshot(path=str(shots / "explorer_card.png"), full_page=True)


def test_a_stimulation_shows_traces_and_the_measured_response(page, shots):
    page.fill("#stimulate", "AVAL")
    page.fill("#knockout", "")
    page.click("#run")
    page.wait_for_selector("#results:not([hidden])", timeout=120_000)
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    assert "digiworm simulate" in page.inner_text("#command")
    assert "Pearson r" in page.inner_text("#measured")
    painted = page.evaluate(
        "() => { const c = document.getElementById('traces').getContext('2d');"
        " const d = c.getImageData(0, 0, 460, 220).data; let n = 0;"
        " for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"
    )
    assert painted > 500  # lines were drawn
    page.click("#play")
    page.wait_for_timeout(600)
    page.click("#play")
    assert page.inner_text("#time-label").endswith("s")
    page.screenshot(path=str(shots / "explorer_stimulation.png"), full_page=True)


def test_a_bad_gene_shows_an_error_not_a_trace(page, shots):
    page.fill("#knockout", "unc-13x")
    page.click("#run")
    page.wait_for_selector("#error:not([hidden])")
    text = page.inner_text("#error")
    assert "unknown gene" in text and "did you mean" in text and "Traceback" not in text
    assert page.locator("#error a.suggestion").count() == 0  # genes are not neurons to open
    page.screenshot(path=str(shots / "explorer_error.png"), full_page=True)
    page.fill("#knockout", "")


def test_compare_and_connectome_views(page, shots):
    page.fill("#stimulate", "RID")
    page.fill("#knockout", "unc-31")
    page.check("#compare")
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    assert "Most changed" in page.inner_text("#changes")
    page.select_option("#edge-kind", "chemical")
    page.wait_for_function("document.querySelector('#edge-count').textContent.length > 0")
    assert page.locator("#top-view line").count() > 0
    page.screenshot(path=str(shots / "explorer_compare.png"), full_page=True)


def test_the_in_silico_atlas_runs_with_progress(page, shots):
    page.fill("#knockout", "")
    page.fill("#ablate", "")
    page.select_option("#model", "linear")
    page.click("#atlas-run")
    page.wait_for_function(
        "document.querySelector('#atlas-status').textContent.startsWith('done')", timeout=300_000
    )
    assert "clipped Pearson r" in page.inner_text("#atlas-status")
    assert page.is_visible("#atlas-matrix")
    page.screenshot(path=str(shots / "explorer_atlas.png"), full_page=True)
    page.select_option("#model", "graded")


def test_the_guided_tour_walks_through_its_steps(page):
    page.click("#tour-button")
    page.wait_for_selector("#tour:not([hidden])")
    assert page.inner_text("#tour-text").startswith("Step 1 of 5")
    page.wait_for_function("document.querySelector('#card-title')?.textContent === 'AVAL'")
    page.click("#tour-next")
    assert page.inner_text("#tour-text").startswith("Step 2 of 5")
    page.wait_for_function("document.querySelector('#status').textContent === 'done'")
    assert page.input_value("#stimulate") == "AVAL"
    page.click("#tour-close")
    assert page.is_hidden("#tour")


def test_the_serve_command_starts_on_localhost():
    import subprocess
    import sys

    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digiworm.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2.0)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r.status_code == 200 and r.json() == {"ok": True}
        assert "digiworm explorer" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out
    bad = subprocess.run(
        [sys.executable, "-m", "digiworm.cli", "serve", "--port", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "port" in (bad.stdout + bad.stderr).lower()
