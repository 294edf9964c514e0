"""Home: load a model, pick a prompt set, open or start a run."""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import streamlit as st

from views.common import EMBEDDED_LABEL, RUNS_ROOT, current_model, current_results, open_run
from steering.code.languages import LANGUAGE_KEYS, LANGUAGES
from steering.code.prompts import MAX_PROMPT_FILE_BYTES, PromptSet, PromptSetError
from steering.core.progress import duration, progress_text
from steering.engine.models import model_card
from steering.engine.parallel import WorkerError
from steering.pipeline.results import list_runs
from steering.pipeline.stages import PIPELINE
from steering.store.storage import StorageError, run_in

STAGE_NAMES = {s.name: s.label for s in PIPELINE}


def choose_model():
    st.session_state.model_ref = st.session_state.model_input.strip() or None
    st.session_state.model_dtype = None  # a model chosen here loads in its default precision


def model_section():
    st.subheader("1 · Model")
    st.session_state.setdefault("model_input", st.session_state.get("model_ref") or "")
    st.text_input("Hugging Face id, local directory or GGUF file (blank: the embedded model)", key="model_input",
                  placeholder=f"blank: {EMBEDDED_LABEL}", on_change=choose_model,
                  help="Any causal LM with safetensors weights that TransformerLens can bridge, or a GGUF file "
                       "(dequantized once, then cached).")
    model = current_model()
    if model is None:
        st.error(f"Could not load the model: {st.session_state.model_error}")
        return None
    facts = model.facts
    st.success(f"Hello! **{facts.name}** is loaded on {facts.device}: a {facts.architecture} with "
               f"{facts.n_layers} layers and {facts.n_params / 1e6:.1f}M parameters.")
    cols = st.columns(3) + st.columns(3)  # two rows: six metrics in one row cut their values at 1280 px
    for col, (label, value) in zip(cols, [("Layers", facts.n_layers), ("d_model", facts.d_model), ("Heads", facts.n_heads),
                                          ("Parameters", f"{facts.n_params / 1e6:.1f}M"),
                                          ("Hook points", facts.n_hook_points), ("dtype", facts.dtype)]):
        col.metric(label, value)
    if facts.dtype_reason:
        st.caption(f"{facts.dtype}: {facts.dtype_reason}")
    with st.expander("All model facts"):
        st.json(facts.as_dict())
    if facts.source == "embedded":
        card = model_card()
        if card:
            st.caption(f"The embedded model was trained by `python -m steering.demo_model train` in "
                       f"{card['train_seconds'] / 60:.1f} min on {card['threads']} CPU threads; its corpus prefers "
                       "Python, then Java, Julia and C++ when no language is named.")
    return model


def prompt_section() -> PromptSet | None:
    st.subheader("2 · Prompt set")
    source = st.radio("Prompt set", ["shipped scientific tasks", "upload a JSONL file"], horizontal=True,
                      label_visibility="collapsed")
    try:
        if source == "upload a JSONL file":
            upload = st.file_uploader(f"JSONL prompt set (at most {MAX_PROMPT_FILE_BYTES // 2**20} MiB)", type=["jsonl", "json"])
            if upload is None:
                st.info("One task per line: `id`, `category`, `neutral`, and `prompts` by language. See the README.")
                return None
            prompts = PromptSet.from_bytes(upload.getvalue(), name=upload.name)
        else:
            prompts = PromptSet.load()
    except PromptSetError as err:
        st.error(f"This prompt set cannot be used: {err}")
        return None
    counts = pd.DataFrame([{"category": c, "tasks": sum(t.category == c for t in prompts),
                            **{LANGUAGES[l].display: sum(t.category == c and l in t.prompts for t in prompts) for l in LANGUAGE_KEYS}}
                           for c in prompts.categories])
    st.caption(f"**{prompts.name}**: {len(prompts)} tasks in {len(prompts.categories)} categories; "
               f"fingerprint `{prompts.fingerprint()}`")
    with st.expander("Tasks per category and language"):
        st.dataframe(counts, hide_index=True)
    return prompts


