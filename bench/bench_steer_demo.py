"""The Steer page's Generate, timed as a presenter sees it, without the browser: baseline and
steered answers streamed in one batch of two rows (``RunSteering.side_by_side``), with the
steering the run's evaluation used (layers, alphas with the selection's margin, schedule) at the
run's evaluation budget. For each task: seconds to the first streamed text, to the baseline's end
and to both answers, and each answer's verdict next to the task asked explicitly, decoded the same
way (the ceiling).

    python bench/bench_steer_demo.py --run runs/qwen-cpp [--method gact] [--tasks ID ...]
    python bench/bench_steer_demo.py --run runs/qwen-cpp --browser

By default: the task the page opens on (``showcase_task``) and the run's first two. With
``--browser``: the same Generate clicked in Chromium on ``streamlit run app.py``, timed from the
click to the first streamed text and to the result (the page's own defaults, model already loaded).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steering.engine.generation import GenerationConfig, generate  # noqa: E402
from steering.engine.models import load_model  # noqa: E402
from steering.interface.actions import RunSteering  # noqa: E402
from steering.pipeline.results import RunResults  # noqa: E402


def verdict(steering: RunSteering, answer, budget: int, compiled: list) -> str:
    d = answer.detection
    ok = steering.compiles(answer)
    compiled.append(bool(ok))
    words = [d.language or "none", "fenced" if d.fenced else "no block", "parses" if d.parses else "does not parse"]
    if ok is not None:
        words.append("compiles" if ok else "does not compile")
    if answer.n_tokens >= budget:
        words.append("cut off")
    return ", ".join(words) + f" ({answer.n_tokens} tokens)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/qwen-cpp")
    parser.add_argument("--method", default="gact")
    parser.add_argument("--tasks", nargs="*", help="task ids (default: the page's first task, then the run's first N)")
    parser.add_argument("--first", type=int, default=2, help="N: how many of the run's first tasks to add")
    parser.add_argument("--browser", action="store_true", help="time Generate in Chromium instead")
    args = parser.parse_args()
    if args.browser:
        return in_browser(Path(args.run).resolve())

    results = RunResults(args.run)
    started = time.perf_counter()
    model = load_model(results.settings.get("model_ref"))
    steering = RunSteering(args.run, model)
    print(f"model {model.facts.name} loaded in {time.perf_counter() - started:.1f} s", flush=True)
    setting = steering.evaluated(args.method)
    schedule = steering.chosen_schedule(args.method)
    steerer = steering.steerer(args.method, list(setting), list(setting.values()), schedule=schedule)
    budget = (results.budget("heldout") or results.budget("neutral") or {"tokens": steering.settings.max_new_tokens})["tokens"]
    config = GenerationConfig(max_new_tokens=budget)
    target = steering.settings.target
    print(f"{args.method} on layers {list(setting)} at {list(setting.values())}, schedule {schedule}, "
          f"greedy, budget {budget} tokens", flush=True)

    showcase = results.showcase_task(args.method)
    compiled = {"asked": [], "steered": []}
    for task_id in args.tasks or dict.fromkeys([t for t in (showcase,) if t] + results.prompts.ids[:args.first]):
        task = results.prompts.task(task_id)
        marks: dict[str, float] = {}
        last = [0, 0]
        t0 = time.perf_counter()

        def on_text(texts, counts):
            now = time.perf_counter() - t0
            if any(t.strip() for t in texts):
                marks.setdefault("first text", now)
            if counts[1] > 0:
                marks.setdefault("first steered text", now)
            if counts[0] == last[0] and last[0] > 0:
                marks.setdefault("baseline done", now)
            last[:] = counts

        baseline, steered = steering.side_by_side(task.neutral, steerer, config, on_text=on_text)
        marks["both done"] = time.perf_counter() - t0
        asked = generate(model, task.prompts[target], config)[0]
        print(f"\n{task_id}: " + " · ".join(f"{k} {v:.1f} s" for k, v in marks.items()), flush=True)
        print(f"  baseline: {verdict(steering, baseline, budget, [])}")
        print(f"  steered:  {verdict(steering, steered, budget, compiled['steered'])}")
        print(f"  asked:    {verdict(steering, asked, budget, compiled['asked'])}", flush=True)
    where = [s for a, s in zip(compiled["asked"], compiled["steered"]) if a]
    print(f"\nasked explicitly compiles on {sum(compiled['asked'])} of {len(compiled['asked'])} tasks; on those, the "
          f"steered neutral prompt compiles on {sum(where)}; steered compiles on {sum(compiled['steered'])} in all")


STREAMED = """() => [...document.querySelectorAll('.st-key-answers [data-testid="stCode"]')]
                  .some(c => c.textContent.trim().length > 0)"""


def in_browser(run: Path, repeats: int = 2) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from playwright.sync_api import expect, sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, start_dashboard

    port = free_port()
    server = start_dashboard(run.parent, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(repeats):  # a new session each time (the model stays loaded in the server)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/steer?run={run.name}")
                expect(page.get_by_role("button", name="Generate")).to_be_visible(timeout=300_000)
                page.wait_for_function(IDLE, timeout=300_000)
                page.wait_for_timeout(2000)  # a click during the page's own rerun would be another measure
                started = time.perf_counter()
                page.get_by_role("button", name="Generate").click()
                first = None
                while not page.get_by_role("heading", name=re.compile("^Steered")).count():
                    if first is None and page.evaluate(STREAMED):
                        first = time.perf_counter() - started
                    page.wait_for_timeout(50)
                done = time.perf_counter() - started
                print(f"in Chromium: first streamed text {first:.1f} s after the click, result shown after {done:.1f} s",
                      flush=True)
                page.close()
            browser.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
