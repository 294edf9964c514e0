"""Steer: switch the injection on layer by layer and compare baseline and steered code.

The page in parts, each a function: the address and the session's steering (``Page``), the method
and its layers, decoding and schedule, the task, the buttons, the llama.cpp export, generating side
by side, the whole task set, and the results. A widget's callbacks get the ``Page`` as argument.
"""

import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from views.common import (PLOT_CONFIG, measure_table, own_run_state, require_model, require_run, run_steering,
                          scroll_into_view)
from steering.core.limits import LIMITS
from steering.core.progress import heartbeat, progress_text
from steering.engine.generation import GenerationConfig
from steering.interface.address import parse_steer_address
from steering.methods.registry import DEFAULT_METHOD, METHODS, run_presets
from steering.methods.steer import SCHEDULES
from steering.pipeline.results import answer_diff, format_interval
from steering.reports import figures
from steering.store.schema import EVAL_MEASURES, MEASURE_DEFINITIONS

EVALUATED = "as the run evaluated it"  # the preset of the run's own evaluation (its figures are the report's)


@dataclass
class Page:
    """The open run, its steering and the methods it can steer with; the session's alphas by method."""

    results: object
    steering: object
    available: list

    @property
    def method(self) -> str:
        return st.session_state.get("method", DEFAULT_METHOD)

    def alpha_key(self, layer: int) -> str:
        return f"alpha_{self.method}_{layer}"

    def saved_alphas(self) -> dict:
        """Each method's alphas by layer, kept apart from the sliders (Streamlit forgets a widget's
        value once it is not drawn, so switching method and back used to reset them)."""
        return st.session_state.setdefault("saved_alphas", {}).setdefault(self.method, {})

    def presets(self) -> dict[str, dict[int, float]]:
        """The current method as the run's evaluation steered it, then the rest."""
        evaluated = self.steering.evaluated(self.method)
        return {**({EVALUATED: evaluated} if evaluated else {}), **run_presets(self.results)}


def save_alpha(page: Page, layer: int) -> None:
    page.saved_alphas()[layer] = st.session_state[page.alpha_key(layer)]


def apply(page: Page, setting: dict[int, float]) -> None:
    """Set the layer strip and alphas (a callback: it runs before the widgets are drawn)."""
    entry = METHODS[page.method]
    on = []
    for layer in sorted(setting):
        alpha = setting[layer] if entry.factor is None else entry.factor(page.steering.settings)
        try:
            st.session_state[page.alpha_key(layer)] = page.saved_alphas()[layer] = entry.check_alpha(alpha)
        except ValueError as err:
            st.session_state.steer_error = str(err)
        else:
            on.append(layer)
    st.session_state.layers_on = on


def apply_preset(page: Page) -> None:
    name = st.session_state.preset
    apply(page, page.presets()[name])
    if name == EVALUATED:
        st.session_state.schedule = page.steering.chosen_schedule(st.session_state.method)
    st.session_state.preset = None  # back to "choose a preset…", so picking the same one again applies it again


def apply_sweep_cell(page: Page) -> None:
    points = st.session_state.sweep_chart.selection.points
    if points:  # the grid's y is the layer, its x the alpha (as a category label)
        apply(page, {int(points[0]["y"]): float(points[0]["x"])})


def restore_from_address(page: Page) -> bool:
    """A copied address (``?method=gact&layers=21,23&alphas=0.5,0.25&task=…&seed=0``) reopens
    that view, once per session; each parameter that does not fit this run is named and skipped."""
    if st.session_state.get("address_read"):
        return False
    st.session_state.address_read = True  # from now on the address follows the page, not the other way
    asked = parse_steer_address(st.query_params.to_dict(), page.results.n_layers, page.available,
                                page.results.prompts.ids, page.method)
    if asked.problems:
        st.session_state.steer_error = "The address's " + "; ".join(asked.problems)
    for key, value in (("method", asked.method), ("task", asked.task), ("seed", asked.seed)):
        if value is not None:
            st.session_state[key] = value
    if asked.steering is None:
        return False
    apply(page, asked.steering)
    return True


