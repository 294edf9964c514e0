"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against
``streamlit run app.py`` on localhost. Screenshots of every page go to ``test-artifacts/``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect, sync_playwright

from conftest import COMPARED_RUNS, DASHBOARD_RUN
from steering.pipeline.results import RunResults
from steering.reports.report import build_report

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAGES = ["Bias", "Probes", "Clusters"]
IDLE = """() => !document.querySelector('[data-testid="stStatusWidget"]')
             && !document.querySelector('[data-testid="stSkeleton"]')"""


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
def browser_runs(request) -> Path:
    """The test's runs folder, or ``$STEERSCOPE_BROWSER_RUNS`` (which must hold a run named
    ``dashboard``: how the README's screenshots of a full run are taken)."""
    override = os.environ.get("STEERSCOPE_BROWSER_RUNS")
    return Path(override) if override else request.getfixturevalue("dashboard_runs")


@pytest.fixture(scope="module")
def dashboard(browser_runs):
    """The dashboard on ``browser_runs``."""
    port = free_port()
    server = start_dashboard(browser_runs, port)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=20)


# Text the page cuts (an ellipsis, or a label under its neighbour) and plot text outside its plot
# or under the plot's toolbar: what a presenter would see clipped, as a list of descriptions.
CLIPPED = """() => {
  const out = [];
  const seen = el => el.getClientRects().length > 0;
  const text = '[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *, [data-testid="stMetricValue"], '
    + '[data-testid="stMetricValue"] *, [data-testid="stWidgetLabel"] *, [data-testid="stButtonGroup"] button, '
    + '[data-testid="stButtonGroup"] button *, [data-testid="stHeading"] *, [data-testid="stExpander"] summary *, '
    + '[data-testid="stCaptionContainer"], [data-testid="stMarkdownContainer"] span';
  for (const el of document.querySelectorAll(text)) {
    if (seen(el) && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
      out.push('cut: ' + el.textContent.slice(0, 60));
  }
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    const name = ((plot.querySelector('.gtitle') || {}).textContent || '(untitled plot)').slice(0, 50);
    for (const t of plot.querySelectorAll('.gtitle, .g-xtitle, .g-ytitle, .xtick text, .ytick text, .legendtext, .cbtitle')) {
      const r = t.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1))
        out.push('outside its plot: ' + t.textContent.slice(0, 60) + ' (' + name + ')');
    }
    const title = plot.querySelector('.gtitle'), bar = plot.querySelector('.modebar');
    if (title && bar) {
      const a = title.getBoundingClientRect(), b = bar.getBoundingClientRect();
      if (b.width && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
        out.push('title under the toolbar: ' + name);
    }
  }
  return out;
}"""
# Armed before Generate: notes when a streamed answer shows text while its column still decodes.
WATCH_STREAM = """() => {
  window.streamedEarly = false;
  new MutationObserver(() => {
    const area = document.querySelector('.st-key-answers');
    if (!area) return;
    const decoding = [...area.querySelectorAll('[data-testid="stCaptionContainer"]')]
      .some(c => / · \\d+\\/\\d+ tokens · /.test(c.textContent) && !c.textContent.includes('done'));
    const text = [...area.querySelectorAll('[data-testid="stCode"]')].some(c => c.textContent.trim().length > 0);
    if (decoding && text) window.streamedEarly = true;
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
VIEWPORT = {"width": 1280, "height": 800}


def visit(page, name: str, shots: bool = True) -> None:
    """Wait for the page to settle, check that nothing is clipped, save a screenshot."""
    page.wait_for_function(IDLE, timeout=60_000)
    page.wait_for_timeout(800)  # plotly's drawing
    assert page.evaluate(CLIPPED) == [], name
    if shots:
        page.screenshot(path=ARTIFACTS / f"{name}.png")


def pressed(page, n_layers: int) -> list[int]:
    strip = page.get_by_test_id("stButtonGroup").first
    return [layer for layer in range(n_layers)
            if strip.get_by_role("button", name=f"L{layer}", exact=True).get_attribute("aria-pressed") == "true"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_every_page_in_chromium_and_steer_generates_side_by_side(dashboard, browser_runs):
    """At 1280x800, as a presenter's laptop shows it: every page without a clipped label or title
    (screenshots in test-artifacts/), answers that stream, and an address that keeps the view."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{dashboard}/?run={DASHBOARD_RUN}")
        expect(page.get_by_text("Hello!")).to_be_visible(timeout=90_000)
        expect(page.get_by_test_id("stSidebar").get_by_text(f"Run: {DASHBOARD_RUN}")).to_be_visible()
        expect(page.get_by_role("button", name="Deploy")).to_have_count(0)  # .streamlit/config.toml: viewer mode
        visit(page, "home")

        for name in PAGES:
            page.get_by_role("link", name=name).click()
            expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible(timeout=30_000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
            visit(page, name.lower())
            assert f"run={DASHBOARD_RUN}" in page.url  # moving between pages keeps the run in the address

        page.get_by_role("link", name="Steer").click()
        expect(page.get_by_role("heading", name="Steer", exact=True)).to_be_visible(timeout=30_000)
        page.wait_for_function(IDLE, timeout=60_000)
        layer_strip = page.get_by_test_id("stButtonGroup").first
        layer_strip.get_by_role("button", name="L1", exact=True).click()  # one more layer on
        expect(page.get_by_text("alpha, layer 1")).to_be_visible(timeout=30_000)
        page.wait_for_function(IDLE, timeout=60_000)  # the layer's rerun has finished drawing the page
        page.get_by_text("Asked explicitly, as a third column").click()
        expect(page.get_by_role("checkbox", name="Asked explicitly, as a third column")).to_be_checked()
        page.wait_for_timeout(500)  # the checkbox's rerun has started...
        page.wait_for_function(IDLE, timeout=60_000)  # ...and ended: a click now is not lost in a redraw
        page.evaluate(WATCH_STREAM)
        page.get_by_role("button", name="Generate").click()
        try:
            expect(page.get_by_role("heading", name="Steered · C++")).to_be_visible(timeout=120_000)
        except AssertionError:  # what the page showed instead, for whoever reads the CI's artifacts
            page.screenshot(path=ARTIFACTS / "failed-generate.png")
            raise
        assert page.evaluate("window.streamedEarly"), "no text was shown before the answers were complete"
        expect(page.get_by_role("heading", name="Baseline")).to_be_visible()
        expect(page.get_by_role("heading", name="Asked explicitly")).to_be_visible()
        expect(page.get_by_role("heading", name="Steered · C++")).to_be_in_viewport()  # the result lands in view
        visit(page, "steer")

        cells = page.locator(".js-plotly-plot .scatterlayer .point")  # the sweep grid, layer-major
        per_layer = cells.count() // 8
        cells.nth(2 * per_layer + per_layer - 1).scroll_into_view_if_needed()
        box = cells.nth(2 * per_layer + per_layer - 1).bounding_box()  # layer 2 at the largest alpha
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.get_by_text("alpha, layer 2")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("alpha, layer 1")).to_have_count(0)  # the click set the toggles: layer 2 only
        assert pressed(page, 8) == [2]

        caption = page.get_by_text("G-ACT on layers").first.inner_text()  # the generated answers' own spec
        page.get_by_text("Decoding and schedule").click()
        page.get_by_text("sampled", exact=True).click()  # other controls: the caption stays the result's
        page.wait_for_function(IDLE, timeout=60_000)
        assert page.get_by_text("G-ACT on layers").first.inner_text() == caption and "greedy" in caption

        # The view in the address: a reload, and the copied link in a new browser session, reopen it.
        option = page.get_by_role("option").nth(1)  # another task than the one the page opened on
        for _ in range(3):  # a click that lands during a rerun's redraw does not open the list: again
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Task").click()
            try:
                option.wait_for(timeout=5_000)
                break
            except PlaywrightTimeout:
                page.keyboard.press("Escape")
        task = option.inner_text().split(" · ")[0]
        option.click()
        expect(page).to_have_url(re.compile(f"task={task}"), timeout=30_000)  # the address follows the page
        page.wait_for_function(IDLE, timeout=60_000)
        alpha = page.get_by_role("slider", name="alpha, layer 2").get_attribute("aria-valuenow")
        link = page.url
        assert "/steer?" in link and f"task={task}" in link and "layers=2" in link
        for view in (page, browser.new_context(viewport=VIEWPORT).new_page()):
            if view is page:
                view.reload()
            else:
                view.goto(link)
            expect(view.get_by_role("heading", name="Steer", exact=True)).to_be_visible(timeout=90_000)
            view.wait_for_function(IDLE, timeout=60_000)
            expect(view.get_by_test_id("stSidebar").get_by_text(f"Run: {DASHBOARD_RUN}")).to_be_visible()
            assert pressed(view, 8) == [2]
            assert view.get_by_role("slider", name="alpha, layer 2").get_attribute("aria-valuenow") == alpha
            expect(view.get_by_role("combobox", name="Task")).to_have_value(re.compile(f"^{task} · "))

        page.get_by_role("link", name="Report").click()
        page.get_by_role("button", name="Build the HTML report").click()
        expect(page.get_by_text(f"Report of run {DASHBOARD_RUN} ready")).to_be_visible(timeout=60_000)
        visit(page, "report")

        # The report file itself: its code wraps (no page wider than the screen) and its charts fit their labels.
        report = ARTIFACTS / "report.html"
        report.write_text(build_report(RunResults(browser_runs / DASHBOARD_RUN)))
        page.goto(report.as_uri())
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        assert page.evaluate(CLIPPED) == []
        browser.close()
    assert {f"{n}.png" for n in ["home", "bias", "probes", "clusters", "steer", "report"]} <= {p.name for p in ARTIFACTS.iterdir()}


