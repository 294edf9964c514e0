"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against
``streamlit run app.py`` on localhost. Screenshots of every page go to ``test-artifacts/``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import DASHBOARD_RUN

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAGES = ["Bias", "Probes", "Clusters"]
IDLE = """() => !document.querySelector('[data-testid="stStatusWidget"]')
             && !document.querySelector('[data-testid="stSkeleton"]')"""


def snapshot(page, name: str) -> None:
    """A screenshot once the app is idle and plotly has drawn (the app scrolls inside its own
    container, so the viewport is made tall enough for a whole page)."""
    page.wait_for_function(IDLE, timeout=60_000)
    page.wait_for_timeout(800)
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(runs_root: Path, port: int, script: Path = ROOT / "app.py") -> subprocess.Popen:
    """``streamlit run app.py`` (or ``script``) on ``port``, once its health check answers."""
    env = {**os.environ, "STEERSCOPE_RUNS": str(runs_root), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("streamlit did not answer its health check within 60 s")


@pytest.fixture(scope="module")
def dashboard(request):
    """The dashboard on the test run, or on the runs in ``$STEERSCOPE_BROWSER_RUNS`` (which must
    hold a run named ``dashboard``: how the README's screenshots of a full run are taken)."""
    override = os.environ.get("STEERSCOPE_BROWSER_RUNS")
    runs = Path(override) if override else request.getfixturevalue("dashboard_runs")
    port = free_port()
    server = start_dashboard(runs, port)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=20)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_every_page_in_chromium_and_steer_generates_side_by_side(dashboard):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(f"{dashboard}/?run={DASHBOARD_RUN}")
        expect(page.get_by_text("Hello!")).to_be_visible(timeout=90_000)
        expect(page.get_by_test_id("stSidebar").get_by_text(f"Run: {DASHBOARD_RUN}")).to_be_visible()
        expect(page.get_by_role("button", name="Deploy")).to_have_count(0)  # .streamlit/config.toml: viewer mode
        snapshot(page, "home")

        for name in PAGES:
            page.get_by_role("link", name=name).click()
            expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible(timeout=30_000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
            snapshot(page, name.lower())

        page.get_by_role("link", name="Steer").click()
        expect(page.get_by_role("heading", name="Steer", exact=True)).to_be_visible(timeout=30_000)
        page.wait_for_function(IDLE, timeout=60_000)
        layer_strip = page.get_by_test_id("stButtonGroup").first
        layer_strip.get_by_role("button", name="L1", exact=True).click()  # one more layer on
        expect(page.get_by_text("alpha, layer 1")).to_be_visible(timeout=30_000)
        page.wait_for_function(IDLE, timeout=60_000)  # the layer's rerun has finished drawing the page
        page.get_by_role("button", name="Generate").click()
        codes = page.locator("[data-testid='stCode']")
        expect(codes.nth(1)).to_be_visible(timeout=120_000)
        expect(page.get_by_role("heading", name="Baseline")).to_be_visible()
        expect(page.get_by_role("heading", name="Steered · C++")).to_be_visible()
        snapshot(page, "steer")

        cells = page.locator(".js-plotly-plot .scatterlayer .point")  # the sweep grid, layer-major
        per_layer = cells.count() // 8
        box = cells.nth(2 * per_layer + per_layer - 1).bounding_box()  # layer 2 at the largest alpha
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.get_by_text("alpha, layer 2")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("alpha, layer 1")).to_have_count(0)  # the click set the toggles: layer 2 only
        assert [layer_strip.get_by_role("button", name=f"L{layer}", exact=True).get_attribute("aria-pressed") == "true"
                for layer in range(8)] == [layer == 2 for layer in range(8)]

        caption = page.get_by_text("G-ACT on layers").first.inner_text()  # the generated answers' own spec
        page.get_by_text("sampled", exact=True).click()  # other controls: the caption stays the result's
        page.wait_for_function(IDLE, timeout=60_000)
        assert page.get_by_text("G-ACT on layers").first.inner_text() == caption and "greedy" in caption

        page.get_by_role("link", name="Report").click()
        page.get_by_role("button", name="Build the HTML report").click()
        expect(page.get_by_text(f"Report of run {DASHBOARD_RUN} ready")).to_be_visible(timeout=60_000)
        snapshot(page, "report")
        browser.close()
    assert {f"{n}.png" for n in ["home", "bias", "probes", "clusters", "steer", "report"]} <= {p.name for p in ARTIFACTS.iterdir()}


def _cluster_colours(page) -> dict[str, str]:
    """Legend name -> marker colour of the projection plot (the first plot on the Clusters page)."""
    return page.evaluate("""() => Object.fromEntries(document.querySelector('.js-plotly-plot').data
                              .map(t => [t.name, t.marker.color]))""")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_run_names_reports_and_cluster_colours_in_chromium(dashboard_runs, tmp_path):
    """A run started from Home gets the typed name; a report built for one run is not offered
    after switching to another; a cluster keeps its colour from layer to layer."""
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, runs / DASHBOARD_RUN)
    port = free_port()
    server = start_dashboard(runs, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.goto(f"http://127.0.0.1:{port}/?run={DASHBOARD_RUN}")
            expect(page.get_by_text("Hello!")).to_be_visible(timeout=90_000)

            page.get_by_role("link", name="Clusters").click()
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
            page.wait_for_function(IDLE, timeout=60_000)
            at_4 = _cluster_colours(page)
            slider = page.get_by_role("slider", name="Layer")
            slider.focus()
            for _ in range(2):
                slider.press("ArrowLeft")  # layer 2
            expect(page.get_by_text("Difference vectors at layer 2")).to_be_visible(timeout=30_000)
            at_2 = _cluster_colours(page)
            assert at_2 == {name: at_4[name] for name in at_2}, (at_2, at_4)  # same cluster, same colour

            page.get_by_role("link", name="Report").click()
            page.get_by_role("button", name="Build the HTML report").click()
            expect(page.get_by_text(f"Report of run {DASHBOARD_RUN} ready")).to_be_visible(timeout=60_000)

            page.get_by_role("link", name="Home").click()
            page.get_by_role("spinbutton", name="Tasks to use").fill("4")
            page.get_by_role("textbox", name="Run name").fill("named-in-browser")
            page.get_by_role("button", name="Run the pipeline").click()
            expect(page.get_by_text("Run named-in-browser finished")).to_be_visible(timeout=600_000)
            assert (runs / "named-in-browser" / "settings.json").is_file()
            assert sorted(p.name for p in runs.iterdir()) == [DASHBOARD_RUN, "named-in-browser"]  # no orphan runs

            page.get_by_role("link", name="Report").click()
            expect(page.get_by_role("button", name="Build the HTML report")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("ready:")).to_have_count(0)  # the first run's report is not offered here
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