@dataclass
class Controls:
    """What the controls say now: the steering, its decoding, and the task."""

    method: str
    layers: list
    alphas: list
    schedule: str = "all"
    window: int = 8
    gate: float = 0.5
    conditional: bool = False
    prefill: bool = False
    config: GenerationConfig | None = None
    task_id: str = ""
    prompt: str = ""
    asked: str | None = None
    ask_too: bool = False

    def decoding_words(self) -> str:
        """How the answers are being decoded now: kept with a result, whose caption must not follow
        the controls once they change."""
        c = self.config
        how = "greedy" if c.temperature == 0 else f"sampled at temperature {c.temperature:g}"
        return f"{how}, seed {c.seed}, at most {c.max_new_tokens} new tokens"

    def keep_in_address(self) -> None:
        st.query_params.update(method=self.method, layers=",".join(map(str, self.layers)),
                               alphas=",".join(f"{a:g}" for a in self.alphas), task=self.task_id,
                               seed=str(int(self.config.seed)))


def method_and_layers(page: Page) -> Controls:
    """The method, the preset, the layer strip and one alpha slider per steered layer."""
    top = st.columns(2)
    top[0].selectbox("Method", page.available, format_func=lambda m: METHODS[m].label, key="method",
                     help="G-ACT weights its cluster vectors by its probe; ACT steers the per-head outputs of its kept "
                          "heads, each gated by its own probe (use the preset \"ACT's heads\"); the neuron method "
                          "scales one MLP neuron.")
    top[1].selectbox("Preset", list(page.presets()), key="preset", index=None, placeholder="choose a preset…",
                     on_change=apply_preset, args=(page,),
                     help="\"As the run evaluated it\": the layers, alphas and schedule whose figures the report gives "
                          "(the page opens on it).")
    method = st.session_state.method
    if "steer_error" in st.session_state:
        st.error(st.session_state.pop("steer_error"))
    success = page.results.layer_success()
    st.pills("Layers", list(range(page.results.n_layers)), selection_mode="multi", key="layers_on",
             format_func=lambda layer: figures.layer_label(layer, success),
             help="Click a layer to steer it (the highlighted ones are steered), then set its alpha below. "
                  + figures.LAYER_LABEL_HELP)
    layers = sorted(st.session_state.layers_on or [])
    return Controls(method, layers, alphas(page, method, layers))


def alphas(page: Page, method: str, layers: list[int]) -> list[float]:
    """One slider per steered layer, and what the alphas add to the residual."""
    if not layers:
        return []
    entry, limit = METHODS[method], METHODS[method].alpha_limit
    is_factor = entry.factor is not None
    slider_cols = st.columns(min(4, len(layers)))
    start, values = entry.start_alpha(page.steering.settings, page.results), []  # the same for every layer
    for i, layer in enumerate(layers):
        st.session_state.setdefault(page.alpha_key(layer), page.saved_alphas().get(layer, start))
        values.append(slider_cols[i % len(slider_cols)].slider(
            f"{'factor' if is_factor else 'alpha'}, layer {layer}", -limit, limit, key=page.alpha_key(layer),
            format="%.4g", step=0.5 if is_factor else 0.0125, on_change=save_alpha, args=(page, layer)))
    shares = [page.steering.residual_share(method, layer, alpha) for layer, alpha in zip(layers, values)]
    st.caption(f"Scale: {entry.scale}" + ("" if shares[0] is None else "; here it adds " + ", ".join(
        f"{100 * share:.2g}% of layer {layer}'s mean residual norm" for layer, share in zip(layers, shares))) + ".")
    return values