@pytest.fixture(scope="module")
def wide_runs(tmp_path_factory):
    """A run on a random 24-layer model built for the test (quick settings, 4 tasks): the layer
    strip at a real model's depth."""
    from conftest import build_tiny_model
    from steering.code.prompts import PromptSet
    from steering.engine.models import load_model
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    root = tmp_path_factory.mktemp("wide")
    model_dir = build_tiny_model(root / "model-24", "qwen2", layers=24, context=1024)
    settings = PipelineSettings(probe_epochs=50, sweep_alphas=(0.5,), refine_steps=1, max_new_tokens=16, bias_samples=1,
                                projections=("pca",), select_prose=8, select_tokens=8)
    Pipeline(load_model(model_dir), PromptSet.load().head(4), Run(root / "runs" / "wide", create=True), settings,
             model_ref=model_dir).run_all()
    return root / "runs"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_every_layer_label_is_readable_at_24_layers(wide_runs):
    """Each of 24 layer toggles shows its whole number, apart from its neighbours, at 1280 and 1920
    px; a copied link opens the run with its own model."""
    port = free_port()
    server = start_dashboard(wide_runs, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for width, height in ((1280, 800), (1920, 1080)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"http://127.0.0.1:{port}/steer?run=wide")
                expect(page.get_by_role("heading", name="Steer", exact=True)).to_be_visible(timeout=90_000)
                page.wait_for_function(IDLE, timeout=60_000)
                expect(page.get_by_test_id("stSidebar").get_by_text("24 layers")).to_be_visible()  # the run's model
                buttons = page.get_by_test_id("stButtonGroup").first.get_by_role("button", name=re.compile(r"^L\d+$"))
                assert buttons.count() == 24
                boxes = []
                for layer in range(24):
                    button = buttons.nth(layer)
                    expect(button).to_be_visible()
                    assert button.inner_text().strip() == f"L{layer}"
                    assert button.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), f"L{layer} is cut at {width} px"
                    boxes.append(button.bounding_box())
                for a, b in zip(boxes, boxes[1:]):  # neighbours on one row do not overlap
                    assert not (abs(a["y"] - b["y"]) < 1 and a["x"] + a["width"] > b["x"] + 1), (a, b)
                visit(page, f"steer-24-layers-{width}", shots=width == 1280)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


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


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_compare_page_shows_three_models_and_its_address_keeps_them(compare_runs):
    """At 1280x800, three runs picked on the Compare page: every section drawn with no clipped
    label, the runs in the address, and a reload that restores them."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    server = start_dashboard(compare_runs, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"http://127.0.0.1:{port}/compare")
            expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=90_000)
            picker = page.get_by_test_id("stMultiSelect")
            for name in COMPARED_RUNS:
                page.wait_for_function(IDLE, timeout=60_000)
                picker.click()
                page.get_by_role("option", name=name, exact=True).click()
                page.keyboard.press("Escape")
            for heading in ("The models and their bias", "Where the language decision forms",
                            "Steering against each model's own asking", "One task, every model"):
                expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=60_000)
            visit(page, "compare")
            page.get_by_role("heading", name="One task, every model").scroll_into_view_if_needed()
            visit(page, "compare-answers")
            assert all(f"runs={name}" in page.url for name in COMPARED_RUNS), page.url
            link = page.url
            for view in (page, browser.new_context(viewport=VIEWPORT).new_page()):
                view.reload() if view is page else view.goto(link)
                expect(view.get_by_role("heading", name="Where the language decision forms")).to_be_visible(timeout=90_000)
                view.wait_for_function(IDLE, timeout=60_000)
                chips = view.get_by_test_id("stMultiSelect").get_by_role("button", name=re.compile("^Remove"))
                expect(chips).to_have_count(len(COMPARED_RUNS))
                for name in COMPARED_RUNS:
                    expect(view.get_by_test_id("stMultiSelect").get_by_text(name, exact=True)).to_be_visible()
                assert view.evaluate(CLIPPED) == []
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
