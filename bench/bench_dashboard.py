"""Dashboard speed, measured in Debian's Chromium against ``streamlit run app.py``.

1. Cold start: a new ``streamlit run app.py`` process until the Home page shows the embedded
   model's greeting, side by side with a warm load (a new browser session on the running
   server, model already in ``st.cache_resource``).
2. Projection layer switch on the Clusters page: from the slider's key press until the plot
   shows the new layer, once the projection is cached; side by side with the same switch in a
   bare Streamlit app (a slider and a Plotly scatter: the floor), with the library's own time
   for the switch, and with computing each projection from scratch.

    python bench/bench_dashboard.py [--run RUN_DIR] [--repeats 3]

Without ``--run`` it first builds a small run (8 tasks) in a temporary folder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from playwright.sync_api import sync_playwright  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, start_dashboard  # noqa: E402

from steering import figures  # noqa: E402
from steering.methods.projection import PROJECTIONS, project  # noqa: E402
from steering.pipeline.results import RunResults  # noqa: E402


def build_run(root: Path) -> Path:
    from steering.code.prompts import PromptSet
    from steering.engine.models import load_model
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    settings = PipelineSettings(probe_epochs=300, sweep_alphas=(0.5, 1.0), refine_steps=3, max_new_tokens=96,
                                bias_samples=2, projections=("pca",))
    Pipeline(load_model(), PromptSet.load().head(8), Run(root / "bench", create=True), settings).run_all()
    return root / "bench"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


def cold_and_warm_start(browser, runs_root: Path, repeats: int) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for _ in range(repeats):
        port = free_port()
        started = time.perf_counter()
        server = start_dashboard(runs_root, port)
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Hello!").wait_for(timeout=120_000)
            cold.append(time.perf_counter() - started)
            page.close()
            started = time.perf_counter()
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Hello!").wait_for(timeout=120_000)
            warm.append(time.perf_counter() - started)
            page.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    return cold, warm


TITLE_SHOWS = "() => document.querySelector('.gtitle')?.textContent.includes('at layer {layer} ')"


def time_switches(browser, script: Path, runs_root: Path, open_plot, n_layers: int) -> list[float]:
    """Serve ``script``, let ``open_plot(page, url)`` bring up the plot at layer 0 with the slider
    focused, then time each ArrowRight until the plot's title shows the next layer."""
    port = free_port()
    server = start_dashboard(runs_root, port, script=script)
    times = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        open_plot(page, f"http://127.0.0.1:{port}/")
        page.wait_for_function(TITLE_SHOWS.format(layer=0))
        page.wait_for_function(IDLE)
        for layer in range(1, n_layers):
            started = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(TITLE_SHOWS.format(layer=layer), polling=5)
            times.append(time.perf_counter() - started)
            page.wait_for_function(IDLE)
    finally:
        server.terminate()
        server.wait(timeout=20)
    return times


def dashboard_switches(browser, runs_root: Path, run_name: str, n_layers: int) -> list[float]:
    def open_clusters(page, url):
        page.goto(f"{url}?run={run_name}")
        page.get_by_text("Hello!").wait_for(timeout=120_000)
        page.get_by_role("link", name="Clusters").click()
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        page.get_by_role("slider").focus()
        page.keyboard.press("Home")  # layer 0

    return time_switches(browser, ROOT / "app.py", runs_root, open_clusters, n_layers)


BARE_APP = """
import numpy as np, plotly.graph_objects as go, streamlit as st
layer = st.slider("Layer", 0, 7, 0)
points = np.random.default_rng(layer).normal(size=(2, 46))
st.plotly_chart(go.Figure(go.Scatter(x=points[0], y=points[1], mode="markers"),
                          layout=dict(title=f"Difference vectors at layer {layer} ", height=520)))
"""


def bare_switches(browser, folder: Path, n_layers: int) -> list[float]:
    """The floor: a Streamlit app with nothing but a slider and a 46-point Plotly scatter."""
    (folder / "bare_app.py").write_text(BARE_APP)

    def open_bare(page, url):
        page.goto(url)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        page.get_by_role("slider").focus()

    return time_switches(browser, folder / "bare_app.py", folder, open_bare, n_layers)


def library_switches(results: RunResults) -> dict[str, list[float]]:
    """Per method: computing every layer's projection from scratch (per layer), and the cached switch."""
    out = {}
    deltas = results.run.load("deltas")[0]["deltas"]
    for method in PROJECTIONS:
        results.projection(method, 2)  # make sure it is cached (UMAP compiles here, not below)
        started = time.perf_counter()
        for layer in range(results.n_layers):
            project(deltas[:, layer].numpy(), method, 2)
        scratch = (time.perf_counter() - started) / results.n_layers
        switches = []
        for layer in range(results.n_layers):
            started = time.perf_counter()
            points = results.projection(method, 2)
            figures.projection_scatter(results.projection_table(points, layer), "cluster", method, layer).to_json()
            switches.append(time.perf_counter() - started)
        out[method] = [scratch, statistics.median(switches)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="an existing run directory (default: build a small one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scratch_dir = Path(tempfile.mkdtemp(prefix="steerscope-bench-"))
    try:
        run_dir = args.run.resolve() if args.run else build_run(scratch_dir)
        results = RunResults(run_dir)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            cold, warm = cold_and_warm_start(browser, run_dir.parent, args.repeats)
            switches, bare = [], []
            for _ in range(args.repeats):  # interleaved, so both see the same machine
                switches += dashboard_switches(browser, run_dir.parent, run_dir.name, results.n_layers)
                bare += bare_switches(browser, scratch_dir, results.n_layers)
            browser.close()
        library = library_switches(results)
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    switch_s = statistics.median(switches)
    print(f"run: {run_dir} ({len(results.prompts)} tasks, {results.n_layers} layers)")
    print(f"cold start, new process to greeting  {ms(cold_s)}  (median of {len(cold)}; all {[round(c, 2) for c in cold]} s)")
    print(f"warm load, new session, same server  {ms(warm_s)}  -> cold/warm {cold_s / warm_s:.1f}x")
    bare_s = statistics.median(bare)
    quartiles = statistics.quantiles(switches, n=4)
    print(f"layer switch in the browser, cached  {ms(switch_s)}  (median of {len(switches)}; "
          f"quartiles {quartiles[0] * 1000:.0f}-{quartiles[2] * 1000:.0f} ms; max {max(switches) * 1000:.0f} ms)")
    print(f"bare slider + plotly app, same switch {ms(bare_s)}  -> Clusters page / bare {switch_s / bare_s:.1f}x")
    for method, (scratch, cached) in library.items():
        print(f"  {method:5s} per layer: from scratch {ms(scratch)}, cached switch in the library {ms(cached)}"
              f"  -> {scratch / cached:5.1f}x faster cached")


if __name__ == "__main__":
    main()