def decoding(page: Page, controls: Controls) -> None:
    """Decoding and schedule: set once per demo, so folded away (their values in the label)."""
    settings = page.steering.settings
    st.session_state.setdefault("seed", 0)
    st.session_state.setdefault("schedule", page.steering.chosen_schedule(controls.method))
    # The evaluation's budget when there is one (the asked answers' 95th percentile): what the run was judged at.
    judged_at = page.results.budget("heldout") or page.results.budget("neutral")
    st.session_state.setdefault("max_tokens", judged_at["tokens"] if judged_at else settings.max_new_tokens)
    st.session_state.setdefault("decoding", "greedy")
    with st.expander(f"Decoding and schedule: {st.session_state.decoding}, seed {st.session_state.seed}, at most "
                     f"{st.session_state.max_tokens} new tokens, schedule {st.session_state.schedule}"):
        cols = st.columns(4)
        greedy = cols[3].radio("Decoding", ["greedy", "sampled"], horizontal=True, key="decoding") == "greedy"
        seed = cols[0].number_input("Seed", min_value=0, max_value=int(LIMITS["seed"].high), step=1, key="seed")
        temperature = cols[1].number_input("Temperature", min_value=0.05, max_value=2.0, value=1.0, step=0.05,
                                           disabled=greedy)
        max_tokens = cols[2].number_input("Max new tokens", min_value=8, max_value=1024, step=8, key="max_tokens",
                                          help="Starts at the run's evaluation budget, the token budget its steering "
                                               "was judged at.")
        schedule(page, controls)
        controls.prefill = st.checkbox("Also the prefilled fence (after the answers)", key="show_prefilled",
                                       help="The prompt box with the answer forced to open the target's fence: the "
                                            "cheapest alternative a steering is judged against.")
    controls.config = GenerationConfig(max_new_tokens=int(max_tokens), temperature=0.0 if greedy else float(temperature),
                                       seed=int(seed))


def schedule(page: Page, controls: Controls) -> None:
    """When the injection acts, and whether it yields to a prompt that names another language."""
    settings = page.steering.settings
    cols = st.columns([2, 1, 1])
    controls.schedule = cols[0].selectbox(
        "Schedule", list(SCHEDULES), key="schedule", format_func=lambda k: f"{k}: {SCHEDULES[k]}",
        help="When the injection acts. The language is chosen in the answer's first tokens; steering every token "
             "can cost code quality. The run's default is the sweep's choice.")
    controls.window = int(cols[1].number_input("Window (tokens)", min_value=1, max_value=256, step=1,
                                               value=settings.schedule_window, disabled=controls.schedule != "window"))
    controls.gate = float(cols[2].number_input("Gate p(target)", min_value=0.05, max_value=0.95, step=0.05,
                                               value=settings.gate, disabled=controls.schedule != "gated"))
    controls.conditional = st.checkbox(
        "Yield to a prompt that names another language (conditional)", key="conditional", value=settings.conditional,
        disabled=not page.steering.has_condition(),
        help="Steer only where the prompt leaves the language open: the run's condition reads the prompt first, and "
             "one asking for another language is answered unsteered.")


def task(page: Page, controls: Controls) -> None:
    """The task, its prompt box, and whether its own target-language prompt is decoded too."""
    results = page.results
    cols = st.columns([3, 2])
    task_ids = results.prompts.ids
    st.session_state.setdefault("task", results.showcase_task(controls.method) or task_ids[0])
    controls.task_id = cols[0].selectbox(
        "Task", task_ids, key="task", format_func=lambda t: f"{t} · {results.prompts.task(t).category}",
        help="The page opens on the first task whose answers in the run's evaluation, asked explicitly and steered, "
             "are target code that parses within the budget: a showcase.")
    controls.asked = page.steering.asked_prompt(controls.task_id)
    controls.ask_too = cols[1].checkbox(
        "Asked explicitly, as a third column", key="ask_too", disabled=controls.asked is None,
        help=f"Task {controls.task_id}'s own {figures.language_name(results.target)} prompt, decoded with the two "
             "others: the ceiling a steering is judged against.")
    # One prompt box per task, pre-filled with its neutral prompt as the widget's default: the browser
    # then never shows it empty. (A box whose text was set through session state mounted empty for a
    # moment, and a click in that moment sent the empty text back as the prompt.)
    controls.prompt = st.text_area("Prompt (editable)", value=results.prompts.task(controls.task_id).neutral,
                                   key=f"prompt_{controls.task_id}", height=80)


def spec_words(spec) -> str:
    return (f"{METHODS[spec.method].label} on layers {list(spec.layers)} at {[round(a, 4) for a in spec.alphas]}, "
            f"{spec.describe()}")


