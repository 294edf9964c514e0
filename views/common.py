"""What every page shares: the model (one per process), the open run (one per browser session),
the sidebar that shows both, and the guards that stop a page with a clear message."""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import streamlit as st

from steering.core.errors import one_line
from steering.engine.models import EMBEDDED_MODEL_NAME, ModelLoadError, load_model
from steering.pipeline.results import RunResults, run_stamp
from steering.reports import figures
from steering.store.schema import measure_help
from steering.store.storage import StorageError

RUNS_ROOT = Path(os.environ.get("STEERSCOPE_RUNS", "runs"))
PLOT_CONFIG = {"displaylogo": False}


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def shared_model(ref: str | None, dtype: str | None = None):
    """One loaded model per process, read-only and shared by every browser session: steering
    hooks are owned by the thread that runs one session's script, so sessions never mix."""
    return load_model(ref, dtype=dtype)


@st.cache_resource(max_entries=16, show_spinner=False)
def _results(run_dir: str, stamp: tuple) -> RunResults:
    return RunResults(run_dir)


@st.cache_resource(max_entries=32, show_spinner=False)
def _projection(run_dir: str, stamp: tuple, method: str, dims: int) -> np.ndarray:
    return _results(run_dir, stamp).projection(method, dims)


def model_ref() -> str | None:
    return st.session_state.get("model_ref")


def current_model():
    """The session's model, or None (with the load error in ``st.session_state.model_error``)."""
    try:
        model = shared_model(model_ref(), st.session_state.get("model_dtype"))
    except ModelLoadError as err:
        st.session_state.model_error = str(err)
        return None
    st.session_state.pop("model_error", None)
    return model


# Session state that belongs to the open run, declared by the page that owns it
# (``own_run_state``): reset when another run is opened, so no page shows one run's report,
# answers or toggles under another's name.
_RUN_STATE: set[str] = set()
_RUN_STATE_PREFIXES: set[str] = set()


def own_run_state(*keys: str, prefixes: tuple[str, ...] = ()) -> None:
    """A page's session keys (and key prefixes) that belong to the open run."""
    _RUN_STATE.update(keys)
    _RUN_STATE_PREFIXES.update(prefixes)


@st.cache_resource(max_entries=4, show_spinner=False)
def _run_steering(run_dir: str, stamp: tuple, model_key: str | None, _model):
    from steering.interface.actions import RunSteering  # on use: it brings the stages and scikit-learn (not for Home's first draw)

    return RunSteering(run_dir, _model)


def run_steering(results: RunResults, model):
    """Steering with the open run's learned state, made once per run (and model), not per rerun."""
    run_dir = str(results.run.dir)
    return _run_steering(run_dir, run_stamp(run_dir), model.fingerprint, model)


def open_run(run_dir: str | Path) -> None:
    """Make ``run_dir`` this session's run, and its model this session's model."""
    results = RunResults(run_dir)  # raises StorageError when it is not a run
    if st.session_state.get("run_dir") != str(results.run.dir):
        for key in list(st.session_state):
            if key in _RUN_STATE or key.startswith(tuple(_RUN_STATE_PREFIXES)):
                del st.session_state[key]
    st.session_state.run_dir = str(results.run.dir)
    st.session_state.model_ref = results.settings.get("model_ref")
    st.session_state.model_dtype = results.settings.get("model", {}).get("dtype")  # the precision it was made in
    st.session_state.pop("model_input", None)  # the Home page's model box shows the run's model


def current_results() -> RunResults | None:
    run_dir = st.session_state.get("run_dir")
    if not run_dir:
        return None
    try:
        return _results(run_dir, run_stamp(run_dir))
    except StorageError as err:
        st.error(f"The open run can no longer be read: {err}")
        st.session_state.run_dir = None
        return None


def results_of(run_dir: str | Path) -> RunResults:
    """Any run's results (not only the open one's), read once per change of the run."""
    return _results(str(Path(run_dir)), run_stamp(run_dir))


def projection(results: RunResults, method: str, dims: int) -> np.ndarray:
    run_dir = str(results.run.dir)
    return _projection(run_dir, run_stamp(run_dir), method, dims)


def sidebar(model) -> None:
    with st.sidebar:
        st.subheader("Session")
        if model is not None:
            f = model.facts
            st.caption(f"**Model:** {f.name} · {f.n_layers} layers · d_model {f.d_model} · {f.device}")
        else:
            st.caption(f"**Model:** not loaded ({st.session_state.get('model_error', 'see Home')})")
        results = current_results()
        if results is not None:
            chosen = results.chosen
            st.caption(f"**Run:** `{results.run.dir.name}` · {len(results.prompts)} tasks · target "
                       f"{figures.language_name(results.target)}"
                       + (f" · steers layers {chosen['layers']}" if chosen else ""))
        else:
            st.caption("**Run:** none open")


def require_run(*stages: str) -> RunResults:
    """The open run, or stop the page with a message saying what to do first."""
    results = current_results()
    if results is None:
        st.info("No run is open. Open a previous run or start one on the Home page.")
        st.page_link(st.session_state.home_page, label="Go to Home", icon=":material/home:")
        st.stop()
    gone = {stage: results.missing_files[stage] for stage in stages if stage in results.missing_files}
    if gone:
        files = "; ".join(f"{stage}: {', '.join(names)}" for stage, names in gone.items())
        st.error(f"The open run's results cannot be read: their files are gone ({files}). Run those stages again on Home.")
        st.stop()
    missing = [stage for stage in stages if not results.has(stage)]
    if missing:
        st.warning(f"The open run has not been through {', '.join(missing)} yet: run the pipeline on Home.")
        st.page_link(st.session_state.home_page, label="Go to Home", icon=":material/home:")
        st.stop()
    return results


def require_model():
    model = current_model()
    if model is None:
        st.error(f"No model is loaded: {st.session_state.get('model_error', '')}. Pick one on the Home page.")
        st.stop()
    return model


def measure_table(table, where=st) -> None:
    """A table whose columns are measures, each column's definition as its help."""
    where.dataframe(table, column_config={c: st.column_config.Column(help=measure_help(c)) for c in table.columns
                                          if measure_help(c)})


EMBEDDED_LABEL = f"the embedded {EMBEDDED_MODEL_NAME}"


@contextmanager
def error_boundary():
    """The dashboard's one error boundary (the app's pages, and each fragment): an error becomes
    one ``st.error`` line, a damaged run named as such, no traceback and no server path."""
    try:
        yield
    except StorageError as err:  # a run damaged on disk (a truncated tensor file, a corrupt database)
        st.error(f"This run cannot be read: {one_line(err, hide_paths=True)}")
    except Exception as err:  # noqa: BLE001 (Streamlit's own stop and rerun are not Exceptions)
        st.error(f"This page stopped: {one_line(err, hide_paths=True)} ({type(err).__name__})")


def fragment(func):
    """``st.fragment`` inside the error boundary: a fragment's rerun is not inside the page's."""
    @st.fragment
    @functools.wraps(func)
    def guarded(*args, **kwargs):
        with error_boundary():
            return func(*args, **kwargs)
    return guarded


def scroll_into_view(key: str) -> None:
    """Scroll the page so that the container ``st.container(key=key)`` is at the top: a click's
    result (the streamed answers) lands in view, not below the fold."""
    st.iframe(f"<script>parent.document.querySelector('.st-key-{key}')?.scrollIntoView({{block: 'start'}})</script>",
              height=1)