def runs_section():
    st.subheader("3 · Runs")
    runs = list_runs(RUNS_ROOT)
    left, right = st.columns([3, 1])
    if runs:
        labels = {str(r): f"{r.name}  ·  {datetime.fromtimestamp((r / 'settings.json').stat().st_mtime):%Y-%m-%d %H:%M}" for r in runs}
        picked = left.selectbox(f"Previous runs in `{RUNS_ROOT}`", list(labels), format_func=labels.get)
        if right.button("Open run", width="stretch", key="open_run"):
            try:
                open_run(picked)
                st.rerun()
            except StorageError as err:
                st.error(str(err))
    else:
        left.caption(f"No runs in `{RUNS_ROOT}` yet: start one below.")
    results = current_results()
    if results is not None:
        done = [s for s in STAGE_NAMES if results.has(s)]
        st.info(f"Open run: `{results.run.dir.name}` · stages done: {', '.join(done) or 'none'}")
        if results.missing_files:
            st.warning("Stages whose files are gone (deleted or moved), not shown as done: " + "; ".join(
                f"{stage} ({', '.join(files)})" for stage, files in results.missing_files.items()))
        if results.stale_stages:
            st.warning(f"Stages computed from other inputs (settings, weights or prompts), not shown as done: "
                       f"{', '.join(results.stale_stages)}")


def new_run_section(model, prompts: PromptSet | None):
    st.subheader("4 · Start a new run")
    if model is None or prompts is None:
        st.caption("Load a model and pick a valid prompt set first.")
        return
    with st.form("new_run"):
        c1, c2, c3, c4, c5 = st.columns(5)
        target = c1.selectbox("Target language", LANGUAGE_KEYS, index=LANGUAGE_KEYS.index("cpp"),
                              format_func=lambda k: LANGUAGES[k].display)
        k = c2.number_input("K (steering vectors per layer)", min_value=1, max_value=16, value=3)
        n_tasks = c3.number_input("Tasks to use", min_value=2, max_value=len(prompts), value=len(prompts),
                                  help="A subset spread over the categories runs faster.")
        # A fixed key and no changing default: a default holding the time made a new widget on every rerun,
        # so the typed name was dropped at submit.
        name = c4.text_input("Run name", key="new_run_name", placeholder="blank: date-time-target",
                             help="Letters, digits, '.', '_' and '-'; it becomes a folder in the runs folder.")
        replicas = c5.number_input("Ray workers", min_value=0, max_value=256, value=0,
                                   help="0: decode here. N: on N Ray replicas of the model, in a local cluster or "
                                        "the one STEERSCOPE_RAY_ADDRESS names; the results are the same.")
        submitted = st.form_submit_button("Run the pipeline", type="primary")
    if not submitted:
        return
    from steering.pipeline.settings import PipelineSettings  # imported on use, like the runner: not for Home's first draw

    try:
        run_dir = run_in(RUNS_ROOT, name.strip() or f"{datetime.now():%Y%m%d-%H%M%S}-{target}")
    except StorageError as err:
        st.error(str(err))
        return
    if run_dir.exists():
        st.error(f"A run named {run_dir.name!r} already exists: choose another name, or open it above.")
        return
    run_pipeline(model, prompts.head(int(n_tasks)), run_dir, PipelineSettings(target=target, k=int(k)), int(replicas))


def run_pipeline(model, prompts: PromptSet, run_dir, settings, replicas: int = 0):
    """Every stage with a progress bar of its own, inside one status box."""
    from steering.interface.actions import start_run

    bars: dict[str, object] = {}
    stage_started: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = st.progress(0.0, text=STAGE_NAMES.get(stage, stage))
            stage_started[stage] = time.perf_counter()
        elapsed = time.perf_counter() - stage_started[stage]
        bars[stage].progress(done / max(total, 1), text=f"{STAGE_NAMES.get(stage, stage)} · {progress_text(done, total, elapsed)}")

    with st.status(f"Running the pipeline on {len(prompts)} tasks…", expanded=True) as status:
        try:
            outcome = start_run(model, prompts, run_dir, settings, model_ref=st.session_state.get("model_ref"),
                                progress=progress, replicas=replicas)
        except (ValueError, StorageError, PromptSetError, WorkerError) as err:
            status.update(label="The pipeline stopped", state="error")
            st.error(f"The pipeline stopped: {err}")
            return
        total = duration(outcome.seconds)
        status.update(label=f"Pipeline finished in {total}", state="complete", expanded=False)
    open_run(run_dir)
    times = " · ".join(f"{k} {duration(v)}" for k, v in outcome.stage_seconds.items())
    st.session_state.flash = (f"Run `{run_dir.name}` finished in {total} ({times}) and is open: see the Bias, Probes, "
                              "Clusters and Steer pages.")
    st.rerun()


def home():
    st.title("Steerscope")
    st.caption("See which layers of a code model decide the programming language, and steer it.")
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    model = model_section()
    prompts = prompt_section()
    runs_section()
    new_run_section(model, prompts)


home()