def verdict_badges(answer, compiled: bool | None, max_tokens: int) -> list[str]:
    """What one answer counts as, in the measures' words, as coloured badges (they wrap; metrics
    would cut their values in a third of the page)."""
    d = answer.detection
    out = [":green-badge[parses]" if d.parses else ":red-badge[does not parse]"]
    if compiled is not None:
        out.append(":green-badge[compiles]" if compiled else ":red-badge[does not compile]")
    cut = answer.n_tokens >= max_tokens
    out.append(f":orange-badge[cut off at {max_tokens} tokens]" if cut else f":gray-badge[{answer.n_tokens} tokens]")
    return out + ([f":red-badge[{answer.stop_reason}]"] if answer.stop_reason else [])


def make_steerer(page: Page, c: Controls):
    """The current toggles as a Steerer, or None after showing why it cannot be made."""
    try:
        return page.steering.steerer(c.method, c.layers, c.alphas, schedule=c.schedule, schedule_window=c.window,
                                     gate=c.gate, conditional=c.conditional)
    except ValueError as err:
        st.error(f"Cannot steer with these settings: {err}")
        return None


def buttons() -> tuple[bool, bool]:
    """Generate, and Run the task set (or Stop while it runs): whether each was asked for.

    "Run the task set" arms a flag that the next script run consumes: any other click then ends the
    task set (Streamlit stops a script at its next update once a rerun is asked for), Stop included."""
    running = st.session_state.pop("task_set_start", False)
    cols = st.columns([1, 1, 4])
    generate_clicked = cols[0].button("Generate", type="primary", disabled=running,
                                      help="Disabled while the task set runs: stop it first." if running else None)
    if running:
        cols[1].button("Stop", help="Stops the task set; what it finished is not kept.")
    else:
        cols[1].button("Run the task set", on_click=lambda: st.session_state.update(task_set_start=True),
                       help="Baseline and steered answers to every task's neutral prompt, scored.")
    return generate_clicked, running


def export(page: Page, controls: Controls) -> None:
    """The steering as llama.cpp's GGUF control vector, prepared on demand, then downloaded."""
    with st.expander("Use this steering in llama.cpp: a GGUF control vector", expanded=False):
        st.caption("llama.cpp adds one constant vector to chosen blocks' outputs at every position, the prompt "
                   "included (`--control-vector FILE`; alpha is in the file). Steerscope writes each layer's nearest "
                   "constant vector, measured on the run's neutral prompts; the file says what is approximate.")
        accept = st.checkbox("Export even where llama.cpp cannot follow the schedule (it steers every token, the "
                             "prompt included)", key="gguf_accept")
        if st.button("Prepare the control vector") and (steerer := make_steerer(page, controls)) is not None:
            try:
                with st.spinner("Measuring the steering on the run's neutral prompts…"):
                    vector = page.steering.control_vector(steerer, accept_inexact=accept)
                st.session_state.gguf = {"spec": steerer.spec, "data": vector.to_bytes(),
                                         "notes": list(vector.differences.values())}
            except ValueError as err:
                st.error(f"Cannot export: {err}")
        gguf = st.session_state.get("gguf")
        if gguf:
            for note in gguf["notes"]:
                st.warning(note)
            st.caption(f"Prepared for {spec_words(gguf['spec'])}: prepare it again after changing the steering.")
            st.download_button("Download control vector (GGUF)", gguf["data"], mime="application/octet-stream",
                               file_name=f"{page.results.run.dir.name}-{gguf['spec'].method}.gguf")


def streamer(area, titles, max_new_tokens: int):
    """A callback that fills one column per answer as they decode, each saying its state (at most
    ten updates a second: the browser need not redraw for every token of a fast model)."""
    boxes = [(col.empty(), col.empty()) for col in area.columns(len(titles))]
    started, last, counts_before = time.perf_counter(), [0.0], [[0] * len(titles)]

    def show(texts, counts):
        now = time.perf_counter()
        done = [n == before and n > 0 for n, before in zip(counts, counts_before[0])]  # a finished row stops growing
        counts_before[0] = list(counts)
        if now - last[0] < 0.1:
            return
        last[0] = now
        for (state, code), title, text, n, finished in zip(boxes, titles, texts, counts, done):
            state.caption(f"{title.lower()} · {'done · ' if finished else ''}{n}/{max_new_tokens} tokens · "
                          f"{n / (now - started):.1f} tok/s")
            code.code(text, language="text", wrap_lines=True, height=300)

    return show, boxes


