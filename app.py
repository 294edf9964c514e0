"""Steerscope's dashboard. ``streamlit run app.py``

This file is the router (the run in the address, the error boundary, the navigation); the pages,
Home included, live in ``views/`` (not ``pages/``: Streamlit runs a folder of that name as an
old-style multipage app on a fresh server's first visit at a page's address, without this router);
all computation lives in ``steering/``.
"""

from __future__ import annotations

import streamlit as st

from views.common import RUNS_ROOT, current_model, current_results, error_boundary, open_run, sidebar
from steering.core.errors import one_line
from steering.store.storage import StorageError, run_in

st.set_page_config(page_title="Steerscope", page_icon=":material/explore:", layout="wide")


def open_run_from_url():
    """``?run=NAME`` (under the runs folder) opens that run once per session: a shareable link."""
    wanted = st.query_params.get("run")
    if wanted and st.session_state.get("url_run") != wanted:
        st.session_state.url_run = wanted
        try:
            open_run(run_in(RUNS_ROOT, wanted))
        except StorageError as err:
            st.error(f"Cannot open the run of this link: {one_line(err, hide_paths=True)}")


def keep_run_in_address():
    """Moving between pages clears the address's query: put the open run back (when it lies in
    the runs folder), so that a reload or a copied address reopens it, with its model."""
    results = current_results()
    if results is not None and results.run.dir.resolve().parent == RUNS_ROOT.resolve():
        st.session_state.url_run = results.run.dir.name  # the address now names the open run: nothing to open
        st.query_params["run"] = results.run.dir.name


home_page = st.Page("views/home.py", title="Home", icon=":material/home:", default=True)
st.session_state.home_page = home_page
navigation = st.navigation([
    home_page,
    st.Page("views/bias.py", title="Bias", icon=":material/bar_chart:"),
    st.Page("views/probes.py", title="Probes", icon=":material/troubleshoot:"),
    st.Page("views/clusters.py", title="Clusters", icon=":material/bubble_chart:"),
    st.Page("views/steer.py", title="Steer", icon=":material/explore:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/report.py", title="Report", icon=":material/description:"),
])
open_run_from_url()
keep_run_in_address()
with error_boundary():  # every page: one st.error line, never a traceback or a server path
    sidebar(current_model())
    navigation.run()