def generate(page: Page, c: Controls, area) -> None:
    """Baseline, steered (and the references asked for), streamed into ``area``, kept as the result."""
    steerer = make_steerer(page, c)
    if steerer is None:
        return
    scroll_into_view("answers")
    asked = c.asked if c.ask_too else None
    show, boxes = streamer(area, ["Baseline", "Steered"] + (["Asked explicitly"] if asked else []),
                           c.config.max_new_tokens)
    try:
        answers = page.steering.side_by_side(c.prompt, steerer, c.config, on_text=show, asked=asked)
        references = {"asked explicitly": answers[2]} if len(answers) > 2 else {}
        if c.prefill:
            with st.spinner("Generating the prefilled fence…"):
                references["prefilled fence"] = page.steering.prefilled(c.prompt, c.config)
    except ValueError as err:  # an empty prompt, or one longer than the model's context
        st.error(f"Cannot generate: {err}")
    else:
        shown = [*answers[:2], *references.values()]
        st.session_state.steer_result = {"answers": answers[:2], "spec": steerer.spec, "prompt": c.prompt,
                                         "decoding": c.decoding_words(), "references": references,
                                         "max_tokens": c.config.max_new_tokens,
                                         "compiles": [page.steering.compiles(answer) for answer in shown]}
    for box in boxes:
        for element in box:
            element.empty()


def task_set(page: Page, c: Controls) -> None:
    """Baseline and steered answers to every task's neutral prompt, with progress, kept as the outcome."""
    steerer = make_steerer(page, c)
    if steerer is None:
        return
    prompts = page.results.prompts
    bar = st.progress(0.0, text="Baseline and steered answers for every task…")
    finished = st.empty()
    total, done, started, rows = 2 * len(prompts), [0], time.perf_counter(), []

    def show_progress():
        bar.progress(done[0] / total, text=f"Baseline and steered answers: "
                                           f"{progress_text(done[0], total, time.perf_counter() - started)}")

    def advance(n):
        done[0] += n
        show_progress()

    def show_batch(start, baseline, steered):
        rows.extend({"task": prompts.ids[start + i], "baseline": b.detection.verdict, "steered": s.detection.verdict,
                     "steered tokens": s.n_tokens} for i, (b, s) in enumerate(zip(baseline, steered)))
        finished.dataframe(pd.DataFrame(rows), hide_index=True, height=220)

    with heartbeat(show_progress):
        outcome = page.steering.task_set([t.neutral for t in prompts], steerer, c.config, on_answers=advance,
                                         tasks=prompts.ids, on_batch=show_batch)
    st.session_state.task_set_result = {**outcome, "spec": steerer.spec, "decoding": c.decoding_words()}
    st.rerun()  # draw the controls again, enabled


def answers(page: Page, c: Controls, result: dict) -> None:
    """The kept answers side by side, each with its language, its verdict badges and its code; the diff."""
    st.caption(f"{spec_words(result['spec'])}; {result['decoding']}.")
    shown = [("Baseline", result["answers"][0]), ("Steered", result["answers"][1]),
             *[(name.capitalize(), answer) for name, answer in result.get("references", {}).items()]]
    explained = {"asked explicitly": f"task {c.task_id}'s own {figures.language_name(page.results.target)} prompt "
                                     "(not the prompt box)",
                 "prefilled fence": "the prompt box, with the answer forced to open the target's fence"}
    if result.get("references"):
        st.caption("; ".join(f"{name.capitalize()}: {explained[name]}" for name in result["references"]) + ".")
    for col, (title, answer), compiled in zip(st.columns(len(shown)), shown, result["compiles"]):
        d = answer.detection
        with col:
            st.markdown(f"#### {title} · {figures.language_name(d.language)}",
                        help=f"Language confidence {d.confidence:.0%} (decided by {d.source}). "
                             + " ".join(MEASURE_DEFINITIONS[k].capitalize() + "." for k in ("success", "compiles", "cut_off")))
            st.markdown(" ".join(verdict_badges(answer, compiled, result["max_tokens"])))
            st.code(d.code or answer.text, language=d.language or "text", wrap_lines=True)
    diff = answer_diff(result["answers"][0].text, result["answers"][1].text)
    with st.expander("Diff (baseline → steered)", expanded=False):
        st.code(diff or "(identical)", language="diff", wrap_lines=True)


def task_set_outcome(page: Page, outcome: dict) -> None:
    """The whole task set: language shares before and after, and the measures with intervals."""
    results = page.results
    shares = pd.DataFrame({"baseline": outcome["baseline"]["shares"], "steered": outcome["steered"]["shares"]})
    st.caption(f"Whole task set: {spec_words(outcome['spec'])}; {outcome['decoding']}.")
    left, right = st.columns([2, 1])
    left.plotly_chart(figures.shares_before_after(shares, title=f"Whole task set, neutral prompts "
                                                                f"({len(results.prompts)} tasks)"), config=PLOT_CONFIG)
    measure_table(pd.DataFrame({c: {EVAL_MEASURES[k]: format_interval((outcome[c][k], *outcome[c]["ci"].get(k, (None, None))))
                                    for k in ("fenced_target", "success", "compiling", "no_code_block", "repeated_ngrams")}
                                for c in ("baseline", "steered")}).T, right)
    right.caption("95% bootstrap intervals over tasks.")


def evaluation_and_sweep(page: Page) -> None:
    """The run's own evaluation against the references, and its sweep (a cell click steers with it)."""
    results = page.results
    for prompt_set, words in (("heldout", "held-out phrasings"), ("neutral", "neutral prompts")):
        table = results.display_table(prompt_set)
        if not table.empty:
            with st.expander(f"The run's evaluation on the {words}, against the references", expanded=False):
                budget = results.budget(prompt_set)
                measure_table(table)
                st.caption("Same seeds and token budget for every row"
                           + (f" ({budget['tokens']} tokens)" if budget else "") + "; 95% bootstrap intervals over "
                           "tasks. Asked explicitly: the task's prompt in the target language; prefilled fence: the "
                           "answer forced to open the target's fence.")
    sweep = results.sweep()
    if not sweep.empty:
        st.plotly_chart(figures.sweep_grid(sweep, results.chosen), config=PLOT_CONFIG, key="sweep_chart",
                        on_select=lambda: apply_sweep_cell(page), selection_mode="points")


def open_page() -> Page:
    """The run and model, or a stop saying what is missing; a new session starts as the run was judged."""
    # This page's session state belongs to the open run: reset when another run is opened.
    own_run_state("steer_result", "task_set_result", "gguf", "gguf_accept", "preset", "task", "method",
                  "saved_alphas", "schedule", "seed", "address_read", "layers_on", "ask_too", "max_tokens",
                  "show_prefilled", prefixes=("alpha_", "prompt_"))
    st.title("Steer")
    model = require_model()
    results = require_run()
    if not results.has("cluster") and not results.missing_files:
        st.error("No steering vectors yet: this run has not been through extraction and clustering. "
                 "Run the pipeline on the Home page first.")
        st.stop()
    results = require_run("extract", "cluster")  # a stage whose files are gone is named there
    steering = run_steering(results, model)
    page = Page(results, steering, steering.available(results.has))
    st.session_state.setdefault("method", DEFAULT_METHOD if DEFAULT_METHOD in page.available else page.available[0])
    if not restore_from_address(page) and "layers_on" not in st.session_state:
        apply(page, next(iter(page.presets().values())))
    return page


def main() -> None:
    page = open_page()
    controls = method_and_layers(page)
    decoding(page, controls)
    task(page, controls)
    controls.keep_in_address()
    generate_clicked, running = buttons()
    export(page, controls)
    area = st.container(key="answers")  # the streamed answers, then the result, in the same place
    if generate_clicked:
        generate(page, controls, area)
    if running:
        task_set(page, controls)
    if result := st.session_state.get("steer_result"):
        with area:
            answers(page, controls, result)
    if outcome := st.session_state.get("task_set_result"):
        task_set_outcome(page, outcome)
    evaluation_and_sweep(page)


main()
